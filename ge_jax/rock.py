"""Synthetic digital-rock slices: 2-D porous media rendered like micro-CT, numpy/scipy only.

The two generators the porous-media field uses for 2-D test media (porespy's `blobs` and its
overlapping-grain packings), reimplemented so that no heavy dependency is needed:

* ``blobs``: white noise, Gaussian-filtered with a per-image correlation length ``sigma``
  (periodic, through the FFT, so a whole batch filters at once), thresholded at the per-image
  porosity quantile: exactly ``round(phi * H * W)`` pixels are pore.
* ``grains``: overlapping discs (a Boolean model: centres uniform, Poisson count for the wanted
  porosity, exp(-n pi r^2 / A) = phi) placed on a canvas padded by the largest radius, so grains
  cross the border; the pore space is the set of pixels farther than a per-image quantile of the
  distance to the nearest centre, which makes the porosity exact and the grains discs of radius
  close to ``r``.

Each binary medium (pore = 1) is rendered like a CT slice: grey levels for pore (dark, air) and
grain (bright, mineral) jittered per image, a small Gaussian blur (the scanner's point-spread
function) and additive Gaussian noise, clipped to [0, 1] and mapped to the model range [-1, 1].

Determinism: image ``i`` of split ``s`` is drawn from ``SeedSequence((seed, s, i))`` alone, so the
train / val / test images come from disjoint seeds and a split of any size starts with the same
images. The parameters live in ``config.data.rock`` (see configs/rock64.py). Generating 11,000
slices takes 15-30 s on a 2-core CPU, so each split is cached as 16-bit slices (ge_jax/data_cache.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from ge_jax import data_cache
from ge_jax.errors import UserError

KINDS = ('blobs', 'grains')
SPLITS = {'train': 0, 'val': 1, 'test': 2}
_CACHE_VERSION = 1  # bump when the generator's output changes for the same spec


@dataclasses.dataclass(frozen=True)
class RockSpec:
  """What a rock slice generator needs (from ``config.data`` and ``config.data.rock``).

  Ranges are (low, high) and drawn uniformly per image.
  """
  image_size: int = 64
  kinds: tuple[str, ...] = KINDS        # each image picks one uniformly
  porosity: tuple[float, float] = (0.2, 0.5)
  blob_sigma: tuple[float, float] = (1.5, 4.0)     # pixels, blobs' correlation length
  grain_radius: tuple[float, float] = (2.5, 7.0)   # pixels
  pore_level: tuple[float, float] = (0.10, 0.25)   # grey level of pores in [0, 1]
  grain_level: tuple[float, float] = (0.65, 0.85)  # grey level of grains
  blur: float = 0.7                     # Gaussian PSF sigma, pixels (0: none)
  noise: float = 0.03                   # additive Gaussian noise std on the [0, 1] scale
  seed: int = 2022

  @classmethod
  def from_config(cls, data_cfg) -> 'RockSpec':
    r = data_cfg.rock
    kinds = tuple(k.strip() for k in str(r.kinds).split(',') if k.strip())
    spec = cls(image_size=int(data_cfg.image_size), kinds=kinds,
               porosity=_pair(r.porosity, 'porosity'), blob_sigma=_pair(r.blob_sigma, 'blob_sigma'),
               grain_radius=_pair(r.grain_radius, 'grain_radius'),
               pore_level=_pair(r.pore_level, 'pore_level'),
               grain_level=_pair(r.grain_level, 'grain_level'), blur=float(r.blur),
               noise=float(r.noise), seed=int(r.seed))
    spec.check()
    return spec

  def check(self) -> None:
    bad = [k for k in self.kinds if k not in KINDS]
    if not self.kinds or bad:
      raise UserError(f'config.data.rock.kinds={",".join(self.kinds)!r} must be a comma list of '
                      f'{", ".join(KINDS)}.')
    lo, hi = self.porosity
    if not 0 < lo <= hi < 1:
      raise UserError(f'config.data.rock.porosity={self.porosity} must satisfy 0 < low <= high < 1.')
    for name in ('blob_sigma', 'grain_radius'):
      lo, hi = getattr(self, name)
      if not 0 < lo <= hi <= self.image_size / 2:
        raise UserError(f'config.data.rock.{name}={getattr(self, name)} must satisfy '
                        f'0 < low <= high <= image_size / 2.')
    if self.blur < 0 or self.noise < 0:
      raise UserError(f'config.data.rock.blur={self.blur} and noise={self.noise} must be >= 0.')
    if self.image_size < 8:
      raise UserError(f'config.data.image_size={self.image_size} is too small for rock slices (>= 8).')


def _pair(v, name: str) -> tuple[float, float]:
  try:
    lo, hi = (float(t) for t in v)
  except (TypeError, ValueError) as e:
    raise UserError(f'config.data.rock.{name}={v!r} must be a (low, high) pair of numbers.') from e
  if lo > hi:
    raise UserError(f'config.data.rock.{name}={v!r}: low must not exceed high.')
  return lo, hi


@dataclasses.dataclass(frozen=True)
class _Draw:
  """Per-image random choices (one row per image)."""
  kind: np.ndarray       # index into spec.kinds
  porosity: np.ndarray
  size: np.ndarray       # blob sigma or grain radius
  levels: np.ndarray     # (N, 2) pore, grain grey levels
  noise: np.ndarray      # (N, H, W) unit white noise for the blobs field
  centres: list          # per image: (k, 2) grain centres on the padded canvas (or empty)
  ct_noise: np.ndarray   # (N, H, W) unit noise of the CT rendering


def _draw(spec: RockSpec, split: int, start: int, n: int) -> _Draw:
  s = spec.image_size
  pad = int(np.ceil(spec.grain_radius[1]))
  side = s + 2 * pad
  kind = np.empty(n, np.int64)
  phi, size = np.empty(n), np.empty(n)
  levels = np.empty((n, 2))
  noise = np.empty((n, s, s))
  ct_noise = np.empty((n, s, s))
  centres = []
  for j in range(n):
    rng = np.random.default_rng(np.random.SeedSequence((spec.seed, split, start + j)))
    kind[j] = rng.integers(len(spec.kinds))
    phi[j] = rng.uniform(*spec.porosity)
    levels[j] = rng.uniform(*spec.pore_level), rng.uniform(*spec.grain_level)
    ct_noise[j] = rng.standard_normal((s, s))
    if spec.kinds[kind[j]] == 'blobs':
      size[j] = rng.uniform(*spec.blob_sigma)
      noise[j] = rng.standard_normal((s, s))
      centres.append(np.zeros((0, 2)))
    else:
      size[j] = rng.uniform(*spec.grain_radius)
      # Boolean model: porosity = exp(-density * pi r^2) on the padded canvas.
      count = rng.poisson(-np.log(phi[j]) * side * side / (np.pi * size[j]**2))
      centres.append(rng.uniform(0, side, (max(int(count), 1), 2)))
  return _Draw(kind, phi, size, levels, noise, centres, ct_noise)


def _threshold_at_fraction(field: np.ndarray, fraction: np.ndarray) -> np.ndarray:
  """Per image, True on the round(fraction * H * W) largest values of ``field`` (N, H, W)."""
  n, h, w = field.shape
  flat = field.reshape(n, -1)
  k = np.clip(np.round(fraction * h * w).astype(np.int64), 0, h * w)
  order = np.argsort(-flat.astype(np.float32), axis=1)  # deterministic, ties in a fixed order
  rank = np.empty_like(order)
  np.put_along_axis(rank, order, np.arange(h * w)[None], axis=1)
  return (rank < k[:, None]).reshape(n, h, w)


def _gaussian_filter_periodic(noise: np.ndarray, sigma: np.ndarray) -> np.ndarray:
  """Per-image Gaussian filter with per-image sigma, periodic boundary, in one batched FFT."""
  _, h, w = noise.shape
  fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
  transfer = np.exp(-2 * np.pi**2 * sigma[:, None, None]**2 * (fy**2 + fx**2)[None])
  return np.fft.irfft2(np.fft.rfft2(noise) * transfer, s=(h, w))


def _grain_distance(centres: np.ndarray, side: int, pad: int, size: int) -> np.ndarray:
  """Distance of each pixel of the central size x size window to the nearest grain centre."""
  canvas = np.ones((side, side), bool)
  ij = np.clip(np.floor(centres).astype(np.int64), 0, side - 1)
  canvas[ij[:, 0], ij[:, 1]] = False
  return ndimage.distance_transform_edt(canvas)[pad:pad + size, pad:pad + size]


def _render(pore: np.ndarray, d: _Draw, spec: RockSpec) -> np.ndarray:
  """CT-like grey levels in [0, 1]: pore/grain levels, PSF blur, additive noise."""
  img = np.where(pore, d.levels[:, :1, None], d.levels[:, 1:, None])
  if spec.blur > 0:
    img = ndimage.gaussian_filter(img, sigma=(0, spec.blur, spec.blur), mode='reflect')
  return np.clip(img + spec.noise * d.ct_noise, 0.0, 1.0)


def generate(spec: RockSpec, split: str, n: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Rock slices ``start .. start + n - 1`` of a split.

  Returns:
    (images float32 (n, S, S, 1) in [-1, 1], quantised to 16 bits like a CT slice; pore masks
    bool (n, S, S): the clean binary medium).
  """
  if split not in SPLITS:
    raise UserError(f'rock split {split!r} is not one of {tuple(SPLITS)}.')
  s = spec.image_size
  if n <= 0:
    return np.zeros((0, s, s, 1), np.float32), np.zeros((0, s, s), bool)
  d = _draw(spec, SPLITS[split], start, n)
  pad = int(np.ceil(spec.grain_radius[1]))
  is_blob = np.array([spec.kinds[k] == 'blobs' for k in d.kind])
  # Pore = large values of a field: the blobs' negated smooth noise, the grains' distance to them.
  field = np.zeros((n, s, s))
  if is_blob.any():
    field[is_blob] = -_gaussian_filter_periodic(d.noise[is_blob], d.size[is_blob])
  for j in np.flatnonzero(~is_blob):
    field[j] = _grain_distance(d.centres[j], s + 2 * pad, pad, s)
  pore = _threshold_at_fraction(field, d.porosity)
  return from_uint16(to_uint16(_render(pore, d, spec))), pore


def to_uint16(unit: np.ndarray) -> np.ndarray:
  """[0, 1] grey levels -> a 16-bit slice, as a CT scanner stores it (also the cache's format)."""
  return np.round(np.clip(unit, 0.0, 1.0) * 65535.0).astype(np.uint16)


def from_uint16(slices: np.ndarray) -> np.ndarray:
  """16-bit slices (N, S, S) -> float32 (N, S, S, 1) in [-1, 1]."""
  return (slices.astype(np.float32) / np.float32(32767.5) - 1.0)[..., None]


def cached_split(spec: RockSpec, split: str, n: int) -> np.ndarray:
  """``generate(spec, split, n)[0]``, kept as 16-bit slices in the data cache (ge_jax/data_cache)."""
  key = [_CACHE_VERSION, dataclasses.asdict(spec), split, n]
  make = lambda: to_uint16((generate(spec, split, n)[0][..., 0] + 1.0) / 2.0)
  return from_uint16(data_cache.cached_array('rock', key, make))


def load_splits(data_cfg) -> dict[str, np.ndarray]:
  """{'train', 'val', 'test'} images of ``config.data`` (sizes train_size, val_size, test_size)."""
  spec = RockSpec.from_config(data_cfg)
  if int(data_cfg.channels) != 1:
    raise UserError(f'rock slices are grayscale but config.data.channels={data_cfg.channels}; set it to 1.')
  sizes = data_cache.split_sizes(data_cfg)
  return {split: cached_split(spec, split, n) for split, n in sizes.items()}
