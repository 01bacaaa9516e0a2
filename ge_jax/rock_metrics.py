"""What the porous-media field measures on a slice, and the error of a restoration in each.

All functions are numpy, batched over images, and take grey images in [0, 1] as (N, H, W) or
(N, H, W, 1) (use `metrics.to_unit` on model outputs), or binary pore masks (N, H, W).

Segmentation (stated, because every number below depends on it): **pore = darker than the Otsu
threshold of the clean image**, and the restoration is segmented with the *same* threshold as its
clean image. A fixed threshold is what a calibrated scanner gives (pore and grain grey levels are
known), and it makes a restoration that loses contrast or shifts grey levels show the porosity
error it causes, which a per-image Otsu threshold on the restoration would hide. (Per-image Otsu
on both is `segmentation='otsu'`, for data without a trusted reference.)

* porosity: pore fraction of the image.
* S2(r): two-point correlation, the probability that two points r pixels apart are both pore,
  from the FFT autocorrelation of the pore mask with zero padding (no wrap-around), each offset
  normalised by the number of pixel pairs at that offset, then averaged over the offsets whose
  length rounds to r (r = 0 .. r_max, weighted by pair counts). S2(0) = porosity; for an
  uncorrelated medium S2(r > 0) = porosity^2.
* specific surface: pore-grain interface length per unit area (1 / pixel), estimated as
  pi/4 x (horizontal + vertical pore-grain neighbour pairs) / pixels; the pi/4 factor makes the
  4-neighbour count unbiased for isotropic interfaces (Cauchy-Crofton): a disc of radius R gives
  about 2 pi R / area.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

from ge_jax.errors import UserError

SEGMENTATIONS = ('clean_otsu', 'otsu')
R_MAX = 32


def _gray(x, what: str) -> np.ndarray:
  x = np.asarray(x, dtype=np.float64)
  if x.ndim == 4 and x.shape[-1] == 1:
    x = x[..., 0]
  if x.ndim != 3:
    raise UserError(f'{what} has shape {x.shape}; rock metrics need grayscale (N, H, W) or '
                    '(N, H, W, 1) images.')
  return x


def otsu_threshold(x, bins: int = 256) -> np.ndarray:
  """Per-image Otsu threshold of [0, 1] grey images: maximises the between-class variance. (N,)."""
  x = _gray(x, 'the images')
  n = x.shape[0]
  idx = np.clip((x.reshape(n, -1) * bins).astype(np.int64), 0, bins - 1)
  hist = np.bincount((idx + bins * np.arange(n)[:, None]).ravel(),
                     minlength=n * bins).reshape(n, bins).astype(np.float64)
  p = hist / hist.sum(axis=1, keepdims=True)
  centres = (np.arange(bins) + 0.5) / bins
  w0 = np.cumsum(p, axis=1)
  m0 = np.cumsum(p * centres, axis=1)
  mt = m0[:, -1:]
  with np.errstate(divide='ignore', invalid='ignore'):
    between = (mt * w0 - m0)**2 / (w0 * (1.0 - w0))
  between = np.nan_to_num(between[:, :-1], nan=-1.0, posinf=-1.0)
  # The threshold lies between bin k and k+1; ties (a flat plateau) take the middle of the plateau.
  best = between.max(axis=1, keepdims=True)
  on = between >= best - 1e-12 * np.maximum(best, 1e-300)
  k = (np.argmax(on, axis=1) + (bins - 2 - np.argmax(on[:, ::-1], axis=1))) / 2.0
  return (k + 1.0) / bins


def segment(x, threshold) -> np.ndarray:
  """Pore mask (N, H, W): pixels darker than the per-image ``threshold`` (scalar or (N,))."""
  x = _gray(x, 'the images')
  t = np.broadcast_to(np.asarray(threshold, np.float64), (x.shape[0],))
  return x < t[:, None, None]


def porosity(pore) -> np.ndarray:
  """Pore fraction per image, (N,)."""
  return np.asarray(pore, bool).reshape(len(pore), -1).mean(axis=1)


def _padded(h: int, w: int, r_max: int) -> tuple[int, int]:
  """FFT sizes whose circular autocorrelation equals the zero-padded one for offsets <= r_max."""
  return scipy.fft.next_fast_len(h + r_max), scipy.fft.next_fast_len(w + r_max)


@functools.lru_cache(maxsize=8)
def _radial_bins(h: int, w: int, r_max: int) -> tuple[np.ndarray, np.ndarray]:
  """Per offset of the padded autocorrelation: its rounded length (r_max + 1 = unused), pair count."""
  ph, pw = _padded(h, w, r_max)
  dy = np.fft.fftfreq(ph, 1.0 / ph)[:, None]
  dx = np.fft.fftfreq(pw, 1.0 / pw)[None, :]
  r = np.rint(np.hypot(dy, dx)).astype(np.int64)
  pairs = np.maximum((h - np.abs(dy)) * (w - np.abs(dx)), 0.0)
  r = np.where((pairs > 0) & (r <= r_max), r, r_max + 1)
  return r, pairs


def two_point_map(pore, r_max: int = R_MAX) -> np.ndarray:
  """S2 at every offset (dy, dx) with |dy|, |dx| <= r_max, in FFT order ([dy % P, dx % Q]).

  Entries at larger offsets are not meaningful (the padding only covers r_max).
  """
  m = np.asarray(pore, np.float32)
  _, h, w = m.shape
  shape = _padded(h, w, r_max)
  f = scipy.fft.rfft2(m, s=shape)
  auto = scipy.fft.irfft2(f * np.conj(f), s=shape)
  _, pairs = _radial_bins(h, w, r_max)
  return np.where(pairs > 0, auto / np.where(pairs > 0, pairs, 1.0), 0.0)


def two_point(pore, r_max: int = R_MAX) -> np.ndarray:
  """Radially averaged S2(r), r = 0 .. r_max, per image: (N, r_max + 1)."""
  pore = np.asarray(pore, bool)
  if pore.ndim != 3:
    raise UserError(f'pore masks have shape {pore.shape}; (N, H, W) is expected.')
  _, h, w = pore.shape
  if not 0 <= r_max < min(h, w):
    raise UserError(f'r_max={r_max} must be in [0, {min(h, w) - 1}] for {h}x{w} images.')
  s2 = two_point_map(pore, r_max)
  return s2.reshape(len(s2), -1).astype(np.float64) @ _radial_average_matrix(h, w, r_max)


@functools.lru_cache(maxsize=8)
def _radial_average_matrix(h: int, w: int, r_max: int) -> np.ndarray:
  """(P*Q, r_max + 1): S2 map (flattened) -> pair-weighted mean over the offsets of each r."""
  r, pairs = _radial_bins(h, w, r_max)
  onehot = (r.ravel()[:, None] == np.arange(r_max + 1)[None]) * pairs.ravel()[:, None]
  return onehot / onehot.sum(axis=0, keepdims=True)


def specific_surface(pore) -> np.ndarray:
  """Pore-grain interface length per unit area (1 / pixel), per image: (N,)."""
  m = np.asarray(pore, bool)
  if m.ndim != 3:
    raise UserError(f'pore masks have shape {m.shape}; (N, H, W) is expected.')
  pairs = ((m[:, 1:, :] != m[:, :-1, :]).sum(axis=(1, 2))
           + (m[:, :, 1:] != m[:, :, :-1]).sum(axis=(1, 2)))
  return np.pi / 4.0 * pairs / (m.shape[1] * m.shape[2])


def describe(pore, r_max: int = R_MAX) -> dict[str, np.ndarray]:
  """{'porosity' (N,), 's2' (N, r_max + 1), 'specific_surface' (N,)} of pore masks."""
  return dict(porosity=porosity(pore), s2=two_point(pore, r_max),
              specific_surface=specific_surface(pore))


def rock_errors(x_hat, x, *, segmentation: str = 'clean_otsu',
                r_max: int = R_MAX) -> dict[str, np.ndarray]:
  """Per-image errors of restorations ``x_hat`` against clean slices ``x`` ([0, 1], same shape).

  Returns (each (N,)):
    porosity_error: |porosity(x_hat) - porosity(x)| (a fraction, 0..1).
    s2_error: root mean square over r = 0 .. r_max of S2_hat(r) - S2(r).
    specific_surface_error: |s(x_hat) - s(x)| in 1 / pixel (the slices' own s is 0.05-0.3).
  """
  if segmentation not in SEGMENTATIONS:
    raise UserError(f'segmentation={segmentation!r} is not one of {SEGMENTATIONS}.')
  x_hat, x = _gray(x_hat, 'the restorations'), _gray(x, 'the clean images')
  if x_hat.shape != x.shape:
    raise UserError(f'rock metrics need restorations and clean images of the same shape, got '
                    f'{x_hat.shape} and {x.shape}.')
  t = otsu_threshold(x)
  t_hat = t if segmentation == 'clean_otsu' else otsu_threshold(x_hat)
  a, b = describe(segment(x_hat, t_hat), r_max), describe(segment(x, t), r_max)
  return dict(porosity_error=np.abs(a['porosity'] - b['porosity']),
              s2_error=np.sqrt(np.mean((a['s2'] - b['s2'])**2, axis=1)),
              specific_surface_error=np.abs(a['specific_surface'] - b['specific_surface']))


def score_entry(x_hat, x, **kwargs) -> dict:
  """`rock_errors` as metrics.json fields: '<name>_mean', '<name>_se' and 'per_image' lists.

  Meant for `experiment.score` beside PSNR / SSIM (same mean / standard-error convention as
  `metrics.summary`); ``x_hat`` and ``x`` in [0, 1].
  """
  entry, per_image = {}, {}
  for name, v in rock_errors(x_hat, x, **kwargs).items():
    v = np.asarray(v, np.float64)
    entry[f'{name}_mean'] = float(v.mean())
    entry[f'{name}_se'] = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    per_image[name] = [round(float(t), 5) for t in v]
  entry['per_image'] = per_image
  return entry
