"""Checking an image array and converting it to what the models take: NHWC float32 in [-1, 1]."""

from __future__ import annotations

from typing import Any

import numpy as np

from ge_jax.errors import UserError

VALUE_RANGES = ('unit', 'signed')
RANGE_TOL = 1e-3  # floats this far outside their range are clipped, not refused


def to_model_range(arr: Any, *, image_size: int, channels: int,
                   value_range: str = 'unit',
                   what: str = 'images') -> np.ndarray:
  """Validates an image array and converts it to float32 [-1, 1] NHWC.

  Args:
    arr: (N, H, W) when ``channels == 1``, or (N, H, W, C). uint8 means 0..255;
      floats are read according to ``value_range``.
    image_size: expected H and W.
    channels: expected C.
    value_range: 'unit' (floats in [0, 1]) or 'signed' (floats in [-1, 1]).
    what: names the array in error messages.

  Returns:
    A C-contiguous float32 array of shape (N, image_size, image_size, channels).

  Raises:
    UserError: wrong shape, dtype, range, NaN/Inf or an empty array.
  """
  if value_range not in VALUE_RANGES:
    raise UserError(f'config.data.value_range={value_range!r} is not one of '
                    f'{VALUE_RANGES}; use \'unit\' for [0, 1] floats or '
                    '\'signed\' for [-1, 1] floats.')
  arr = np.asarray(arr)
  if arr.size == 0:
    raise UserError(f'{what} is empty (shape {arr.shape}); provide at least '
                    'one image.')
  if arr.ndim == 3:
    if channels != 1:
      raise UserError(f'{what} has shape {arr.shape} (N, H, W) but the config '
                      f'expects {channels} channels (config.data.channels); '
                      'give an (N, H, W, C) array.')
    arr = arr[..., None]
  if arr.ndim != 4:
    raise UserError(f'{what} has shape {arr.shape} but (N, H, W, C) or, for '
                    'one channel, (N, H, W) is expected.')
  _, h, w, c = arr.shape
  if (h, w) != (image_size, image_size):
    raise UserError(f'{what} are {h}x{w} but the config expects '
                    f'{image_size}x{image_size} (config.data.image_size).')
  if c != channels:
    raise UserError(f'{what} have {c} channels but the config expects '
                    f'{channels} (config.data.channels).')
  if arr.dtype == np.uint8:
    return np.ascontiguousarray(arr.astype(np.float32) / 127.5 - 1.0)
  if not np.issubdtype(arr.dtype, np.floating):
    raise UserError(f'{what} has dtype {arr.dtype}; use uint8 (0..255) or '
                    'floats (see config.data.value_range).')
  bad = ~np.isfinite(arr)
  if bad.any():
    first = int(np.argmax(bad.reshape(len(arr), -1).any(axis=1)))
    raise UserError(f'{what} contains {int(bad.sum())} NaN/Inf values (first '
                    f'in image {first}); remove or repair those images.')
  lo, hi = (0.0, 1.0) if value_range == 'unit' else (-1.0, 1.0)
  amin, amax = float(arr.min()), float(arr.max())
  if amin < lo - RANGE_TOL or amax > hi + RANGE_TOL:
    other = 'signed' if value_range == 'unit' else 'unit'
    raise UserError(f'{what} has values in [{amin:.4g}, {amax:.4g}] but '
                    f'config.data.value_range={value_range!r} expects floats '
                    f'in [{lo:g}, {hi:g}]; rescale the data or set '
                    f'config.data.value_range={other!r}.')
  x = np.clip(arr.astype(np.float32), lo, hi)
  if value_range == 'unit':
    x = x * 2.0 - 1.0
  return np.ascontiguousarray(x, dtype=np.float32)


def channel_kind(channels: int) -> str:
  """How an image of `channels` channels is named in messages: grayscale or colour (RGB)."""
  return 'grayscale' if channels == 1 else 'colour (RGB)'
