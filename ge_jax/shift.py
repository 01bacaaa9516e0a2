"""A shift suite: clean test images transformed into inputs the models never saw in training.

`SHIFTS[name](images) -> images` maps (N, H, W, C) in [-1, 1] to the same shape and range,
deterministically (no randomness; each image on its own):

  rotate+30 / rotate-30   rotation by 30 degrees counter-clockwise / clockwise about the centre
  scale0.7 / scale1.3     zoom by 0.7 (smaller digit, more border) / 1.3 (larger, cropped) about the centre
  thicken / thin          grey dilation / erosion with a 3x3 cross: bright strokes (MNIST's) get
                          about 2 px thicker / thinner
  invert                  contrast inverted (-x): dark strokes on a bright background

Rotation and zoom interpolate bilinearly and fill the uncovered corners with each image's own
background (the median of its border pixels, per channel): -1 for MNIST digits, so a rotated
digit is not framed by grey.

The lead corrupts each shifted set with a few tasks and restores it with every method; the
picture helper `save_shift_grid` shows what the suite looks like.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage

from ge_jax import viz
from ge_jax.errors import UserError


def _check(images) -> np.ndarray:
  x = np.asarray(images, np.float32)
  if x.ndim != 4 or x.shape[0] == 0:
    raise UserError(f'shifts take a non-empty (N, H, W, C) array of images, got shape {x.shape}.')
  return x


def _background(x: np.ndarray) -> np.ndarray:
  """Median of each image's border pixels, per channel: (N, 1, 1, C)."""
  border = np.concatenate([x[:, 0], x[:, -1], x[:, 1:-1, 0], x[:, 1:-1, -1]], axis=1)  # (N, P, C)
  return np.median(border, axis=1)[:, None, None, :]


def _on_background(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
  """fn (a geometric map filling with 0) applied to x - background, background added back."""
  bg = _background(x)
  return np.clip(fn(x - bg) + bg, -1.0, 1.0).astype(np.float32)


def rotate(images, degrees: float) -> np.ndarray:
  """Rotation counter-clockwise (as displayed) by `degrees` about the image centre."""
  x = _check(images)
  # axes=(2, 1): positive angles turn the picture counter-clockwise when rows run downwards.
  return _on_background(lambda v: ndimage.rotate(v, degrees, axes=(2, 1), reshape=False, order=1,
                                                 mode='constant', cval=0.0), x)


def rescale(images, factor: float) -> np.ndarray:
  """Zoom by `factor` about the image centre (same output size: > 1 crops, < 1 adds border)."""
  x = _check(images)
  if not factor > 0:
    raise UserError(f'rescale factor must be > 0, got {factor!r}.')
  h, w = x.shape[1:3]
  centre = np.array([0.0, (h - 1) / 2, (w - 1) / 2, 0.0])
  scale = np.array([1.0, 1 / factor, 1 / factor, 1.0])
  # Output pixel o reads input pixel centre + (o - centre) / factor.
  return _on_background(lambda v: ndimage.affine_transform(v, scale, offset=centre - scale * centre, order=1,
                                                           mode='constant', cval=0.0), x)


_CROSS = ndimage.generate_binary_structure(2, 1)[None, :, :, None]  # 3x3 plus, per image and channel


def thicken(images) -> np.ndarray:
  """Grey dilation (3x3 cross): bright strokes grow by a pixel on each side."""
  return ndimage.grey_dilation(_check(images), footprint=_CROSS, mode='nearest').astype(np.float32)


def thin(images) -> np.ndarray:
  """Grey erosion (3x3 cross): bright strokes lose a pixel on each side."""
  return ndimage.grey_erosion(_check(images), footprint=_CROSS, mode='nearest').astype(np.float32)


def invert(images) -> np.ndarray:
  return (-_check(images)).astype(np.float32)


SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    'rotate+30': lambda x: rotate(x, 30.0),
    'rotate-30': lambda x: rotate(x, -30.0),
    'scale0.7': lambda x: rescale(x, 0.7),
    'scale1.3': lambda x: rescale(x, 1.3),
    'thicken': thicken,
    'thin': thin,
    'invert': invert,
}


def shifted_sets(images, names=None) -> dict[str, np.ndarray]:
  """{shift name: shifted images} for the named shifts (default all of SHIFTS)."""
  names = list(SHIFTS) if names is None else list(names)
  unknown = [n for n in names if n not in SHIFTS]
  if unknown:
    raise UserError(f'unknown shift(s) {unknown}; choose from {", ".join(SHIFTS)}.')
  return {n: SHIFTS[n](images) for n in names}


def save_shift_grid(path: str, images, names=None, n: int = 10) -> str:
  """A PNG: the first n clean images, then one labelled row per shift."""
  x = _check(images)[:n]
  sets = shifted_sets(x, names)
  return viz.save_rows(path, [x] + list(sets.values()), ['clean'] + list(sets), max_cols=n)
