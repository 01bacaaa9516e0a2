"""Per-pixel intervals from the chains: coverage, split-conformal calibration, the flag, the solver's spread."""

import numpy as np
import pytest

from ge_jax import uncertainty


def _gaussian(n=200, std=0.1, seed=0):
  rng = np.random.default_rng(seed)
  mean = rng.uniform(-1, 1, (n, 8, 8, 1))
  return mean, np.full_like(mean, std), mean + std * rng.standard_normal(mean.shape)


@pytest.mark.parametrize('level', uncertainty.LEVELS)
def test_a_calibrated_posterior_covers_its_nominal_share(level):
  mean, std, clean = _gaussian()
  assert abs(uncertainty.coverage(mean, std, clean, level) - level) < 0.02
  assert uncertainty.coverage(mean, std / 3, clean, level) < level - 0.2  # too confident: too little


def test_conformal_scale_repairs_an_overconfident_spread_on_new_images():
  mean, std, clean = _gaussian(seed=1)
  c = uncertainty.conformal_scale(mean, std / 2, clean, 0.9)   # fitted on one set ...
  assert 1.8 < c < 2.2
  mean, std, clean = _gaussian(seed=2)                          # ... valid on another
  assert abs(uncertainty.coverage(mean, std / 2, clean, 0.9, scale=c) - 0.9) < 0.02


def test_the_flag_picks_the_most_uncertain_images_and_the_score_ranks_errors():
  rng = np.random.default_rng(3)
  spread = np.linspace(0.01, 0.5, 20)[:, None, None, None] * np.ones((20, 4, 4, 1))
  clean = np.zeros((20, 4, 4, 1))
  mean = spread * rng.standard_normal(clean.shape)               # error grows with the spread
  s = uncertainty.summary(mean, spread, mean, clean, clean + 0.5, np.arange(100, 120))
  assert s['flagged'] == [119, 118]                              # 10% of 20, most uncertain first
  assert s['rank_correlation_mse'] > 0.8
  assert 'coverage_90_changed' in s and 'calibrated_coverage_90' not in s
  assert 'calibrated_coverage_90' in uncertainty.summary(mean, spread, mean, clean, None, np.arange(20), {0.9: 1.0})


def test_the_solver_returns_the_chains_spread_for_langevin_only():
  from ge_jax.solver import SolverSpec
  from test_solver import images, run  # the solver tests' tiny linear generator
  target = images(3)
  res = run(SolverSpec('gan', steps=5, restarts=3, n_init=1, sampler='langevin'), target, lr=1e-3, lam=0.1)
  assert res.post_std.shape == target.shape and (res.post_std > 0).all()
  # the chains' mean: what output='mean' returns as the image
  mean = run(SolverSpec('gan', steps=5, restarts=3, n_init=1, sampler='langevin', output='mean'), target,
             lr=1e-3, lam=0.1)
  np.testing.assert_allclose(mean.post_mean, mean.x, atol=1e-6)
  adam = run(SolverSpec('gan', steps=5, restarts=3, n_init=1), target, lr=1e-3, lam=0.1)
  assert adam.post_std is None and adam.post_mean is None
