"""An offline sample-quality score for G: a small classifier's Frechet distance and confidence.

  python -m ge_jax.classifier --config=configs/mnist.py --workdir=runs/mnist

trains (once; cached in <workdir>/classifier/) a small CNN on the *train* split's labels, then
reports, on its penultimate (128-d) features:

  fd_test_vs_g      Frechet distance between test images and as many samples of G (FID-like,
                    lower is better; comparable between G checkpoints of the same data)
  fd_test_vs_val    the same between two real splits: the floor a perfect G would reach
  confidence_g      mean max-softmax probability on G samples (sharp, class-like digits -> high)
  confidence_test   the same on real test images, for reference
  class_histogram_g share of G samples per predicted class (mode coverage)
  test_accuracy     the classifier's accuracy on the test split

The numbers go to <workdir>/classifier/sample_quality.json.
"""

from __future__ import annotations

import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import flags

from ge_jax import batching, fileio
from ge_jax.errors import UserError
from ge_jax.perception import frechet_distance  # noqa: F401  (one implementation, kept importable here)

FEATURES = 128


class Classifier(nn.Module):
  """conv(32, s2) -> conv(64, s2) -> dense(128) features -> dense(num_classes) logits."""
  num_classes: int = 10

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(32, (3, 3), strides=2)(x))
    x = nn.relu(nn.Conv(64, (3, 3), strides=2)(x))
    feats = nn.relu(nn.Dense(FEATURES)(x.reshape(x.shape[0], -1)))
    return nn.Dense(self.num_classes)(feats), feats


def train_classifier(images: np.ndarray, labels: np.ndarray, *, steps: int = 1500, batch_size: int = 64,
                     lr: float = 1e-3, seed: int = 0) -> Any:
  """Adam on cross-entropy over the given (train) images; returns the parameters."""
  if labels is None or len(labels) != len(images):
    raise UserError('the classifier needs one integer label per training image; this data source has none.')
  model = Classifier(num_classes=int(labels.max()) + 1)
  key = jax.random.key(seed)
  params = model.init(key, jnp.zeros((1,) + images.shape[1:]))['params']
  tx = optax.adam(lr)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, x, y):
    def loss_fn(p):
      logits, _ = model.apply({'params': p}, x)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, g = jax.value_and_grad(loss_fn)(params)
    upd, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, upd), opt, loss

  rng = np.random.default_rng(seed)
  for _ in range(steps):
    idx = rng.integers(0, len(images), batch_size)
    params, opt, _ = step(params, opt, images[idx], labels[idx].astype(np.int32))
  return params


def apply(params, x: np.ndarray, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
  """(softmax probabilities (N, K), penultimate features (N, 128)) of images in [-1, 1]."""
  k = params['Dense_1']['bias'].shape[0]

  @jax.jit
  def fn(p, x):  # one array out, so map_batched can batch it: probabilities, then features
    logits, f = Classifier(num_classes=k).apply({'params': p}, x)
    return jnp.concatenate([jax.nn.softmax(logits), f], axis=1)
  out = batching.map_batched(fn, params, x, min(batch_size, len(x)))
  return out[:, :k], out[:, k:]


def load_or_train(workdir: str, dataset, *, steps: int = 1500, seed: int = 0) -> Any:
  """The classifier cached in <workdir>/classifier/params.msgpack, trained on the train split if absent."""
  from flax import serialization
  path = os.path.join(workdir, 'classifier', 'params.msgpack')
  if os.path.exists(path):
    with open(path, 'rb') as f:
      return serialization.msgpack_restore(f.read())
  params = train_classifier(dataset.train, dataset.train_labels, steps=steps, seed=seed)
  fileio.write_bytes(path, serialization.msgpack_serialize(jax.tree.map(np.asarray, params)))
  return params


def sample_quality(config, workdir: str, *, n_samples: int | None = None, steps: int = 1500) -> dict:
  """Scores G's samples against the test split (see the module docstring); writes the JSON too."""
  from ge_jax import data, load
  from ge_jax.models import Nets
  ds = data.load(config.data)
  g = load.load_trained(config, workdir)['generator']  # first: no classifier trained for a workdir without G
  clf = load_or_train(workdir, ds, steps=steps, seed=int(config.seed))
  nets = Nets(config)
  n = n_samples or len(ds.test)
  z = jax.random.normal(jax.random.key(int(config.seed) + 777), (n, nets.latent_dim))
  samples = batching.map_batched(jax.jit(nets.G), g, z, min(500, n))
  p_test, f_test = apply(clf, ds.test)
  p_val, f_val = apply(clf, ds.val)
  p_g, f_g = apply(clf, samples)
  hist = np.bincount(p_g.argmax(1), minlength=p_g.shape[1]) / n
  out = dict(workdir=workdir, n_test=len(ds.test), n_samples=n,
             fd_test_vs_g=frechet_distance(f_test, f_g), fd_test_vs_val=frechet_distance(f_test, f_val),
             confidence_g=float(p_g.max(1).mean()), confidence_test=float(p_test.max(1).mean()),
             test_accuracy=(float((p_test.argmax(1) == ds.test_labels).mean())
                            if ds.test_labels is not None else None),
             class_histogram_g=[round(float(h), 4) for h in hist])
  fileio.write_json(os.path.join(workdir, 'classifier', 'sample_quality.json'), out)
  return out


def _define_flags() -> None:
  """CLI flags, defined only when run as a program (importing this module defines none)."""
  from ml_collections import config_flags
  config_flags.DEFINE_config_file('config', 'configs/mnist.py', 'Config file (ml_collections).')
  flags.DEFINE_string('workdir', None, 'Trained checkpoints (default runs/<config.name>).')
  flags.DEFINE_integer('n', None, 'Number of G samples (default: the size of the test split).')
  flags.DEFINE_integer('steps', 1500, 'Classifier training steps (only when not cached).')


def main(argv):
  from ge_jax import cli
  f = flags.FLAGS
  config = f.config
  workdir = cli.start(argv, config, f.workdir, cpu_devices=1)  # training: one CPU device (parallel.split_cpu)
  r = sample_quality(config, workdir, n_samples=f.n, steps=f.steps)
  print(f'classifier test accuracy: {r["test_accuracy"]}')
  print(f'Frechet distance (classifier features), test vs G: {r["fd_test_vs_g"]:.3f} '
        f'(real vs real, test vs val: {r["fd_test_vs_val"]:.3f})')
  print(f'mean max-softmax confidence: G samples {r["confidence_g"]:.3f}, test images {r["confidence_test"]:.3f}')
  print(f'G samples per predicted class: {r["class_histogram_g"]}')
  print(f'wrote {os.path.join(workdir, "classifier", "sample_quality.json")}')


if __name__ == '__main__':
  from ge_jax import cli as _cli
  _define_flags()
  _cli.run(_cli.exit_on_user_error(main))  # Ctrl-C handling and a quiet exit, as the other CLIs
