"""Tests of ge_jax.metrics: PSNR of known MSEs, SSIM against skimage, per-image independence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import structural_similarity

from ge_jax import metrics
from ge_jax.errors import UserError


def _sk_ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  return np.array([
      structural_similarity(ai.astype(np.float64), bi.astype(np.float64), gaussian_weights=True,
                            sigma=1.5, use_sample_covariance=False, data_range=1.0,
                            channel_axis=-1)
      for ai, bi in zip(a, b)])


def _shapes(n: int, size: int, channels: int, seed: int) -> np.ndarray:
  """MNIST-like images in [0, 1]: a few bright discs and strokes on black, softened."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:size, :size]
  out = np.zeros((n, size, size, channels), np.float32)
  for i in range(n):
    img = np.zeros((size, size, channels))
    for _ in range(3):
      cy, cx = rng.uniform(size * 0.2, size * 0.8, 2)
      r = rng.uniform(size * 0.08, size * 0.2)
      colour = rng.uniform(0.5, 1.0, channels)
      img[(yy - cy)**2 + (xx - cx)**2 < r**2] = colour
      y0, x0 = rng.integers(2, size - 8, 2)
      img[y0:y0 + 2, x0:x0 + 6] = colour
    out[i] = ndimage.gaussian_filter(img, sigma=(0.7, 0.7, 0))
  return out


@pytest.mark.parametrize('shape', [(5, 28, 28, 1), (4, 32, 32, 3)])
def test_ssim_matches_skimage_random(shape):
  rng = np.random.default_rng(0)
  x = rng.uniform(size=shape).astype(np.float32)
  x_hat = np.clip(x + rng.normal(0, 0.2, shape), 0, 1).astype(np.float32)
  pairs = [(x_hat, x), (rng.uniform(size=shape).astype(np.float32), x)]
  for a, b in pairs:
    got = np.asarray(jax.jit(metrics.ssim)(a, b))
    np.testing.assert_allclose(got, _sk_ssim(a, b), atol=1e-3)


@pytest.mark.parametrize('size,channels', [(28, 1), (32, 3)])
def test_ssim_matches_skimage_on_blurred_and_noisy_shapes(size, channels):
  x = _shapes(4, size, channels, seed=size)
  rng = np.random.default_rng(1)
  blurred = ndimage.gaussian_filter(x, sigma=(0, 1.2, 1.2, 0))
  noisy = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
  for x_hat in (blurred, noisy):
    np.testing.assert_allclose(np.asarray(metrics.ssim(x_hat, x)), _sk_ssim(x_hat, x), atol=1e-3)


def test_identical_images():
  x = _shapes(3, 28, 1, seed=3)
  np.testing.assert_allclose(metrics.ssim(x, x), 1.0, atol=1e-5)
  np.testing.assert_array_equal(metrics.psnr(x, x), metrics.PSNR_CAP_DB)
  np.testing.assert_array_equal(metrics.mse(x, x), 0.0)


def test_psnr_of_known_mse():
  x = jnp.zeros((2, 8, 8, 3))
  x_hat = x.at[0].set(0.1).at[1].set(0.01)  # mse 0.01 and 1e-4
  # rtol 1e-5: a float32 mean of 192 values, whose last digits depend on the order XLA sums them in
  np.testing.assert_allclose(metrics.mse(x_hat, x), [1e-2, 1e-4], rtol=1e-5)
  np.testing.assert_allclose(metrics.psnr(x_hat, x), [20.0, 40.0], rtol=1e-6)
  # max_val 255: mse 255**2 / 100 -> 20 dB.
  np.testing.assert_allclose(metrics.psnr(x_hat * 255, x * 255, max_val=255.0), [20.0, 40.0],
                             rtol=1e-5)


def test_per_image_independence():
  rng = np.random.default_rng(2)
  x = rng.uniform(size=(6, 28, 28, 1)).astype(np.float32)
  x_hat = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
  for fn in (metrics.mse, metrics.psnr, metrics.ssim):
    full = np.asarray(jax.jit(fn)(x_hat, x))
    assert full.shape == (6,)
    for i in (0, 4):
      np.testing.assert_allclose(fn(x_hat[i:i + 1], x[i:i + 1])[0], full[i], rtol=1e-6)
    # Changing a batch-mate does not change image 0.
    other = x_hat.copy()
    other[1:] = 0.0
    np.testing.assert_allclose(fn(other, x)[0], full[0], rtol=1e-6)


def test_to_unit_and_summary():
  np.testing.assert_allclose(metrics.to_unit(jnp.array([-2.0, -1.0, 0.0, 1.0, 3.0])),
                             [0.0, 0.0, 0.5, 1.0, 1.0])
  s = jax.jit(metrics.summary)(jnp.array([1.0, 2.0, 3.0, 4.0]))
  np.testing.assert_allclose(s['mean'], 2.5)
  np.testing.assert_allclose(s['se'], np.std([1, 2, 3, 4], ddof=1) / 2, rtol=1e-6)
  one = metrics.summary(jnp.array([7.0]))
  assert float(one['mean']) == 7.0 and float(one['se']) == 0.0


def test_bad_shapes_raise():
  with pytest.raises(UserError):
    metrics.mse(jnp.zeros((1, 8, 8, 1)), jnp.zeros((1, 8, 8, 3)))
  with pytest.raises(UserError, match='11x11'):
    metrics.ssim(jnp.zeros((1, 8, 8, 1)), jnp.zeros((1, 8, 8, 1)))
