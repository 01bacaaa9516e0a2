"""Latent solver: z* = argmin_z f(z) + lam * prior(z), returned as G(z*). The objective is first.

For every image and each of R restarts (all vmapped, one compiled function):
  1. best-of-`n_init` random z ~ N(0, I), chosen by the objective (incl. prior);
  2. `steps` Adam steps inside `lax.scan`, keeping the best z by objective seen on the way
     (so a restart never ends worse than its initial point);
  3. per image, the restart with the lowest objective wins (never chosen by a clean image: the
     solver never sees one).

Randomness is per image: `fold_in(key, global_index)`, then `fold_in(., restart)`, so an image's
result does not depend on its batch-mates, on the scheduling, or on R (restart r is the same for
any R > r).

`solve_batch` is that maths for one batch (pure). `make_solver` jits it under an `ExecutionPlan`
(pieces, devices, precision: how a batch runs, never what it computes); `solve_all` is the host
driver (padded chunks, one compilation for any N, progress bar, numpy out).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.scipy.special import log_ndtr
from tqdm.auto import tqdm

from ge_jax import batching, models, parallel
from ge_jax.errors import UserError

Array = jax.Array
PyTree = Any
Forward = Callable[[Array, PyTree], Array]


# --- the objective ----------------------------------------------------------------------------------


def objective(nets, spec: SolverSpec, params: PyTree, z: Array, target: Array, op_params: PyTree, lam: Array,
              forward: Forward | None = None) -> Array:
  """f(z) + lam * prior(z) for z (B, R, d), per image and restart: (B, R). Sums of squares, not means.

    'ge'    f(z) = ||E(G(z)) - m||^2    m = E(y), the code of the observation (the paper)
    'gan'   f(z) = ||G(z) - y||^2       y, the observed image
    'csgm'  f(z) = ||A(G(z)) - y||^2    A = forward(., op_params), y the measurements
    'ge_op' f(z) = ||E(A(G(z))) - m||^2 m = E(y), the operator inside the encoder (2019 preprint)
    'ge' with spec.pixel_weight = mu > 0 adds mu ||G(z) - y||^2, y = op_params['observed'] (an
            extension: the code and the observed pixels, still blind to the operator)
    prior   'l2': ||z||^2 (the paper); 'l1': ||z||_1 (the original code); 'sphere': 0 (z projected)

  params: {'generator': ..., 'autoencoder': ...}; target (B, ...); op_params leaves (B, ...); lam (B,).
  """
  b, r, d = z.shape
  x = nets.G(params['generator'], z.reshape(b * r, d))  # the networks see one flat batch of B * R
  pixels = 0.0
  if spec.pixel_weight > 0:  # before the encoder: G(z) against the observed image
    seen = op_params['observed'][:, None]
    pixels = spec.pixel_weight * jnp.sum(jnp.square(x.reshape((b, r) + x.shape[1:]) - seen),
                                         axis=tuple(range(2, seen.ndim)))
  if spec.objective in FORWARD_OBJECTIVES:
    x = forward(x, jax.tree.map(lambda a: jnp.repeat(a, r, axis=0), op_params))
  if spec.objective in ('ge', 'ge_op'):
    x = nets.E(params['autoencoder'], x)
  x = x.reshape((b, r) + x.shape[1:])
  if spec.censor_sigma > 0 and spec.objective == 'csgm':
    residual = censored_square(x, target[:, None], spec.censor_sigma)
  else:
    residual = jnp.square(x - target[:, None])
  data = jnp.sum(residual, axis=tuple(range(2, x.ndim))) + pixels
  return data + lam[:, None] * _prior(spec, z)


def censored_square(pred: Array, y: Array, sigma: float) -> Array:
  """2 sigma^2 x the negative log-likelihood of y = clip(pred + sigma n, -1, 1), per value, up to a constant.

  Inside (-1, 1) that is (pred - y)^2, the usual square. A value clipped to -1 says only that
  pred + sigma n <= -1, whose probability is Phi((-1 - pred) / sigma): its term
  -2 sigma^2 log Phi((-1 - pred) / sigma) is ~0 for any pred well below -1 and grows like
  (pred + 1)^2 above it (and the mirror image at +1). The plain square would instead pull pred to
  -1 exactly, i.e. bias every clipped pixel (42% of them at sigma 0.6 on MNIST) towards the bound.
  """
  edge = 1.0 - 1e-6
  at_low, at_high = y <= -edge, y >= edge
  inside = jnp.square(pred - y)
  low = -2.0 * sigma**2 * log_ndtr((-1.0 - pred) / sigma)
  high = -2.0 * sigma**2 * log_ndtr((pred - 1.0) / sigma)
  return jnp.where(at_low, low, jnp.where(at_high, high, inside))


def _prior(spec: SolverSpec, z: Array) -> Array:
  """Unweighted prior of z (..., d) -> (...)."""
  if spec.prior == 'l2':
    return jnp.sum(z * z, axis=-1)
  if spec.prior == 'l1':
    return jnp.sum(jnp.abs(z), axis=-1)
  return jnp.zeros(z.shape[:-1], z.dtype)


def _project(spec: SolverSpec, z: Array) -> Array:
  """The 'sphere' prior's projection onto the sphere of radius sqrt(d); identity otherwise."""
  if spec.prior != 'sphere':
    return z
  norm = jnp.sqrt(jnp.sum(z * z, axis=-1, keepdims=True))
  return z * (math.sqrt(z.shape[-1]) / norm)


# --- what is solved: the spec and the result ----------------------------------------------------------

OBJECTIVES = ('ge', 'gan', 'csgm', 'ge_op')
FORWARD_OBJECTIVES = ('csgm', 'ge_op')  # the operator A is known and used
SAMPLERS = ('adam', 'langevin')
PRIORS = ('l2', 'l1', 'sphere')
SCHEDULES = ('constant', 'cosine')
OUTPUTS = ('best', 'mean', 'realest')
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8
_NOISE_STREAM = 1_000_003  # fold_in tag of the Langevin noise keys, apart from the initial draws'


def check_mean_output(output: str, restarts: int) -> None:
  """output='mean' averages the images of the restarts (Langevin: the chains); one alone has nothing
  to average, so it is an error rather than a silent 'best'."""
  if output == 'mean' and restarts < 2:
    raise UserError("SolverSpec(output='mean') averages over restarts; it needs restarts >= 2.")


@dataclasses.dataclass(frozen=True)
class SolverSpec:
  """Static description of a solve; changing any field recompiles.

  Attributes:
    objective: 'ge' | 'gan' | 'csgm' | 'ge_op'.
    steps: K, Adam steps per restart.
    restarts: R, independently optimised starts per image (best by objective wins).
    n_init: best-of-N random draws seeding each restart (<= 1: a single draw).
    prior: 'l2' | 'l1' | 'sphere'.
    schedule: 'constant' | 'cosine' (lr * 0.5 * (1 + cos(pi t / K)), t = 0..K-1, no warm-up).
    record_every: 0 = off; else keep z every `record_every` steps (`Result.z_trace`).
    output: 'best' (G(z*) of the restart with the lowest objective, the paper) | 'mean' (the mean of
      G(z) over the R restarts' results: an estimate of the mean over the solution set, which
      is what PSNR rewards; restarts with a non-finite objective are left out) | 'realest' (G(z) of
      the restart whose image the GAN's discriminator scores most real, params['discriminator']
      needed: with Langevin, best-of-R discriminator rejection of posterior samples (Azadi et al.
      2019); the lowest objective would pick the chain that fits the code best, which on MNIST is
      the least realistic one, docs/FIDELITY.md).
    sampler: 'adam' (minimise: the paper's MAP estimate) | 'langevin' (sample the posterior
      p(z | y) ~ exp(-f(z) / (2 lam)) N(z; 0, I) by unadjusted Langevin dynamics,
      z <- z - lr / (2 lam) * grad(f + lam ||z||^2) + sqrt(2 lr) * noise, and return each
      restart's last z: a typical point of the posterior, not its mode. With the 'l2' prior, lam
      is the variance of the data term's per-value error; a MAP estimate under a Gaussian prior
      sits near z = 0, where G draws an average, blurred image).
    lam_count: Langevin only. None (default): lam is fixed. A number c > 0: lam, the variance of
      the data term's per-value error, is unknown and estimated with the sample: an inverse-gamma
      prior on it worth c values at lam, integrated out, gives the energy
        U(z) = (c + n) / 2 * log(c lam + f(z)) + ||z||^2 / 2      (n values in the data term),
      whose gradient is that of the fixed-lam energy with lam_eff = (c lam + f(z)) / (c + n): the
      current mean squared residual, shrunk towards lam. A corruption that leaves E(y) far from every
      code of G's images (heavy blur, large holes) then weighs the prior more, one that leaves it
      close (mild noise) weighs the code more. c > 0: at c = 0 (lam from the residual alone) the
      energy falls without bound as f -> 0.
    censor_sigma: 'csgm' only: > 0 takes the measurements as y = clip(A(x) + censor_sigma n, -1, 1)
      and uses that censored Gaussian likelihood (`censored_square`) instead of the plain square;
      0 (default) is the plain square.
    pixel_weight: 'ge' only: mu > 0 adds mu ||G(z) - y||^2 to the code term, y the observed image
      (op_params['observed']): the code and the pixels as two observations. For the Langevin
      sampler mu = lam / s2 reads as pixel errors of variance s2 beside code errors of variance
      lam. Still blind: y is compared with G(z) itself, not with A(G(z)). 0 (default): off.
    temperature: Langevin only. T > 0 samples exp(-U(z) / T) instead of exp(-U(z)): the noise of each
      step is sqrt(2 lr T) instead of sqrt(2 lr). 1 (default) is the posterior; T < 1 concentrates
      the chain towards the posterior's mode (T -> 0 is the MAP estimate of the same energy): a knob
      between a sample's realism and a mode's lower squared error.
  """
  objective: str
  steps: int
  restarts: int
  n_init: int
  prior: str = 'l2'
  schedule: str = 'constant'
  record_every: int = 0
  output: str = 'best'
  sampler: str = 'adam'
  censor_sigma: float = 0.0
  lam_count: float | None = None
  pixel_weight: float = 0.0
  temperature: float = 1.0

  def __post_init__(self):
    if self.objective not in OBJECTIVES:
      raise UserError(f'objective={self.objective!r} is not one of {", ".join(map(repr, OBJECTIVES))}.')
    for name, allowed in (('prior', PRIORS), ('schedule', SCHEDULES), ('output', OUTPUTS),
                          ('sampler', SAMPLERS)):
      if getattr(self, name) not in allowed:
        raise UserError(f'SolverSpec({name}={getattr(self, name)!r}) is not one of '
                        f'{", ".join(map(repr, allowed))}.')
    if self.sampler == 'langevin' and self.prior != 'l2':
      raise UserError(f"sampler='langevin' samples under the Gaussian prior: set prior='l2', not {self.prior!r}.")
    check_mean_output(self.output, self.restarts)
    for name, low in (('steps', 1), ('restarts', 1), ('n_init', 0), ('record_every', 0)):
      v = getattr(self, name)
      if not batching.is_int(v) or v < low:
        raise UserError(f'SolverSpec({name}={v!r}): it must be an integer >= {low}.')
    if self.lam_count is not None:
      if self.sampler != 'langevin':
        raise UserError("lam_count (an estimated error variance) applies to sampler='langevin' only.")
      if not (isinstance(self.lam_count, (int, float)) and 0 < self.lam_count < float('inf')):
        raise UserError(f'lam_count={self.lam_count!r} must be a number > 0 (or None: lam fixed); at 0 the '
                        'energy has no lower bound where G matches the code exactly.')
    if not (isinstance(self.pixel_weight, (int, float)) and 0 <= self.pixel_weight < float('inf')):
      raise UserError(f'pixel_weight={self.pixel_weight!r} must be a number >= 0 (0 = off).')
    if self.pixel_weight > 0 and self.objective != 'ge':
      raise UserError(f"pixel_weight adds the observed pixels to GE's code term; objective={self.objective!r} "
                      "already fits pixels or knows the operator: leave it 0.")
    if not (isinstance(self.temperature, (int, float)) and 0 < self.temperature < float('inf')):
      raise UserError(f'temperature={self.temperature!r} must be a number > 0 (1 = the posterior).')
    if self.temperature != 1.0 and self.sampler != 'langevin':
      raise UserError("temperature scales the Langevin noise; it applies to sampler='langevin' only.")
    if not (isinstance(self.censor_sigma, (int, float)) and 0 <= self.censor_sigma < float('inf')):
      raise UserError(f'censor_sigma={self.censor_sigma!r} must be a number >= 0 (the noise std, 0 = off).')
    if self.record_every > self.steps:
      raise UserError(f'SolverSpec(record_every={self.record_every}) exceeds steps={self.steps}; '
                      'use 0 (off) or a value <= steps.')

  @property
  def n_recorded(self) -> int:
    """Length of `z_trace` (0 when recording is off)."""
    return self.steps // self.record_every if self.record_every else 0


class Result(NamedTuple):
  """Solver output; every field has the images as leading axis.

  Attributes:
    x: G(z*) (N, H, W, C); with output='mean', the mean of G over the restarts' results.
    z: z* of the chosen restart (N, latent_dim).
    objective: final objective (incl. prior) of the chosen restart (N,); the minimum over its
      trajectory, i.e. the objective of `z`.
    restart_objectives: the same for every restart (N, R).
    loss_trace: objective at the iterate before each step t = 0..K-1, chosen restart (N, K).
    z_trace: None, or the chosen restart's z after steps record_every, 2 * record_every, ...
      (N, K // record_every, latent_dim).
    diverged: a bool mask (N,), everywhere (jitted solver and `solve_all`): True where the
      objective, the output or the chosen trajectory is not finite. Global indices of those
      images: `indices[diverged]`.
    x_one: None, or with Langevin and output='mean' one chain's sample G(z) (restart 0, taken
      whatever its objective: a posterior sample, where `x` estimates the posterior mean) (N, H, W, C).
    post_mean, post_std: None, or with Langevin and R >= 2 chains the per-pixel mean and standard
      deviation (ddof 1) of the chains' samples G(z) (the finite ones): the posterior's own spread,
      from the chains already run (N, H, W, C).
  """
  x: Array
  z: Array
  objective: Array
  restart_objectives: Array
  loss_trace: Array
  z_trace: Array | None
  diverged: Array
  x_one: Array | None = None
  post_mean: Array | None = None
  post_std: Array | None = None


# --- one batch, one piece: the pure solve -------------------------------------------------------------


def solve_batch(nets, spec: SolverSpec, forward: Forward | None, params: PyTree, key: Array, batch) -> Result:
  """The whole solve of one batch in one piece: initial draws, Adam in lax.scan, selection.

  batch = (target, op_params, indices, lr, lam), each with the B images as leading axis (lr and
  lam (B,) float32, indices (B,) global image indices). Pure: jit it, or use `make_solver`.
  """
  target, op_params, indices, lr, lam = batch
  f = lambda z: objective(nets, spec, params, z, target, op_params, lam, forward)
  z0 = _initial_z(spec, f, nets.latent_dim, indices, key)
  noise_keys = None
  if spec.sampler == 'langevin':  # per (image, restart), independent of batch-mates
    per_image = jax.vmap(lambda i: jax.random.fold_in(jax.random.fold_in(key, i), _NOISE_STREAM))(indices)
    noise_keys = jax.vmap(lambda k: jax.vmap(lambda r: jax.random.fold_in(k, r))(jnp.arange(spec.restarts)))(per_image)
  n_values = math.prod(target.shape[1:])  # values in the data term, per image
  best_z, best_obj, objs, z_trace = _descend(spec, f, z0, lr, lam, noise_keys, n_values)
  return _select(spec, nets, params, best_z, best_obj, objs, z_trace)


def _keep_better(z, obj, best_z, best_obj):
  """Per (image, restart), z and its objective where it is lower than the best so far (NaN never wins)."""
  better = obj < best_obj
  return jnp.where(better[..., None], z, best_z), jnp.where(better, obj, best_obj)


def _initial_z(spec: SolverSpec, f: Callable, d: int, indices: Array, key: Array) -> Array:
  """Best of n_init draws per (image, restart), by objective; (B, R, d)."""
  n = max(spec.n_init, 1)

  def draws(index):
    k = jax.random.fold_in(key, index)
    keys = jax.vmap(lambda r: jax.random.fold_in(k, r))(jnp.arange(spec.restarts))
    return jax.vmap(lambda kr: jax.random.normal(kr, (n, d), jnp.float32))(keys)  # (R, n, d)

  cand = _project(spec, jax.vmap(draws)(indices))  # (B, R, n, d)
  if n == 1:
    return cand[:, :, 0]

  def pick(best, zc):  # one candidate per (image, restart) at a time: memory O(B R)
    return _keep_better(zc, f(zc), *best), None

  start = (cand[:, :, 0], jnp.full(cand.shape[:2], jnp.inf, jnp.float32))
  (best_z, _), _ = lax.scan(pick, start, jnp.moveaxis(cand, 2, 0))
  return best_z


def _descend(spec: SolverSpec, f: Callable, z0: Array, lr: Array, lam: Array, noise_keys: Array | None,
             n_values: int = 1):
  """K steps from z0 (B, R, d), per (image, restart): Adam, or Langevin (spec.sampler). Returns the
  best z and objective on the way (Adam; the last iterate included) or the last z (Langevin), the
  objective before each step (K, B, R) and the recorded z. n_values: the data term's values per
  image (Langevin with spec.lam_count only)."""
  tx = optax.scale_by_adam(b1=ADAM_B1, b2=ADAM_B2, eps=ADAM_EPS)
  update = jax.vmap(jax.vmap(tx.update))

  def total(z):
    obj = f(z)
    return jnp.sum(obj), obj  # images are independent: d(sum)/dz[b, r] = d obj[b, r] / dz[b, r]

  value_and_grad = jax.value_and_grad(total, has_aux=True)

  def step(carry, t):
    z, opt_state, best_z, best_obj = carry
    (_, obj), g = value_and_grad(z)
    eta = (lr * _schedule(spec, t))[:, None, None]
    if spec.sampler == 'langevin':  # grad of U = obj / (2 lam): f's weight is 1 / (2 lam), the prior's 1/2
      noise = jax.vmap(jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, t.astype(jnp.int32)),
                                                            z.shape[-1:])))(noise_keys)
      lam_b = lam[:, None, None]
      noise = noise * math.sqrt(spec.temperature)
      if spec.lam_count is None:
        z = z - eta / (2 * lam_b) * g + jnp.sqrt(2 * eta) * noise
      else:  # the data term alone (obj and g include lam ||z||^2), then lam_eff per (image, restart)
        data = obj - lam[:, None] * jnp.sum(jnp.square(z), axis=-1)
        grad_data = g - 2 * lam_b * z
        c = spec.lam_count
        lam_eff = ((c * lam[:, None] + jnp.maximum(data, 0.0)) / (c + n_values))[..., None]
        z = z - eta / (2 * lam_eff) * grad_data - eta * z + jnp.sqrt(2 * eta) * noise
      return (z, opt_state, best_z, best_obj), obj
    best_z, best_obj = _keep_better(z, obj, best_z, best_obj)
    u, opt_state = update(g, opt_state)
    z = _project(spec, z - eta * u)
    return (z, opt_state, best_z, best_obj), obj

  carry = (z0, jax.vmap(jax.vmap(tx.init))(z0), z0, jnp.full(z0.shape[:2], jnp.inf, jnp.float32))
  k, rec = spec.steps, spec.record_every
  ts = jnp.arange(k, dtype=jnp.float32)
  z_trace = None
  if rec:  # scans of `rec` steps inside a scan, z kept after each
    n_rec = k // rec

    def chunk(carry, ts_chunk):
      carry, objs = lax.scan(step, carry, ts_chunk)
      return carry, (objs, carry[0])

    carry, (objs, zs) = lax.scan(chunk, carry, ts[:n_rec * rec].reshape(n_rec, rec))
    objs = objs.reshape((n_rec * rec,) + objs.shape[2:])
    if k > n_rec * rec:
      carry, rest = lax.scan(step, carry, ts[n_rec * rec:])
      objs = jnp.concatenate([objs, rest])
    z_trace = jnp.moveaxis(zs, 0, 2)  # (B, R, n_rec, d)
  else:
    carry, objs = lax.scan(step, carry, ts)
  z, _, best_z, best_obj = carry
  if spec.sampler == 'langevin':  # a sample is the chain's last state, not its lowest point
    return z, f(z), objs, z_trace
  best_z, best_obj = _keep_better(z, f(z), best_z, best_obj)  # the last iterate counts too
  return best_z, best_obj, objs, z_trace


def _schedule(spec: SolverSpec, t: Array) -> Array:
  if spec.schedule == 'cosine':
    return 0.5 * (1.0 + jnp.cos(jnp.pi * t / spec.steps))
  return jnp.ones_like(t, jnp.float32)


def _select(spec: SolverSpec, nets, params: PyTree, best_z, best_obj, objs, z_trace) -> Result:
  """Per image, the restart with the lowest objective (or, output 'realest', the one D scores most
  real; never chosen by a clean image), and its output."""
  b, big_r = best_obj.shape
  xs = None
  chains = spec.sampler == 'langevin' and big_r >= 2
  if spec.output in ('mean', 'realest') or chains:  # every restart's image, once
    xs = nets.G(params['generator'], best_z.reshape(b * big_r, -1))
  r = jnp.argmin(best_obj, axis=1)  # (B,)
  if spec.output == 'realest':  # the restart D scores most real (a finite one where there is one)
    logit = nets.D(params['discriminator'], xs).reshape(b, big_r)
    r = jnp.argmax(jnp.where(jnp.isfinite(best_obj) & jnp.isfinite(logit), logit, -jnp.inf), axis=1)
  if xs is not None:
    xs = xs.reshape((b, big_r) + xs.shape[1:])
  take = lambda a: jnp.take_along_axis(a, r.reshape((b, 1) + (1,) * (a.ndim - 2)), axis=1)[:, 0]
  z_star = take(best_z)
  x_one = None
  if spec.output == 'mean':
    ok = jnp.isfinite(best_obj).reshape((b, big_r) + (1,) * (xs.ndim - 2))
    x = jnp.sum(jnp.where(ok, xs, 0.), axis=1) / jnp.maximum(jnp.sum(ok, axis=1), 1)
    x = jnp.where(jnp.any(ok, axis=1), x, jnp.nan)  # no finite restart: reported as diverged
    if spec.sampler == 'langevin':  # chain 0, not the lowest objective: that choice is no sample
      x_one = jnp.where(ok[:, 0], xs[:, 0], jnp.nan)
  elif spec.output == 'realest':
    x = take(xs)
  else:
    x = nets.G(params['generator'], z_star)
  post_mean = post_std = None
  if chains:  # the posterior's spread over the chains' samples (the finite ones)
    ok = jnp.isfinite(best_obj).reshape((b, big_r) + (1,) * (xs.ndim - 2))
    k = jnp.sum(ok, axis=1)
    post_mean = jnp.sum(jnp.where(ok, xs, 0.), axis=1) / jnp.maximum(k, 1)
    dev = jnp.where(ok, xs - post_mean[:, None], 0.)
    post_std = jnp.sqrt(jnp.sum(dev * dev, axis=1) / jnp.maximum(k - 1, 1))
    post_mean, post_std = (jnp.where(k >= 2, a, jnp.nan) for a in (post_mean, post_std))
  obj_star = take(best_obj)
  loss_trace = take(jnp.moveaxis(objs, 0, 2))  # (B, K)
  diverged = (~jnp.isfinite(obj_star) | ~jnp.all(jnp.isfinite(x.reshape(b, -1)), axis=1)
              | ~jnp.all(jnp.isfinite(loss_trace), axis=1))
  return Result(x=x, z=z_star, objective=obj_star, restart_objectives=best_obj, loss_trace=loss_trace,
                z_trace=None if z_trace is None else take(z_trace), diverged=diverged, x_one=x_one,
                post_mean=post_mean, post_std=post_std)


# --- how a batch runs: the execution plan ---------------------------------------------------------

# Rows (images x restarts) per piece on a CPU device: a whole solve of a few rows keeps the networks'
# activations in the core's caches, where one piece of 1024 rows streams them through memory at
# every layer (a CPU gains nothing from wider batches); pieces also bound the memory of any batch
# size and let `solve_all` skip the pieces of a padded last batch. Measurements:
# benchmarks/RESULTS.md.
CPU_PIECE_ROWS = 16
# Matmul and convolution precision of the solver on GPU and TPU: full float32, so an accelerator
# computes the numbers of the CPU reference (TF32 / one bf16 pass round the inputs to 10 / 7
# mantissa bits, while the solver drives its objective to ~1e-3 of its start). scripts/gpu_check.sh
# measures speed and PSNR at 'highest' and 'tensorfloat32' side by side. On an H200 (2026-11-27) TF32
# gave the same mean PSNR (GE 17.487 vs 17.486 dB, 500 images) 3.5x faster (0.21 vs 0.74 s), but
# moved single images by up to 1.9 on [-1, 1] (another local minimum): full float32 kept, since the
# solve is a small part of any run and results then match the CPU reference.
ACCELERATOR_MATMUL_PRECISION = 'highest'
_PRECISIONS = ('default', 'high', 'highest', 'bfloat16', 'tensorfloat32', 'float32')


@dataclasses.dataclass(frozen=True)
class ExecutionPlan:
  """How the jitted solver runs a batch on the hardware; part of its compile-cache key.

  The plan never changes what is computed: pieces and devices give the same numbers to float
  rounding (images are independent). matmul_precision can, on GPU and TPU only.

  Attributes:
    piece_rows: 0 = each device solves its share of the batch in one piece; else in pieces of
      about this many rows (images x restarts, at least one image), one after the other; pieces
      holding only padding (`n_valid`) are skipped.
    mesh: None = one device; else a 1-D mesh (axis parallel.DATA) over several devices of this
      process, each solving its share of the batch concurrently (shard_map). XLA runs one CPU
      device's small convolutions on about one core, so a CPU split into one device per core
      (parallel.split_cpu) solves ~2x faster on 2 cores.
    matmul_precision: None = JAX's setting; else a `jax.default_matmul_precision` name used while
      tracing the solver.
  """
  piece_rows: int = 0
  mesh: jax.sharding.Mesh | None = None
  matmul_precision: str | None = None

  def __post_init__(self):
    if not batching.is_int(self.piece_rows) or self.piece_rows < 0:
      raise UserError(f'piece_rows={self.piece_rows!r} must be an integer >= 0 (0: one piece).')
    if self.mesh is not None and self.mesh.axis_names != (parallel.DATA,):
      raise UserError(f'the solver mesh needs the one axis {parallel.DATA!r}, got {self.mesh.axis_names}.')
    if self.matmul_precision not in (None,) + _PRECISIONS:
      raise UserError(f'matmul_precision={self.matmul_precision!r} is not None or one of '
                      f'{", ".join(map(repr, _PRECISIONS))}.')

  @classmethod
  def auto(cls) -> 'ExecutionPlan':
    """The plan for this process's devices: on CPU, pieces of CPU_PIECE_ROWS rows on every CPU
    device; on GPU / TPU, one piece at ACCELERATOR_MATMUL_PRECISION (the batch is spread over
    devices by the caller's shardings, `parallel.solver_place`); several processes: one piece."""
    if jax.default_backend() != 'cpu':
      return cls(matmul_precision=ACCELERATOR_MATMUL_PRECISION)
    if jax.process_count() > 1:
      return cls()
    return cls(piece_rows=CPU_PIECE_ROWS, mesh=parallel.make_mesh() if jax.device_count() > 1 else None)

  def pieces(self, b: int, restarts: int) -> tuple[int, int] | None:
    """(n pieces, images per piece) for one device's b images, or None: one piece."""
    per = max(1, self.piece_rows // restarts)
    if not self.piece_rows or b <= per:
      return None
    n = -(-b // per)
    return n, -(-b // n)

  def precision(self):
    """The context the solver is traced in."""
    if self.matmul_precision is None:
      return contextlib.nullcontext()
    return jax.default_matmul_precision(self.matmul_precision)


def make_solver(nets, spec: SolverSpec, forward: Forward | None = None,
                plan: ExecutionPlan | None = None) -> Callable[..., Result]:
  """The jitted batch solver (cached: equal (nets, spec, forward, plan) -> the same function).

  Args:
    nets: a `ge_jax.models.Nets` (or anything with G(params, z), E(params, x), latent_dim).
    spec: the static spec.
    forward: for 'csgm' only, the operator `forward(x_batch, params_batch) -> y_batch`.
    plan: how to run it; default `ExecutionPlan.auto()`.

  Returns:
    solve(params, target, op_params, indices, key, lr, lam, n_valid=None) -> Result, where params
    is {'generator': ..., 'autoencoder': ...} ('autoencoder' only for 'ge'), target has the batch B
    as leading axis, op_params is a pytree with leading axis B (may be {}), indices (B,) int global
    image indices, key a PRNG key, lr and lam float32 arrays of shape () or (B,). Values of lr and
    lam never recompile; a new B, spec or plan does. n_valid (an int32 scalar, optional): only the
    first n_valid images matter (the rest is padding), so work on the rest may be skipped and their
    results are unspecified; its value never recompiles.
  """
  return _make_solver(nets, spec, forward, ExecutionPlan.auto() if plan is None else plan)


@functools.lru_cache(maxsize=32)
def _make_solver(nets, spec: SolverSpec, forward: Forward | None, plan: ExecutionPlan) -> Callable[..., Result]:
  if spec.objective in FORWARD_OBJECTIVES and forward is None:
    raise UserError(f"objective={spec.objective!r} needs the operator's forward map (forward=...).")
  if spec.objective not in FORWARD_OBJECTIVES and forward is not None:
    raise UserError(f"forward=... is only used by objectives {FORWARD_OBJECTIVES}, not {spec.objective!r}.")
  piece = functools.partial(solve_batch, nets, spec, forward)

  def solve(params, target, op_params, indices, key, lr, lam, n_valid=None) -> Result:
    b = indices.shape[0]
    lr = jnp.broadcast_to(jnp.asarray(lr, jnp.float32), (b,))
    lam = jnp.broadcast_to(jnp.asarray(lam, jnp.float32), (b,))
    batch = (target, op_params, indices, lr, lam)
    with plan.precision():
      if plan.mesh is None:
        return _in_pieces(piece, plan.pieces(b, spec.restarts), params, key, batch, n_valid)
      return _on_devices(piece, plan, spec.restarts, params, key, batch, n_valid)

  return jax.jit(solve)


def _in_pieces(piece: Callable, pieces: tuple[int, int] | None, params, key, batch, n_valid) -> Result:
  """piece(params, key, batch) over consecutive pieces of the batch (n, c) = `pieces`, or whole."""
  if pieces is None:
    return piece(params, key, batch)
  n, c = pieces
  b = batch[2].shape[0]
  chunks = jax.tree.map(lambda a: _repeat_last(a, n * c).reshape((n, c) + a.shape[1:]), batch)
  one = lambda chunk: piece(params, key, chunk)
  if n_valid is None:
    out = lax.map(one, chunks)
  else:  # only the pieces holding one of the first n_valid images run; the rest stay zero
    first = jax.tree.map(lambda a: a[0], chunks)
    out = jax.tree.map(lambda s: jnp.zeros((n,) + s.shape, s.dtype), jax.eval_shape(one, first))

    def body(j, out):
      res = one(jax.tree.map(lambda a: a[j], chunks))
      return jax.tree.map(lambda o, r: o.at[j].set(r), out, res)

    out = lax.fori_loop(0, (jnp.asarray(n_valid, jnp.int32) + c - 1) // c, body, out)
  return jax.tree.map(lambda a: a.reshape((n * c,) + a.shape[2:])[:b], out)


def _on_devices(piece: Callable, plan: ExecutionPlan, restarts: int, params, key, batch, n_valid) -> Result:
  """Each device of plan.mesh solves its share of the batch (in its pieces), concurrently."""
  b = batch[2].shape[0]
  n_dev = plan.mesh.devices.size
  per = -(-b // n_dev)
  batch = jax.tree.map(lambda a: _repeat_last(a, per * n_dev), batch)
  n_valid = jnp.asarray(b if n_valid is None else n_valid, jnp.int32)

  def local(params, batch, key, n_valid):
    here = jnp.clip(n_valid - lax.axis_index(parallel.DATA) * per, 0, per)
    return _in_pieces(piece, plan.pieces(per, restarts), params, key, batch, here)

  rows, same = jax.sharding.PartitionSpec(parallel.DATA), jax.sharding.PartitionSpec()
  out = jax.shard_map(local, mesh=plan.mesh, in_specs=(same, rows, same, same), out_specs=rows,
                      check_vma=False)(params, batch, key, n_valid)
  return jax.tree.map(lambda a: a[:b], out)


def _repeat_last(a: Array, size: int) -> Array:
  """Pads the leading axis to `size` by repeating the last row, inside jit (batching.pad_rows on the host)."""
  return jnp.concatenate([a, jnp.repeat(a[-1:], size - a.shape[0], axis=0)]) if size > a.shape[0] else a


# --- host driver -------------------------------------------------------------------------------


def _per_image(name: str, v, n: int) -> np.ndarray:
  a = np.asarray(v, np.float32)
  if a.ndim > 1 or (a.ndim == 1 and a.shape[0] != n):
    raise UserError(f'{name} must be a number or one value per image ({n}), got shape {a.shape}.')
  if not np.all(np.isfinite(a)) or np.any(a < 0) or (name == 'lr' and np.any(a == 0)):
    raise UserError(f'{name} must be finite and {"> 0" if name == "lr" else ">= 0"}, got {v!r}.')
  return np.broadcast_to(a, (n,))


def solve_all(nets, spec: SolverSpec, params: PyTree, targets, key: Array, *, lr, lam, batch_size: int,
              op_params: PyTree | None = None, indices=None, forward: Forward | None = None,
              progress: bool = True, place: Callable[[PyTree], PyTree] | None = None,
              plan: ExecutionPlan | None = None) -> Result:
  """Solve N images in padded chunks of `batch_size` (one compilation for any N).

  Args:
    nets: a `Nets` (or duck type with G, E, latent_dim).
    spec: the static solver spec.
    params: {'generator': ..., 'autoencoder': ...}.
    targets: (N, ...) codes E(x) for 'ge', images for 'gan', measurements for 'csgm'.
    key: PRNG key; image i uses fold_in(key, indices[i]).
    lr: learning rate, a number or (N,).
    lam: prior weight, a number or (N,).
    batch_size: images per compiled call; the last chunk is padded (last image repeated) and the
      padding dropped from the result.
    op_params: 'csgm' operator parameters, a pytree with leading axis N (default {}).
    indices: (N,) global dataset indices of the images (default arange(N)).
    forward: 'csgm' forward map `forward(x_batch, params_batch)`.
    progress: show a tqdm bar over chunks.
    place: hook applied to each chunk's inputs (a dict of arrays with leading batch axis) before the
      call, e.g. to shard them over devices; default identity.
    plan: the execution plan (default `ExecutionPlan.auto()`).

  Returns:
    A `Result` of numpy arrays for the N images; `diverged` is a bool mask (N,).
  """
  targets = np.asarray(targets)
  n = targets.shape[0] if targets.ndim else 0
  if n == 0:
    raise UserError('solve_all got no images (targets is empty).')
  batch_size = batching.check_batch_size(batch_size)
  if spec.output == 'realest' and 'discriminator' not in params:
    raise UserError("output='realest' picks the restart by the GAN's discriminator: params need "
                    "'discriminator' (load.load_trained and api.load include it).")
  if spec.objective in ('ge', 'ge_op') and 'autoencoder' not in params:
    raise UserError(f"objective={spec.objective!r} needs params['autoencoder'] (the trained encoder).")
  if spec.pixel_weight > 0 and 'observed' not in (op_params or {}):
    raise UserError("pixel_weight > 0 needs the observed images as op_params={'observed': y}.")
  indices = np.arange(n, dtype=np.int32) if indices is None else np.asarray(indices, np.int32)
  if indices.shape != (n,):
    raise UserError(f'indices must have shape ({n},) like targets, got {indices.shape}.')
  op_params = {} if op_params is None else jax.tree.map(np.asarray, op_params)
  for leaf in jax.tree.leaves(op_params):
    if leaf.shape[:1] != (n,):
      raise UserError(f'every op_params leaf needs the {n} images as leading axis, got {leaf.shape}.')
  inputs = dict(target=targets, op_params=op_params, indices=indices,
                lr=_per_image('lr', lr, n), lam=_per_image('lam', lam, n))
  if spec.sampler == 'langevin' and np.any(inputs['lam'] <= 0):
    raise UserError("sampler='langevin' needs lam > 0: it is the variance of the data term's error.")
  place = place or (lambda tree: tree)
  solver = make_solver(nets, spec, forward, plan)

  pieces, pending = [], None
  bar = tqdm(total=n, desc=f'solve[{spec.objective}]', unit='img', disable=not progress)
  for start, stop in batching.chunks(n, batch_size):
    chunk = jax.tree.map(lambda a: batching.pad_rows(a[start:stop], batch_size), inputs)
    # n_valid: the solver skips its pieces that hold only padding. The call is asynchronous, so
    # the previous chunk's fetch below overlaps this one's work.
    out = solver(params, key=key, n_valid=np.int32(stop - start), **place(chunk))
    if pending is not None:
      pieces.append(_fetch(*pending))
      bar.update(pending[1])
    pending = (out, stop - start)
  pieces.append(_fetch(*pending))
  bar.update(pending[1])
  bar.close()
  return Result(*(None if pieces[0][i] is None else np.concatenate([p[i] for p in pieces])
                  for i in range(len(Result._fields))))


def _fetch(out: Result, n_real: int) -> Result:
  # to_host gathers shards held by other processes (multi-host); plain np.asarray otherwise.
  return Result(*(None if a is None else parallel.to_host(a)[:n_real] for a in out))


# --- the autoencoder alone (models.apply_batched on the 'autoencoder' params) -----------------------


def encode_all(nets, params: PyTree, x, batch_size: int) -> np.ndarray:
  """Codes E(x) (N, code_dim) of images x (N, H, W, C), in padded chunks; params as for the solver."""
  return models.apply_batched(nets.E, params['autoencoder'], x, batch_size)


def reconstruct_ae(nets, params: PyTree, x, batch_size: int) -> np.ndarray:
  """The AE-only baseline Dec(E(x)) (N, H, W, C), in padded chunks; params as for the solver."""
  return models.apply_batched(nets.reconstruct, params['autoencoder'], x, batch_size)


def decode_all(nets, params: PyTree, codes, batch_size: int) -> np.ndarray:
  """Images Dec(m) (N, H, W, C) of codes m (N, code_dim), in padded chunks; params as for the solver."""
  return models.apply_batched(nets.Dec, params['autoencoder'], codes, batch_size)
