"""An offline RGB set: patches of the colour photographs bundled with scikit-image and scikit-learn.

Six real photographs ship with the two packages (no download): scikit-image's astronaut, coffee,
chelsea (a cat) and rocket, scikit-learn's china (a temple) and flower. Their synthetic or
scientific images (colorwheel, logo, hubble_deep_field, retina, immunohistochemistry) are left out.

Splits come from disjoint source regions: each photograph is cut into TILE x TILE tiles; a fixed
shuffle per photograph gives about 10% of its tiles to test and 10% to val (at least one each)
and the rest to train. Every patch lies inside one tile, so no pixel of a test patch is seen in
training. A patch is a square of side 64, 96 or 128 source pixels (scales 1, 1.5, 2 at 64x64),
placed at random inside a tile, flipped left-right with probability 1/2 and resized (Lanczos) to
``image_size``. Near-flat patches (grey-level std below MIN_STD: clear sky, out-of-focus
background) are redrawn, so the set measures restoration of structure. Each photograph is equally likely to be chosen, whatever its size. Patch ``i`` of
split ``s`` comes from ``SeedSequence((seed, s, i))`` alone.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from ge_jax import data_cache
from ge_jax.errors import UserError

TILE = 128
SIDES = (64, 96, 128)        # patch sides in source pixels (all fit in a tile)
HELD_OUT_FRACTION = 0.1      # of each photograph's tiles, for test and again for val
SPLITS = {'train': 0, 'val': 1, 'test': 2}
_TILE_SEED = 64
_CACHE_VERSION = 2           # bump when the patches change for the same settings
MIN_STD = 0.06              # a patch flatter than this ([0, 1] scale) is redrawn ...
_MAX_DRAWS = 20             # ... up to this many times (then kept)


@functools.lru_cache(maxsize=1)
def photographs() -> tuple[tuple[str, np.ndarray], ...]:
  """The bundled colour photographs as (name, uint8 (H, W, 3)), in a fixed order."""
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  from sklearn.datasets import load_sample_images  # pylint: disable=g-import-not-at-top
  out = [(n, getattr(skdata, n)()) for n in ('astronaut', 'coffee', 'chelsea', 'rocket')]
  sk = load_sample_images()
  out += [(f.rsplit('/', 1)[-1].split('.')[0], im) for f, im in zip(sk.filenames, sk.images)]
  for name, im in out:
    if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
      raise UserError(f'the bundled photograph {name!r} has shape {im.shape} and dtype {im.dtype}, '
                      'not RGB uint8; reinstall scikit-image / scikit-learn.')
    im.flags.writeable = False
  return tuple(out)


def tiles(split: str) -> list[tuple[int, int, int]]:
  """(photo index, top, left) of every tile of a split."""
  out = []
  for p, (_, im) in enumerate(photographs()):
    rows, cols = im.shape[0] // TILE, im.shape[1] // TILE
    order = np.random.default_rng((_TILE_SEED, p)).permutation(rows * cols)
    k = max(1, int(round(HELD_OUT_FRACTION * rows * cols)))
    share = {'test': order[:k], 'val': order[k:2 * k], 'train': order[2 * k:]}[split]
    out += [(p, (t // cols) * TILE, (t % cols) * TILE) for t in sorted(share)]
  return out


def generate(split: str, n: int, image_size: int = 64, seed: int = 0) -> np.ndarray:
  """Patches 0 .. n-1 of a split as float32 (n, image_size, image_size, 3) in [-1, 1]."""
  if split not in SPLITS:
    raise UserError(f'photo split {split!r} is not one of {tuple(SPLITS)}.')
  photos = photographs()
  by_photo: dict[int, list] = {}
  for t in tiles(split):
    by_photo.setdefault(t[0], []).append(t[1:])
  out = np.empty((n, image_size, image_size, 3), np.float32)
  for i in range(n):
    rng = np.random.default_rng(np.random.SeedSequence((seed, SPLITS[split], i)))
    for _ in range(_MAX_DRAWS):  # redraw near-flat patches (sky, background blur)
      p = int(rng.integers(len(photos)))
      top, left = by_photo[p][rng.integers(len(by_photo[p]))]
      side = int(rng.choice(SIDES))
      dy, dx = rng.integers(0, TILE - side + 1, 2)
      patch = photos[p][1][top + dy:top + dy + side, left + dx:left + dx + side]
      if patch[::2, ::2].mean(axis=-1).std() >= MIN_STD * 255:  # grey level (colour is not structure)
        break
    if rng.random() < 0.5:
      patch = patch[:, ::-1]
    if side != image_size:
      patch = np.asarray(Image.fromarray(np.ascontiguousarray(patch)).resize(
          (image_size, image_size), Image.Resampling.LANCZOS))
    out[i] = patch.astype(np.float32) / 127.5 - 1.0
  return out


def load_splits(data_cfg) -> dict[str, np.ndarray]:
  """{'train', 'val', 'test'} patches of ``config.data`` (sizes train_size, val_size, test_size)."""
  if int(data_cfg.channels) != 3:
    raise UserError(f'photo patches are RGB but config.data.channels={data_cfg.channels}; set it to 3.')
  size = int(data_cfg.image_size)
  if not 8 <= size <= 256:
    raise UserError(f'config.data.image_size={size}: photo patches are made for 8..256 pixels.')
  sizes = data_cache.split_sizes(data_cfg)
  seed = int(data_cfg.get('seed', 0))
  to_uint8 = lambda x: np.round((x + 1.0) * 127.5).astype(np.uint8)  # lossless: patches are 8-bit
  return {s: data_cache.cached_array('photos', [_CACHE_VERSION, s, n, size, seed],
                                     lambda s=s, n=n: to_uint8(generate(s, n, size, seed)))
          .astype(np.float32) / 127.5 - 1.0 for s, n in sizes.items()}
