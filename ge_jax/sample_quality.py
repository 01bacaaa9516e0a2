"""An offline sample-quality score for G: the project classifier's Frechet distance and confidence.

Trains (once; cached in <workdir>/classifier/) the small CNN of ge_jax.classifier on the *train*
split's labels, then reports, on its penultimate (128-d) features:

  fd_test_vs_g      Frechet distance between test images and as many samples of G (FID-like,
                    lower is better; comparable between G checkpoints of the same data)
  fd_test_vs_val    the same between two real splits: the floor a perfect G would reach
  confidence_g      mean max-softmax probability on G samples (sharp, class-like digits -> high)
  confidence_test   the same on real test images, for reference
  class_histogram_g share of G samples per predicted class (mode coverage)
  test_accuracy     the classifier's accuracy on the test split

The numbers go to <workdir>/classifier/sample_quality.json (`python -m ge_jax.classify`).
"""

from __future__ import annotations

import os

import jax
import numpy as np

from ge_jax import batching, classifier, data, fileio, load
from ge_jax.models import Nets
from ge_jax.perception import frechet_distance


def sample_quality(config, workdir: str, *, n_samples: int | None = None, steps: int = 1500) -> dict:
  """Scores G's samples against the test split (see the module docstring); writes the JSON too."""
  ds = data.load(config.data)
  g = load.load_trained(config, workdir)['generator']  # first: no classifier trained for a workdir without G
  clf = classifier.load_or_train(workdir, ds, steps=steps, seed=int(config.seed))
  nets = Nets(config)
  n = n_samples or len(ds.test)
  z = jax.random.normal(jax.random.key(int(config.seed) + 777), (n, nets.latent_dim))
  samples = batching.map_batched(jax.jit(nets.G), g, z, min(500, n))
  p_test, f_test = classifier.apply(clf, ds.test)
  p_val, f_val = classifier.apply(clf, ds.val)
  p_g, f_g = classifier.apply(clf, samples)
  hist = np.bincount(p_g.argmax(1), minlength=p_g.shape[1]) / n
  out = dict(workdir=workdir, n_test=len(ds.test), n_samples=n,
             fd_test_vs_g=frechet_distance(f_test, f_g), fd_test_vs_val=frechet_distance(f_test, f_val),
             confidence_g=float(p_g.max(1).mean()), confidence_test=float(p_test.max(1).mean()),
             test_accuracy=(float((p_test.argmax(1) == ds.test_labels).mean())
                            if ds.test_labels is not None else None),
             class_histogram_g=[round(float(h), 4) for h in hist])
  fileio.write_json(os.path.join(workdir, 'classifier', 'sample_quality.json'), out)
  return out
