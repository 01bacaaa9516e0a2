"""The project's small digit classifier: a CNN trained once on the train split's labels.

Its penultimate (128-d) features are a realism measure (ge_jax.perception: Frechet distance on
them) and its predictions read the digit of a restoration (accuracy). `load_or_train` caches it in
<workdir>/classifier/. G's sample quality on its features: ge_jax.sample_quality
(`python -m ge_jax.classify`).
"""

from __future__ import annotations

import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from ge_jax import batching, fileio
from ge_jax.errors import UserError

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
  """The classifier cached in <workdir>/classifier/params.msgpack, trained on the train split if absent.

  A cached file that does not read back as a classifier of these images (truncated, garbage, other
  shapes, NaN weights) is moved aside to `params.msgpack.damaged` (kept, never deleted) and the
  classifier trained again after a one-line note: it is a cache of a seeded function of the train
  split, so training it again gives the same network, and the scores stay comparable.
  """
  path = os.path.join(workdir, 'classifier', 'params.msgpack')
  if os.path.exists(path):
    problem = None
    try:
      with open(path, 'rb') as f:
        params = serialization.msgpack_restore(f.read())
      problem = _not_a_classifier(params, dataset)
    except Exception as e:  # noqa: BLE001 - msgpack raises its own types (ExtraData, ValueError, ...)
      problem = f'{type(e).__name__}: {" ".join(str(e).split())[:80]}'
    if problem is None:
      return params
    aside = _set_aside(path)
    print(f'note: {path} is not a readable classifier ({problem}); training it again on the train split '
          f'(the old file is kept as {aside}).', flush=True)
  params = train_classifier(dataset.train, dataset.train_labels, steps=steps, seed=seed)
  fileio.write_bytes(path, serialization.msgpack_serialize(jax.tree.map(np.asarray, params)))
  return params


def _not_a_classifier(params, dataset) -> str | None:
  """Why `params` (read from a file) are not a Classifier's for `dataset`'s images, or None."""
  if not isinstance(params, dict) or 'Dense_1' not in params or 'bias' not in params.get('Dense_1', {}):
    return 'not the parameters of the classifier'
  k = np.shape(params['Dense_1']['bias'])
  if len(k) != 1 or k[0] < 2:
    return 'not the parameters of the classifier'
  if dataset is not None and len(dataset.train):
    shape = (1,) + tuple(dataset.train.shape[1:])
    want = jax.eval_shape(lambda: Classifier(num_classes=k[0]).init(jax.random.key(0), jnp.zeros(shape))['params'])
    if jax.tree.structure(want) != jax.tree.structure(params):
      return 'not the parameters of the classifier'
    if any(np.shape(a) != w.shape for a, w in zip(jax.tree.leaves(params), jax.tree.leaves(want))):
      return f'parameters of other shapes than a classifier of {shape[1:]} images has'
  if not all(np.all(np.isfinite(np.asarray(a, np.float64))) for a in jax.tree.leaves(params)):
    return 'its weights hold NaN or Inf values'
  return None


def _set_aside(path: str) -> str:
  dest, k = path + '.damaged', 1
  while os.path.exists(dest):
    dest, k = f'{path}.damaged.{k}', k + 1
  os.replace(path, dest)
  return dest
