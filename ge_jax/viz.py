"""Pictures: image grids with row labels, written as PNG."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ge_jax import fileio


def to_uint8(x: np.ndarray) -> np.ndarray:
  """[-1, 1] float images -> uint8 (values outside are clipped)."""
  x = np.asarray(x, np.float32)
  return np.round((np.clip(x, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def grid(images: np.ndarray, ncol: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
  """(N, H, W, C) in [-1, 1] -> one (rows*H, cols*W, C) uint8 picture, white gaps between tiles."""
  images = to_uint8(images)
  n, h, w, c = images.shape
  ncol = ncol or int(np.ceil(np.sqrt(n)))
  nrow = int(np.ceil(n / ncol))
  out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, np.uint8)
  for i in range(n):
    r, q = divmod(i, ncol)
    out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = images[i]
  if scale > 1:
    out = out.repeat(scale, 0).repeat(scale, 1)
  return out


def save_png(path: str, picture: np.ndarray) -> str:
  pic = picture[..., 0] if picture.ndim == 3 and picture.shape[-1] == 1 else picture
  with fileio.atomic_path(path) as tmp:
    Image.fromarray(pic).save(tmp)
  return path


def save_grid(path: str, images: np.ndarray, ncol: int | None = None, scale: int = 2) -> str:
  return save_png(path, grid(images, ncol, scale=scale))


def save_rows(path: str, rows: Sequence[np.ndarray], labels: Sequence[str], scale: int = 2,
              max_cols: int = 16) -> str:
  """One row per method (clean, corrupted, AE, GAN, GE, ...), labelled on the left."""
  rows = [np.asarray(r)[:max_cols] for r in rows]
  h, w, c = rows[0].shape[1:]
  tiles = [grid(r, ncol=len(r), scale=scale) for r in rows]
  label_w = 8 * max(len(l) for l in labels) + 10
  width = label_w + max(t.shape[1] for t in tiles)
  canvas = Image.new('RGB', (width, sum(t.shape[0] for t in tiles)), 'white')
  draw = ImageDraw.Draw(canvas)
  y = 0
  for tile, label in zip(tiles, labels):
    img = Image.fromarray(tile[..., 0] if c == 1 else tile).convert('RGB')
    canvas.paste(img, (label_w, y))
    draw.text((4, y + tile.shape[0] // 2 - 6), label, fill='black')
    y += tile.shape[0]
  with fileio.atomic_path(path) as tmp:
    canvas.save(tmp)
  return path


def save_figure(path: str, fig, dpi: int = 80) -> str:
  """Saves a matplotlib figure atomically and closes it."""
  import matplotlib.pyplot as plt
  with fileio.atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=dpi)
  plt.close(fig)
  return path
