"""Image quality metrics on [0, 1] NHWC images, one value per image: `metric(x_hat, x) -> (N,)`.

Convert model outputs (in [-1, 1]) with `to_unit` first. All functions are jit-able and treat
each image independently. `ssim` matches

  skimage.metrics.structural_similarity(x_hat, x, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=1.0,
                                        channel_axis=-1)

(11 x 11 Gaussian window, border of 5 pixels cropped before averaging), computed in float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ge_jax.errors import UserError

Array = jax.Array

PSNR_CAP_DB = 100.0  # psnr of identical images: mse is floored at max_val**2 * 10**(-cap / 10)

_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5  # as skimage / scipy.ndimage.gaussian_filter
_SSIM_K1, _SSIM_K2 = 0.01, 0.03


def to_unit(x: Array) -> Array:
  """Maps model-range images [-1, 1] to [0, 1] (clipped)."""
  return jnp.clip((x + 1) / 2, 0.0, 1.0)


def _check(x_hat: Array, x: Array) -> None:
  if x_hat.shape != x.shape or x.ndim != 4:
    raise UserError(f'metrics need two NHWC batches of the same shape, got {x_hat.shape} and '
                    f'{x.shape}.')


def mse(x_hat: Array, x: Array) -> Array:
  """Mean squared error per image, (N,)."""
  _check(x_hat, x)
  d = x_hat.astype(jnp.float32) - x.astype(jnp.float32)
  return jnp.mean(d * d, axis=(1, 2, 3))


def psnr(x_hat: Array, x: Array, max_val: float = 1.0) -> Array:
  """PSNR in dB per image, 10 log10(max_val**2 / mse); capped at PSNR_CAP_DB (100 dB)."""
  floor = max_val**2 * 10.0**(-PSNR_CAP_DB / 10)
  return 10.0 * jnp.log10(max_val**2 / jnp.maximum(mse(x_hat, x), floor))


def _gaussian_window() -> np.ndarray:
  """1-D taps of scipy.ndimage.gaussian_filter(sigma=1.5, truncate=3.5): radius 5, 11 taps."""
  radius = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)
  t = np.arange(-radius, radius + 1, dtype=np.float64)
  g = np.exp(-0.5 * (t / _SSIM_SIGMA)**2)
  return g / g.sum()


def _filter_valid(x: Array, taps: np.ndarray) -> Array:
  """Separable depthwise Gaussian filter of NHWC x, 'VALID' (the border skimage crops)."""
  c = x.shape[-1]
  k = len(taps)
  hp = jax.lax.Precision.HIGHEST
  dn = ('NHWC', 'HWIO', 'NHWC')
  kv = jnp.asarray(np.tile(taps.reshape(k, 1, 1, 1), (1, 1, 1, c)), jnp.float32)
  kh = jnp.asarray(np.tile(taps.reshape(1, k, 1, 1), (1, 1, 1, c)), jnp.float32)
  x = jax.lax.conv_general_dilated(x, kv, (1, 1), 'VALID', dimension_numbers=dn,
                                   feature_group_count=c, precision=hp)
  return jax.lax.conv_general_dilated(x, kh, (1, 1), 'VALID', dimension_numbers=dn,
                                      feature_group_count=c, precision=hp)


def ssim(x_hat: Array, x: Array) -> Array:
  """Structural similarity per image (mean over pixels and channels), (N,); data range 1."""
  _check(x_hat, x)
  taps = _gaussian_window()
  if min(x.shape[1:3]) < len(taps):
    raise UserError(f'ssim needs images of at least {len(taps)}x{len(taps)} pixels, got '
                    f'{x.shape[1]}x{x.shape[2]}.')
  a = x_hat.astype(jnp.float32)
  b = x.astype(jnp.float32)
  c = a.shape[-1]
  stats = _filter_valid(jnp.concatenate([a, b, a * a, b * b, a * b], axis=-1), taps)
  ua, ub, uaa, ubb, uab = (stats[..., i * c:(i + 1) * c] for i in range(5))
  va, vb, vab = uaa - ua * ua, ubb - ub * ub, uab - ua * ub
  c1, c2 = _SSIM_K1**2, _SSIM_K2**2  # data_range = 1
  s = ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2))
  return jnp.mean(s, axis=(1, 2, 3))


def summary(values: Array) -> dict[str, Array]:
  """Mean and standard error (std with ddof=1 over sqrt(n); 0 for a single value)."""
  values = jnp.asarray(values, jnp.float32).reshape(-1)
  n = values.shape[0]
  mean = jnp.mean(values)
  se = jnp.std(values, ddof=1) / np.sqrt(n) if n > 1 else jnp.zeros((), jnp.float32)
  return {'mean': mean, 'se': se}
