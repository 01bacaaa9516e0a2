"""A disk cache for generated image sets (rock slices, photo patches): integer arrays in .npz files.

Generating 11,000 images takes 10-30 s on a shared 2-core CPU, and train.py, solve.py and the
evaluation each load every split, so each split is kept as the integers it was quantised to
(lossless). The file name hashes everything the images depend on, so a changed config never
reads stale data; a damaged file is regenerated.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Callable

from absl import logging
import numpy as np

from ge_jax import fileio
from ge_jax.errors import UserError


def cache_dir() -> str:
  """$GE_JAX_DATA_CACHE (empty: no cache), else ~/.cache/ge-jax/data."""
  return os.environ.get('GE_JAX_DATA_CACHE', os.path.expanduser('~/.cache/ge-jax/data'))


def cached_array(prefix: str, key: Any, make: Callable[[], np.ndarray]) -> np.ndarray:
  """``make()`` (an integer array), read from ``<cache_dir>/<prefix>-<hash of key>.npz`` if there."""
  folder = cache_dir()
  if not folder:
    return make()
  digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
  path = os.path.join(folder, f'{prefix}-{digest}.npz')
  if os.path.isfile(path):
    try:
      with np.load(path) as z:
        return z['data']
    except (OSError, ValueError, KeyError):
      pass  # damaged: regenerate and replace
  arr = make()
  try:
    with fileio.atomic_path(path) as tmp:
      np.savez(tmp, data=arr)  # uncompressed: noise does not compress, and loading is 10x faster
  except OSError as e:  # a read-only home must not stop training
    logging.warning('could not cache %s data in %s (%s)', prefix, path, e)
  return arr


def split_sizes(data_cfg) -> dict[str, int]:
  """{'train', 'val', 'test'} sizes of a generated source, checked: train >= 1, the others >= 0."""
  sizes = {'train': int(data_cfg.train_size), 'val': int(data_cfg.val_size), 'test': int(data_cfg.test_size)}
  if sizes['train'] < 1 or sizes['val'] < 0 or sizes['test'] < 0:
    raise UserError(f'config.data.train_size / val_size / test_size = {sizes["train"]} / '
                    f'{sizes["val"]} / {sizes["test"]}: train must be >= 1, the others >= 0.')
  return sizes
