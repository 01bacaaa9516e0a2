"""Tests of the latent solver on tiny generators (a linear duck type and mnist_tiny's networks)."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import mnist, mnist_tiny
from ge_jax import models, solver
from ge_jax.errors import UserError
from ge_jax.solver import SolverSpec


class LinearNets:
  """A Nets-like duck type: G(z) = z W as a 4x4x1 image, E(x) = flat(x) V. Well conditioned."""
  latent_dim = 4
  code_dim = 8
  image_shape = (4, 4, 1)

  def G(self, p, z):
    return (z @ p['W']).reshape((-1,) + self.image_shape)

  def E(self, p, x):
    return x.reshape(x.shape[0], -1) @ p['V']

  def Dec(self, p, m):
    return (m @ p['V'].T).reshape((-1,) + self.image_shape)


def linear_params(seed=0):
  kw, kv = jax.random.split(jax.random.key(seed))
  w = jax.random.normal(kw, (4, 16)) / 2.0
  v = jax.random.normal(kv, (16, 8)) / 2.0
  return {'generator': {'W': w}, 'autoencoder': {'V': v}}


class SineNets(LinearNets):
  """Non-convex: G(z) = sin(3 z W), many local minima, so restarts matter."""

  def G(self, p, z):
    return jnp.sin(3.0 * super().G(p, z))


# Shared nets and specs, so that tests reuse compiled solvers (XLA compiles take ~1-4 s on CPU).
LIN, LIN_PARAMS = LinearNets(), linear_params()
GAN = SolverSpec('gan', steps=300, restarts=2, n_init=4, schedule='cosine')
SPHERE = SolverSpec('gan', steps=30, restarts=2, n_init=4, prior='sphere', record_every=1)


@functools.lru_cache(maxsize=None)
def tiny():
  cfg = mnist_tiny.get_config()
  return models.Nets(cfg), models.init_params(cfg, jax.random.key(0))


def latents(n, d, seed=1):
  return jax.random.normal(jax.random.key(seed), (n, d))


def images(n, seed=1):
  return np.array(LIN.G(LIN_PARAMS['generator'], latents(n, 4, seed)))


def run(spec, targets, *, nets=LIN, params=LIN_PARAMS, lr=0.1, lam=0.0, batch_size=8, seed=2, **kw):
  return solver.solve_all(nets, spec, params, targets, jax.random.key(seed), lr=lr, lam=lam,
                          batch_size=batch_size, progress=False, **kw)


# --- recovery -----------------------------------------------------------------------------------


def test_gan_recovers_known_latent():
  z0 = latents(6, 4)
  x0 = images(6)
  res = run(GAN, x0)
  np.testing.assert_allclose(res.z, z0, atol=1e-3)
  np.testing.assert_allclose(res.x, x0, atol=1e-4)
  assert res.x.shape == (6, 4, 4, 1) and res.loss_trace.shape == (6, 300) and res.z_trace is None
  assert res.restart_objectives.shape == (6, 2) and res.diverged.shape == (6,) and not res.diverged.any()


def test_ge_recovers_known_latent():
  z0 = latents(6, 4)
  m0 = solver.encode_all(LIN, LIN_PARAMS, images(6), batch_size=4)
  res = run(dataclasses.replace(GAN, objective='ge'), m0)
  np.testing.assert_allclose(res.z, z0, atol=1e-3)
  np.testing.assert_allclose(LIN.E(LIN_PARAMS['autoencoder'], res.x), m0, atol=1e-4)


def test_csgm_with_mask_recovers():
  x0 = images(5)
  keep = np.argsort(np.random.default_rng(0).random((5, 16)), axis=1) < 10  # 10 of 16 pixels seen
  masks = keep.reshape(5, 4, 4, 1).astype(np.float32)
  forward = lambda x, p: x * p['mask']
  y = x0 * masks
  spec = dataclasses.replace(GAN, objective='csgm')
  res = run(spec, y, op_params={'mask': masks}, forward=forward)
  np.testing.assert_allclose(res.x, x0, atol=1e-3)  # the unseen pixels too


@pytest.mark.parametrize('spec', [GAN, dataclasses.replace(GAN, prior='l1'), SPHERE], ids=lambda s: s.prior)
def test_objective_is_data_term_plus_prior(spec):
  x0 = images(5)
  res = run(spec, x0, lam=0.3, lr=0.05)
  np.testing.assert_allclose(res.x, LIN.G(LIN_PARAMS['generator'], res.z), rtol=1e-5, atol=1e-6)
  penalty = {'l2': np.sum(res.z**2, 1), 'l1': np.sum(np.abs(res.z), 1), 'sphere': 0.0}[spec.prior]
  want = np.sum((res.x - x0)**2, axis=(1, 2, 3)) + 0.3 * penalty
  np.testing.assert_allclose(res.objective, want, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(res.objective, res.restart_objectives.min(1), rtol=1e-6)
  direct = solver.objective(LIN, spec, LIN_PARAMS, jnp.asarray(res.z)[:, None], x0, {}, jnp.full(5, 0.3))
  np.testing.assert_allclose(direct[:, 0], res.objective, rtol=1e-5, atol=1e-6)
  assert np.all(res.objective <= res.loss_trace.min(1))  # best along the trajectory, start included


def test_censored_square_is_the_clipped_gaussian_likelihood():
  sigma = 0.6
  censored_square = jax.jit(solver.censored_square)  # as the solver runs it (eagerly: ~80 compiles)
  pred = jnp.linspace(-3.0, 3.0, 13)
  inside = jnp.full_like(pred, 0.2)
  np.testing.assert_allclose(censored_square(pred, inside, sigma), (pred - 0.2)**2, rtol=1e-6)
  low = censored_square(pred, jnp.full_like(pred, -1.0), sigma)
  high = censored_square(pred, jnp.full_like(pred, 1.0), sigma)
  assert low[0] < 1e-3 and np.all(np.diff(low) > 0)      # a clipped -1 allows any pred below -1
  np.testing.assert_allclose(high, low[::-1], rtol=1e-5)   # mirror image at +1
  # Maximum likelihood of a constant under clipped noise: the plain square is biased towards the
  # bound (42% of the values are clipped here), the censored one recovers the truth.
  truth = -0.9
  y = jnp.clip(truth + sigma * jax.random.normal(jax.random.key(0), (40000,)), -1, 1)
  grid = jnp.linspace(-1.5, 0.0, 301)
  best = lambda loss: float(grid[jnp.argmin(jax.jit(jax.vmap(lambda a: jnp.sum(loss(a))))(grid))])
  assert abs(best(lambda a: solver.censored_square(a, y, sigma)) - truth) < 0.02
  assert best(lambda a: (a - y)**2) > truth + 0.15  # the mean of the clipped values: -0.705


def test_csgm_objective_uses_the_censored_likelihood_only_when_asked():
  x0 = images(3)
  y = np.clip(x0 + 0.5 * np.random.default_rng(0).normal(size=x0.shape), -1, 1).astype(np.float32)
  assert (np.abs(y) == 1).mean() > 0.1
  z = latents(3, 4)[:, None]
  identity = lambda x, p: x
  plain = SolverSpec('csgm', steps=5, restarts=1, n_init=0)
  censored = dataclasses.replace(plain, censor_sigma=0.5)
  lam = jnp.zeros(3)
  f = lambda spec: solver.objective(LIN, spec, LIN_PARAMS, z, y, {}, lam, identity)[:, 0]
  x = LIN.G(LIN_PARAMS['generator'], z[:, 0])
  np.testing.assert_allclose(f(plain), np.sum((x - y)**2, axis=(1, 2, 3)), rtol=1e-5)
  np.testing.assert_allclose(f(censored), np.sum(solver.censored_square(x, y, 0.5), axis=(1, 2, 3)), rtol=1e-5)
  assert np.all(np.abs(f(censored) - f(plain)) > 1e-3)
  gan = solver.objective(LIN, dataclasses.replace(censored, objective='gan'), LIN_PARAMS, z, y, {}, lam)
  np.testing.assert_allclose(gan[:, 0], f(plain), rtol=1e-6)  # blind methods keep the plain square


def test_pixel_weight_adds_the_observed_pixels_to_the_code_term():
  x0 = images(3)
  y = x0 + 0.3
  z = latents(3, 4, seed=5)[:, None]
  lam = jnp.full(3, 0.2)
  m = np.asarray(LIN.E(LIN_PARAMS['autoencoder'], x0))
  plain = SolverSpec('ge', steps=5, restarts=1, n_init=0)
  f = lambda spec: solver.objective(LIN, spec, LIN_PARAMS, z, m, {'observed': y}, lam)[:, 0]
  x = LIN.G(LIN_PARAMS['generator'], z[:, 0])
  want = f(plain) + 0.7 * np.sum((x - y)**2, axis=(1, 2, 3))
  np.testing.assert_allclose(f(dataclasses.replace(plain, pixel_weight=0.7)), want, rtol=1e-5)


def test_pixel_weight_recovers_the_image_a_wrong_code_hides():
  """A code target that says nothing (zeros) and the true image as the observed pixels: with a large
  pixel weight GE+pixels finds the image, plain GE finds the code's image (z near 0)."""
  x0 = images(4)
  m = np.zeros((4, LIN.code_dim), np.float32)
  with_pixels = run(dataclasses.replace(GAN, objective='ge', pixel_weight=100.0), m, op_params={'observed': x0})
  plain = run(dataclasses.replace(GAN, objective='ge'), m)
  err = lambda r: np.mean((r.x - x0)**2)
  assert err(with_pixels) < 1e-3 < 0.1 < err(plain)  # the code term still pulls a little
  with pytest.raises(UserError, match='observed'):
    run(dataclasses.replace(GAN, objective='ge', pixel_weight=1.0), m)


def test_sphere_prior_stays_on_sphere():
  res = run(SPHERE, images(3), lr=0.3)
  assert res.z_trace.shape == (3, 30, 4)
  np.testing.assert_allclose(np.linalg.norm(res.z_trace, axis=-1), 2.0, rtol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(res.z, axis=-1), 2.0, rtol=1e-5)


def test_z_trace_records_every_k_steps():
  x0 = images(3)
  res = run(dataclasses.replace(SPHERE, record_every=7), x0)  # 30 = 4 * 7 + 2: a remainder too
  assert res.z_trace.shape == (3, 4, 4) and res.loss_trace.shape == (3, 30)
  full = run(SPHERE, x0)
  np.testing.assert_allclose(res.z_trace, full.z_trace[:, 6::7][:, :4], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(res.loss_trace, full.loss_trace, rtol=1e-5, atol=1e-7)


# --- restarts, independence, compilation -----------------------------------------------------------


def test_restarts_never_worse_than_one_start():
  nets = SineNets()
  x0 = np.asarray(nets.G(LIN_PARAMS['generator'], latents(16, 4)))
  spec = SolverSpec('gan', steps=100, restarts=1, n_init=1)
  one = run(spec, x0, nets=nets, lr=0.05, batch_size=16)
  four = run(dataclasses.replace(spec, restarts=4), x0, nets=nets, lr=0.05, batch_size=16)
  # Restart 0 is the same draw for any R, so R = 4 contains the R = 1 run.
  np.testing.assert_allclose(four.restart_objectives[:, 0], one.objective, rtol=1e-5, atol=1e-7)
  assert np.all(four.objective <= one.objective)
  assert np.any(four.objective < 0.5 * one.objective)  # and the extra restarts do help somewhere


@pytest.fixture(scope='module')
def tiny_batch():
  """mnist_tiny's Flax nets, 'ge', a batch of 64 images with global indices 100..163."""
  nets, params = tiny()
  m = jax.jit(lambda p, z: nets.E(p['autoencoder'], nets.G(p['generator'], z)))(params, latents(64, 16))
  spec = SolverSpec('ge', steps=100, restarts=2, n_init=4, schedule='cosine')
  solve = solver.make_solver(nets, spec)
  args = (jax.random.key(3), jnp.float32(0.05), jnp.float32(0.0))
  indices = jnp.arange(100, 164)
  return solve, params, m, indices, args, solve(params, m, {}, indices, *args)


def test_ge_matches_codes_with_tiny_flax_nets(tiny_batch):
  *_, m, _, _, res = tiny_batch
  start = res.loss_trace[:, 0]
  assert not np.any(res.diverged)
  assert np.median(res.objective / start) < 1e-3, np.median(res.objective / start)
  assert np.all(res.objective < 0.2 * start)


def test_image_result_independent_of_batch_mates(tiny_batch):
  solve, params, m, indices, args, batch = tiny_batch
  for i in (0, 37):
    alone = solve(params, m[i:i + 1], {}, indices[i:i + 1], *args)
    # Batched and single-image convolutions could round differently on CPU, hence allclose.
    np.testing.assert_allclose(alone.z[0], batch.z[i], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(alone.x[0], batch.x[i], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(alone.objective[0], batch.objective[i], rtol=1e-4, atol=1e-9)


def test_lr_and_lam_changes_do_not_recompile():
  nets = LinearNets()  # a fresh instance: a fresh cache entry
  x0 = jnp.asarray(images(4))
  solve = solver.make_solver(nets, GAN)
  for lr, lam in ((0.1, 0.0), (0.01, 1e-3), (1.0, 5.0)):
    solve(LIN_PARAMS, x0, {}, jnp.arange(4), jax.random.key(0), jnp.float32(lr), jnp.float32(lam))
  assert solve._cache_size() == 1


def test_one_compilation_for_any_number_of_images():
  nets = LinearNets()
  for n in (5, 37):
    res = run(GAN, images(n), nets=nets, batch_size=16, lr=0.1 + n, lam=1e-3 * n)
    assert res.x.shape == (n, 4, 4, 1) and res.objective.shape == (n,)
  assert solver.make_solver(nets, GAN)._cache_size() == 1


def test_padding_does_not_leak():
  x0 = images(32)
  full = run(GAN, x0, batch_size=8)
  part = run(GAN, x0[:17], batch_size=8)  # 3 chunks, the last one 7/8 padding
  for a, b in zip(part[:-1], full[:-1]):
    if a is not None:
      np.testing.assert_array_equal(a, b[:17])


def test_pieces_and_skipped_padding_change_nothing():
  """The plan runs a batch in pieces and skips pure padding: the same results as one piece."""
  x0 = images(13)
  whole = run(GAN, x0, batch_size=16, plan=solver.ExecutionPlan())  # 32 rows: one piece
  plan = solver.ExecutionPlan(piece_rows=6)  # 3 images a piece: 6 pieces, the last 2 padding only
  assert plan.pieces(16, GAN.restarts) == (6, 3)
  pieces = run(GAN, x0, batch_size=16, plan=plan)
  for a, b in zip(pieces, whole):
    if a is not None:
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_plan_is_part_of_the_cache_key_and_explicit():
  one, pieces = solver.ExecutionPlan(), solver.ExecutionPlan(piece_rows=6)
  assert solver.make_solver(LIN, GAN, plan=one) is solver.make_solver(LIN, GAN, plan=solver.ExecutionPlan())
  assert solver.make_solver(LIN, GAN, plan=one) is not solver.make_solver(LIN, GAN, plan=pieces)
  assert solver.make_solver(LIN, GAN) is solver.make_solver(LIN, GAN, plan=solver.ExecutionPlan.auto())
  if jax.default_backend() == 'cpu' and jax.device_count() == 1:
    assert solver.ExecutionPlan.auto() == solver.ExecutionPlan(piece_rows=solver.CPU_PIECE_ROWS)
  assert pieces.pieces(3, 2) is None and one.pieces(100, 2) is None  # few rows, or pieces off: one piece
  for bad in (dict(piece_rows=-1), dict(piece_rows=2.5), dict(matmul_precision='fast')):
    with pytest.raises(UserError):
      solver.ExecutionPlan(**bad)


def test_nets_of_the_same_settings_share_compiled_solvers():
  cfg = mnist_tiny.get_config()
  a, b = models.Nets(cfg), models.Nets(mnist_tiny.get_config())
  assert a == b and hash(a) == hash(b)
  assert solver.make_solver(a, GAN) is solver.make_solver(b, GAN)
  cfg.model.latent_dim = 8
  assert models.Nets(cfg) != a


def test_place_hook_sees_every_chunk():
  seen = []

  def place(tree):
    seen.append(tree['indices'].shape)
    return jax.tree.map(jnp.asarray, tree)

  run(GAN, images(20), place=place)
  assert seen == [(8,)] * 3


# --- divergence and bad input ------------------------------------------------------------------------


def test_nan_target_is_reported_in_the_diverged_mask():
  x0 = images(10)
  x0[2, 1, 1, 0] = np.nan
  indices = np.arange(500, 510)
  res = run(GAN, x0, indices=indices)
  assert res.diverged.dtype == bool and indices[res.diverged].tolist() == [502]
  assert not np.isfinite(res.objective[2]) and np.all(np.isfinite(np.delete(res.objective, 2)))


def test_exploding_learning_rate_is_reported():
  res = run(GAN, images(3), lr=1e30, lam=1.0)
  assert res.diverged.tolist() == [True, True, True]
  # What is returned is still the best finite point: here the initial one.
  np.testing.assert_allclose(res.objective, res.loss_trace[:, 0])
  assert np.all(np.isfinite(res.x)) and not np.all(np.isfinite(res.loss_trace))


@pytest.mark.parametrize('change', [
    dict(objective='pixels'), dict(prior='l3'), dict(schedule='linear'), dict(steps=0),
    dict(steps=2.5), dict(restarts=0), dict(n_init=-1), dict(record_every=-1), dict(record_every=99),
    dict(censor_sigma=-0.1), dict(censor_sigma='0.3'), dict(pixel_weight=-1.0), dict(pixel_weight=float('inf')),
    dict(objective='gan', pixel_weight=0.5), dict(objective='ge_op', pixel_weight=0.5),
    dict(temperature=0.5), dict(sampler='langevin', temperature=0.0),
    dict(sampler='langevin', temperature=float('nan')),
])
def test_bad_spec_is_a_user_error(change):
  fields = dict(objective='ge', steps=10, restarts=2, n_init=4) | change
  with pytest.raises(UserError):
    SolverSpec(**fields)


def test_the_spec_of_a_config():
  from ge_jax import methods
  cfg = mnist.get_config()
  cfg.solve.steps, cfg.solve.restarts, cfg.solve.n_init, cfg.solve.prior = 37, 3, 5, 'sphere'
  spec = methods.BY_NAME['ge'].settings(cfg, methods.Task('denoise')).spec
  assert (spec.steps, spec.restarts, spec.n_init, spec.prior, spec.record_every) == (37, 3, 5, 'sphere', 0)
  cfg.solve.prior = 'gaussian'
  with pytest.raises(UserError, match='config.solve.prior'):
    methods.BY_NAME['ge'].settings(cfg, methods.Task('denoise'))


def test_bad_call_is_a_user_error():
  x0 = images(3)
  with pytest.raises(UserError, match='forward'):
    solver.make_solver(LIN, dataclasses.replace(GAN, objective='csgm'))
  with pytest.raises(UserError, match='lam'):
    run(GAN, x0, lam=-1.0)
  with pytest.raises(UserError, match='indices'):
    run(GAN, x0, indices=np.arange(4))
  with pytest.raises(UserError, match='autoencoder'):
    run(dataclasses.replace(GAN, objective='ge'), np.zeros((3, 8), np.float32),
        params={'generator': LIN_PARAMS['generator']})


# --- autoencoder helpers ---------------------------------------------------------------------------


def test_encode_all_and_reconstruct_ae_match_direct_calls():
  nets, params = tiny()
  x = jax.jit(nets.G)(params['generator'], latents(7, 16))
  ap = params['autoencoder']
  np.testing.assert_allclose(solver.encode_all(nets, params, x, 4), nets.E(ap, x), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(solver.reconstruct_ae(nets, params, x, 4), nets.Dec(ap, nets.E(ap, x)),
                             rtol=1e-5, atol=1e-6)


def test_mean_output_averages_the_restarts_results():
  nets = SineNets()
  x0 = np.asarray(nets.G(LIN_PARAMS['generator'], latents(8, 4)))
  best_spec = SolverSpec('gan', steps=40, restarts=2, n_init=1)
  best = run(best_spec, x0, nets=nets, lr=0.05)
  mean = run(dataclasses.replace(best_spec, output='mean'), x0, nets=nets, lr=0.05)
  # Same keys, same restarts: only the returned image changes.
  np.testing.assert_allclose(mean.restart_objectives, best.restart_objectives, rtol=1e-6)
  np.testing.assert_allclose(mean.z, best.z, rtol=1e-6)
  # With R = 2 and lam = 0, 2 * mean - best is the other restart's G(z), whose objective
  # ||G(z) - x||^2 the solver reports as the larger of the two restart objectives.
  other = 2 * mean.x - best.x
  np.testing.assert_allclose(np.sum((other - x0) ** 2, axis=(1, 2, 3)), best.restart_objectives.max(axis=1),
                             rtol=1e-3, atol=1e-5)
  assert not np.allclose(mean.x, best.x, atol=1e-3)  # the restarts differ here


def test_realest_output_picks_the_restart_the_discriminator_prefers():
  """output='realest': per image the restart whose G(z) has the highest D(G(z)); the objective plays no
  part. With D(x) = -||x - c||^2 the pick is the restart whose image is nearest c."""
  class Scored(SineNets):
    def D(self, p, x):
      return -jnp.sum(jnp.square(x - p['c']), axis=(1, 2, 3))[:, None]
  nets = Scored()
  x0 = np.asarray(nets.G(LIN_PARAMS['generator'], latents(8, 4)))
  spec = SolverSpec('gan', steps=40, restarts=3, n_init=1)
  params = dict(LIN_PARAMS, discriminator={'c': jnp.float32(0.5)})
  best = run(spec, x0, nets=nets, params=params, lr=0.05)
  real = run(dataclasses.replace(spec, output='realest'), x0, nets=nets, params=params, lr=0.05)
  np.testing.assert_allclose(real.restart_objectives, best.restart_objectives, rtol=1e-6)  # same restarts
  # D's pick is one of the restarts (its objective is in the row), never less real than the objective's pick
  assert np.all(np.isclose(real.restart_objectives, real.objective[:, None], rtol=1e-6).any(axis=1))
  d_real = -np.sum((real.x - 0.5) ** 2, axis=(1, 2, 3))
  d_best = -np.sum((best.x - 0.5) ** 2, axis=(1, 2, 3))
  assert np.all(d_real >= d_best - 1e-5) and np.any(d_real > d_best + 1e-3)
  np.testing.assert_allclose(np.asarray(nets.G(LIN_PARAMS['generator'], real.z)), real.x, atol=1e-5)
  assert np.any(real.objective > best.objective + 1e-6)  # the objective played no part
  with pytest.raises(UserError, match='discriminator'):
    run(dataclasses.replace(spec, output='realest'), x0, nets=nets, lr=0.05)


def test_mean_output_needs_restarts():
  with pytest.raises(UserError, match='restarts'):
    SolverSpec('ge', steps=10, restarts=1, n_init=0, output='mean')
  with pytest.raises(UserError, match='output'):
    SolverSpec('ge', steps=10, restarts=2, n_init=0, output='median')



# --- GE variants: the operator inside the encoder, and Langevin sampling -----------------------------


def test_ge_op_is_ge_through_the_operator():
  """ge_op with the identity equals ge; with a mask it matches the codes of the masked images."""
  m = np.array(LIN.E(LIN_PARAMS['autoencoder'], images(8)))
  spec = SolverSpec('ge', steps=50, restarts=2, n_init=2)
  ge = run(spec, m, lam=0.01)
  ident = run(dataclasses.replace(spec, objective='ge_op'), m, lam=0.01, forward=lambda x, p: x)
  np.testing.assert_allclose(ident.objective, ge.objective, rtol=1e-5, atol=1e-6)
  mask = np.zeros((8, 4, 4, 1), np.float32)
  mask[:, :2] = 1.0
  masked = lambda x, p: x * p['mask']
  y_codes = np.array(LIN.E(LIN_PARAMS['autoencoder'], images(8) * mask))
  op = run(dataclasses.replace(spec, objective='ge_op', steps=300), y_codes, lam=0.0, forward=masked,
           op_params={'mask': mask})
  assert np.median(op.objective / op.loss_trace[:, 0]) < 1e-2
  with pytest.raises(UserError, match='forward'):
    run(dataclasses.replace(spec, objective='ge_op'), m)


LANGEVIN = SolverSpec('ge', steps=200, restarts=1, n_init=1, sampler='langevin')


def test_langevin_samples_the_prior_where_adam_finds_its_mode():
  """With a negligible data term (huge lam), Langevin on U = f / (2 lam) + |z|^2 / 2 draws
  z ~ N(0, I), norms near sqrt(d); Adam on the same objective goes to the mode z = 0."""
  m = np.zeros((64, LIN.code_dim), np.float32)
  lang = run(LANGEVIN, m, lr=0.05, lam=1e4, batch_size=64)
  adam = run(dataclasses.replace(LANGEVIN, sampler='adam'), m, lr=0.05, lam=1e4, batch_size=64)
  ratio = np.mean(np.sum(lang.z ** 2, axis=1)) / LIN.latent_dim
  assert abs(ratio - 1.0) < 0.25, ratio
  assert np.mean(np.linalg.norm(adam.z, axis=1)) < 0.3
  alone = run(LANGEVIN, m[5:6], lr=0.05, lam=1e4, batch_size=1, indices=[5])  # batch-mates do not matter
  np.testing.assert_allclose(alone.z[0], lang.z[5], rtol=1e-4, atol=1e-5)


def test_langevin_temperature_scales_the_prior_it_samples():
  """exp(-U / T) with U = |z|^2 / 2 (data term negligible) is N(0, T I): E|z|^2 = T d."""
  m = np.zeros((64, LIN.code_dim), np.float32)
  cold = run(dataclasses.replace(LANGEVIN, temperature=0.1), m, lr=0.05, lam=1e4, batch_size=64)
  ratio = np.mean(np.sum(cold.z ** 2, axis=1)) / (0.1 * LIN.latent_dim)
  assert abs(ratio - 1.0) < 0.25, ratio


def test_langevin_matches_the_data_when_its_noise_is_small():
  """A strong data term (small lam) concentrates the posterior near codes that match."""
  m = np.array(LIN.E(LIN_PARAMS['autoencoder'], images(16)))
  # step on f: lr / (2 lam) = 0.02, stable below 2 / 45 (the largest curvature of LIN's f)
  res = run(dataclasses.replace(LANGEVIN, steps=400), m, lr=4e-5, lam=1e-3, batch_size=16)
  assert np.median(res.objective / res.loss_trace[:, 0]) < 0.05


def test_langevin_with_a_huge_count_keeps_lam_fixed():
  """lam_count c: lam_eff = (c lam + f) / (c + n) -> lam as c grows: the same chain as fixed lam."""
  m = np.array(LIN.E(LIN_PARAMS['autoencoder'], images(8)))
  fixed = run(dataclasses.replace(LANGEVIN, steps=100), m, lr=4e-5, lam=1e-3, batch_size=8)
  counted = run(dataclasses.replace(LANGEVIN, steps=100, lam_count=1e12), m, lr=4e-5, lam=1e-3, batch_size=8)
  np.testing.assert_allclose(counted.z, fixed.z, rtol=1e-3, atol=1e-4)


def test_langevin_estimates_lam_from_a_code_it_cannot_match():
  """A target code far off every E(G(z)) (residual per value ~1e4) outweighs the guess lam = 1e-3
  at a small count: lam_eff ~ the residual, the data term fades and z is drawn from the prior, where
  the fixed lam = 1e-3 would pull z far out to fit the reachable part of the code."""
  rng = np.random.default_rng(0)
  m = (100.0 * rng.standard_normal((64, LIN.code_dim))).astype(np.float32)
  res = run(dataclasses.replace(LANGEVIN, lam_count=1.0), m, lr=0.05, lam=1e-3, batch_size=64)
  ratio = np.mean(np.sum(res.z ** 2, axis=1)) / LIN.latent_dim
  assert abs(ratio - 1.0) < 0.3, ratio
  # where fixed lam = 1e-3 puts z: the least-squares fit of m by z W V, far beyond the prior's |z|
  a = np.asarray(LIN_PARAMS['generator']['W'] @ LIN_PARAMS['autoencoder']['V'])
  fit = np.linalg.lstsq(a.T, m.T, rcond=None)[0].T
  assert np.mean(np.sum(fit ** 2, axis=1)) / LIN.latent_dim > 100


def test_langevin_rejects_bad_settings():
  with pytest.raises(UserError, match="prior='l2'"):
    SolverSpec('ge', steps=2, restarts=1, n_init=1, sampler='langevin', prior='sphere')
  with pytest.raises(UserError, match='lam_count'):
    SolverSpec('ge', steps=2, restarts=1, n_init=1, sampler='langevin', lam_count=0.0)
  with pytest.raises(UserError, match='langevin'):
    SolverSpec('ge', steps=2, restarts=1, n_init=1, lam_count=8.0)
  with pytest.raises(UserError, match='lam > 0'):
    run(LANGEVIN, np.zeros((2, LIN.code_dim), np.float32), lam=0.0)
