"""Batches on the host: padding to a compiled size, chunking, and applying a jitted function.

One compiled shape serves any number of images: the last chunk is padded by repeating its last row
and the padding is dropped from the output.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from ge_jax.errors import UserError


def is_int(v) -> bool:
  return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def check_batch_size(batch_size) -> int:
  if not is_int(batch_size) or batch_size < 1:
    raise UserError(f'batch_size={batch_size!r} must be an integer >= 1.')
  return int(batch_size)


def pad_rows(a, size: int) -> np.ndarray:
  """Pads the leading axis to `size` by repeating the last row (zeros if there is none)."""
  a = np.asarray(a)
  if a.shape[0] >= size:
    return a
  if a.shape[0] == 0:
    return np.zeros((size,) + a.shape[1:], a.dtype)
  return np.concatenate([a, np.repeat(a[-1:], size - a.shape[0], axis=0)], axis=0)


def chunks(n: int, batch_size: int) -> Iterator[tuple[int, int]]:
  """(start, stop) of consecutive chunks of at most batch_size rows covering range(n)."""
  return ((s, min(s + batch_size, n)) for s in range(0, n, batch_size))


def map_batched(fn: Callable[..., Any], params: Any, x, batch_size: int) -> np.ndarray:
  """fn(params, chunk) over padded chunks of x (N, ...), concatenated as numpy (N, ...).

  The next chunk is dispatched before the previous result is fetched, so host copies overlap the
  device's work.
  """
  x = np.asarray(x)
  batch_size = check_batch_size(batch_size)
  outs, pending = [], None
  for start, stop in chunks(x.shape[0], batch_size):
    out = fn(params, pad_rows(x[start:stop], batch_size))
    if pending is not None:
      outs.append(np.asarray(pending[0])[:pending[1]])
    pending = (out, stop - start)
  if pending is not None:
    outs.append(np.asarray(pending[0])[:pending[1]])
  if not outs:
    raise UserError('no images to process (an empty array was given).')
  return np.concatenate(outs)
