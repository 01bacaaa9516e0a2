"""What a sampling method's chains say about its own error: per-pixel intervals, their coverage, a flag.

A sampling method (GE sample, GE+pixels) runs K Langevin chains per image; the solver returns the
per-pixel mean m and standard deviation s of their samples (`solver.Result.post_mean/post_std`).
Here: the interval m +- c z s (z the standard normal quantile of the nominal level, c = 1 before
calibration), the share of the clean pixels it covers, and a per-image score (the mean of s) that
flags the restorations least to trust. `conformal_scale` fits c on held-out images (split
conformal: the level-quantile of |x - m| / s over their pixels), so that on new images from the
same distribution the intervals cover that share of the pixels. It is a marginal promise over
pixels under the model and the data it was fitted on, not a guarantee for one pixel or one image.
All on the [-1, 1] scale of the images; std values reported on [0, 1] (half of it).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

LEVELS = (0.5, 0.9)
FLAG_FRACTION = 0.1   # the most uncertain share of the images that solve.py lists
_CHANGED = 1e-6       # a pixel the corruption changed: |y - x| above this ([-1, 1] scale)


def z_of(level: float) -> float:
  """The standard normal quantile of a central interval of probability `level`."""
  return float(stats.norm.ppf(0.5 + level / 2))


def image_scores(std: np.ndarray) -> np.ndarray:
  """Per image, the mean posterior std over its pixels, on the [0, 1] scale: (N,)."""
  return np.asarray(std, np.float64).reshape(len(std), -1).mean(axis=1) / 2.0


def coverage(mean: np.ndarray, std: np.ndarray, clean: np.ndarray, level: float, scale: float = 1.0,
             mask: np.ndarray | None = None) -> float:
  """The share of the clean pixels (where `mask`, if given) inside mean +- scale z(level) std."""
  inside = np.abs(clean - mean) <= scale * z_of(level) * std
  inside = inside if mask is None else inside[mask]
  return float(inside.mean()) if inside.size else float('nan')


def conformal_scale(mean: np.ndarray, std: np.ndarray, clean: np.ndarray, level: float) -> float:
  """The scale c of the intervals mean +- c z(level) std that covers `level` of these pixels:
  the ceil((n + 1) level) / n quantile of |clean - mean| / (z std) (split conformal, finite-n valid)."""
  r = (np.abs(clean - mean) / np.maximum(z_of(level) * std, 1e-12)).ravel()
  r = r[np.isfinite(r)]
  q = min(1.0, math.ceil((len(r) + 1) * level) / len(r))
  return float(np.quantile(r, q, method='higher'))


def summary(mean: np.ndarray, std: np.ndarray, restored: np.ndarray, clean: np.ndarray | None,
            corrupted: np.ndarray | None, indices: np.ndarray, scales: dict | None = None) -> dict:
  """metrics.json's 'uncertainty' entry of one method: per-image scores, the images flagged as
  least to trust, and with clean images the intervals' coverage (all pixels; the pixels the
  corruption changed), and how the score ranks the restorations' errors (Spearman, per-image MSE).
  `scales`: {level: c} from `conformal_scale` on validation images (calibrated coverage beside)."""
  ok = np.isfinite(std.reshape(len(std), -1)).all(axis=1) & np.isfinite(mean.reshape(len(mean), -1)).all(axis=1)
  score = image_scores(np.where(ok.reshape((-1,) + (1,) * (std.ndim - 1)), std, np.nan))
  n_flag = max(1, int(round(FLAG_FRACTION * ok.sum()))) if ok.any() else 0
  order = np.argsort(-np.where(ok, score, -np.inf))[:n_flag]
  out = dict(score_mean=float(np.nanmean(score)) if ok.any() else float('nan'),
             per_image=[round(float(v), 5) for v in score],
             flagged=[int(indices[i]) for i in order])
  if clean is None or not ok.any():
    return out
  m, s, x = mean[ok], std[ok], clean[ok]
  changed = None if corrupted is None else np.abs(corrupted[ok] - x) > _CHANGED
  for level in LEVELS:
    key = f'{round(100 * level)}'
    out[f'coverage_{key}'] = coverage(m, s, x, level)
    if changed is not None:
      out[f'coverage_{key}_changed'] = coverage(m, s, x, level, mask=changed)
    if scales and level in scales:
      out[f'calibrated_coverage_{key}'] = coverage(m, s, x, level, scales[level])
      if changed is not None:
        out[f'calibrated_coverage_{key}_changed'] = coverage(m, s, x, level, scales[level], changed)
  mse = np.mean(np.square(restored[ok] - x).reshape(int(ok.sum()), -1), axis=1)
  if ok.sum() >= 3:
    out['rank_correlation_mse'] = float(stats.spearmanr(score[ok], mse).statistic)
  return out
