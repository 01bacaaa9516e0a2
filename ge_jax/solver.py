"""Latent solver: z* = argmin_z f(z) + lam * prior(z), returned as G(z*).

Objectives, per image (sums of squares, not means):

  'ge'    f(z) = ||E(G(z)) - m||^2        target m = E(x), a code (code_dim,)
  'gan'   f(z) = ||G(z) - x||^2           target x, an image (H, W, C)
  'csgm'  f(z) = ||A(G(z); p) - y||^2     target y = measurements; A = `forward`, p = op params

Priors: 'l2' (lam * sum z^2, the paper), 'l1' (lam * sum |z|, the original code), 'sphere' (no
penalty; z is projected onto the sphere of radius sqrt(latent_dim) at init and after every step).

Algorithm, for every image and each of R restarts (all vmapped, one compiled function):
  1. best-of-`n_init` random z ~ N(0, I), chosen by the objective (incl. prior);
  2. `steps` Adam steps inside `lax.scan`, keeping the best z by objective seen on the way
     (so a restart never ends worse than its initial point);
  3. per image, the restart with the lowest objective wins (never chosen by a clean image: the
     solver never sees one).

Randomness is per image: `fold_in(key, global_index)`, then `fold_in(., restart)`, so an image's
result does not depend on its batch-mates, on the chunking, or on R (restart r is the same for any
R > r).

`make_solver` gives the jitted batch function; `solve_all` is the host driver (padded chunks, one
compilation for any N, progress bar, numpy out, divergence report). On a single CPU device the
jitted function solves its batch in pieces of ~128 rows, one after the other (see _chunk_plan).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from tqdm.auto import tqdm

from ge_jax import parallel
from ge_jax.errors import UserError

Array = jax.Array
PyTree = Any
Forward = Callable[[Array, PyTree], Array]

OBJECTIVES = ('ge', 'gan', 'csgm')
PRIORS = ('l2', 'l1', 'sphere')
SCHEDULES = ('constant', 'cosine')
OUTPUTS = ('best', 'mean')
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8


def _is_int(v) -> bool:
  return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclasses.dataclass(frozen=True)
class SolverSpec:
  """Static description of a solve; changing any field recompiles.

  Attributes:
    objective: 'ge' | 'gan' | 'csgm'.
    steps: K, Adam steps per restart.
    restarts: R, independently optimised starts per image (best by objective wins).
    n_init: best-of-N random draws seeding each restart (<= 1: a single draw).
    prior: 'l2' | 'l1' | 'sphere'.
    schedule: 'constant' | 'cosine' (lr * 0.5 * (1 + cos(pi t / K)), t = 0..K-1, no warm-up).
    record_every: 0 = off; else keep z every `record_every` steps (`Result.z_trace`).
    output: 'best' (G(z*) of the restart with the lowest objective, the paper) | 'mean' (the mean of
      G(z) over the R restarts' results: an estimate of the mean over the solution set, which
      is what PSNR rewards; restarts with a non-finite objective are left out).
  """
  objective: str
  steps: int
  restarts: int
  n_init: int
  prior: str = 'l2'
  schedule: str = 'constant'
  record_every: int = 0
  output: str = 'best'

  def __post_init__(self):
    if self.objective not in OBJECTIVES:
      raise UserError(f'objective={self.objective!r} is not one of {", ".join(map(repr, OBJECTIVES))}.')
    if self.prior not in PRIORS:
      raise UserError(f'config.solve.prior={self.prior!r} is not one of {", ".join(map(repr, PRIORS))}.')
    if self.schedule not in SCHEDULES:
      raise UserError(
          f'config.solve.schedule={self.schedule!r} is not one of {", ".join(map(repr, SCHEDULES))}.')
    if self.output not in OUTPUTS:
      raise UserError(f'config.solve.output={self.output!r} is not one of {", ".join(map(repr, OUTPUTS))}.')
    if self.output == 'mean' and self.restarts < 2:
      raise UserError("config.solve.output='mean' averages over restarts; set config.solve.restarts >= 2.")
    for name, low in (('steps', 1), ('restarts', 1), ('n_init', 0), ('record_every', 0)):
      v = getattr(self, name)
      if not _is_int(v) or v < low:
        raise UserError(f'config.solve.{name}={v!r} must be an integer >= {low}.')
    if self.record_every > self.steps:
      raise UserError(f'config.solve.record_every={self.record_every} exceeds config.solve.steps='
                      f'{self.steps}; use 0 (off) or a value <= steps.')

  @classmethod
  def from_config(cls, solve_cfg, objective: str) -> 'SolverSpec':
    """The spec of a `config.solve` block (record_every is optional there, default 0)."""
    get = solve_cfg.get if hasattr(solve_cfg, 'get') else lambda k, d=None: getattr(solve_cfg, k, d)
    fields = {}
    for name in ('steps', 'restarts', 'n_init'):
      v = get(name, None)
      if v is None:
        raise UserError(f'config.solve.{name} is missing; set it to a positive integer.')
      fields[name] = v
    return cls(objective=objective, prior=get('prior', 'l2'), schedule=get('schedule', 'constant'),
               record_every=get('record_every', 0), output=get('output', 'best'), **fields)

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
    diverged: in `make_solver`'s output a bool mask (N,); in `solve_all`'s an int array of the global
      indices of images whose objective, output or chosen trajectory is not finite.
  """
  x: Array
  z: Array
  objective: Array
  restart_objectives: Array
  loss_trace: Array
  z_trace: Array | None
  diverged: Array | np.ndarray


def _schedule(spec: SolverSpec, t: Array) -> Array:
  if spec.schedule == 'cosine':
    return 0.5 * (1.0 + jnp.cos(jnp.pi * t / spec.steps))
  return jnp.ones_like(t, jnp.float32)


def _prior(spec: SolverSpec, z: Array) -> Array:
  """Unweighted prior of z (..., d) -> (...)."""
  if spec.prior == 'l2':
    return jnp.sum(z * z, axis=-1)
  if spec.prior == 'l1':
    return jnp.sum(jnp.abs(z), axis=-1)
  return jnp.zeros(z.shape[:-1], z.dtype)


def _project(spec: SolverSpec, z: Array) -> Array:
  if spec.prior != 'sphere':
    return z
  norm = jnp.sqrt(jnp.sum(z * z, axis=-1, keepdims=True))
  return z * (math.sqrt(z.shape[-1]) / norm)


def _sum_rest(a: Array, n_lead: int = 2) -> Array:
  return jnp.sum(a, axis=tuple(range(n_lead, a.ndim)))


def make_solver(nets, spec: SolverSpec, forward: Forward | None = None) -> Callable[..., Result]:
  """The jitted batch solver of a spec (cached: same (nets, spec, forward) -> same function).

  Args:
    nets: a `ge_jax.models.Nets` (or anything with G(params, z), E(params, x), latent_dim).
    spec: the static spec.
    forward: for 'csgm' only, the operator `forward(x_batch, params_batch) -> y_batch`.

  Returns:
    solve(params, target, op_params, indices, key, lr, lam, n_valid=None) -> Result, where params
    is {'generator': ..., 'autoencoder': ...} ('autoencoder' only for 'ge'), target has the batch B
    as leading axis, op_params is a pytree with leading axis B (may be {}), indices (B,) int global
    image indices, key a PRNG key, lr and lam float32 arrays of shape () or (B,). Values of lr and
    lam never recompile; a new B or spec does. n_valid (an int32 scalar, optional): only the first
    n_valid images matter (the rest is padding), so work on the rest may be skipped and their
    results are unspecified; its value never recompiles.
  """
  return _make_solver(nets, spec, forward)


@functools.lru_cache(maxsize=32)
def _make_solver(nets, spec: SolverSpec, forward: Forward | None) -> Callable[..., Result]:
  """make_solver's body; the cache holds `nets` (and its compiled solvers) for reuse across calls."""
  if spec.objective == 'csgm' and forward is None:
    raise UserError("objective='csgm' needs the operator's forward map (forward=...).")
  if spec.objective != 'csgm' and forward is not None:
    raise UserError(f"forward=... is only used by objective='csgm', not {spec.objective!r}.")
  d = nets.latent_dim
  big_r = spec.restarts
  tx = optax.scale_by_adam(b1=ADAM_B1, b2=ADAM_B2, eps=ADAM_EPS)

  def data_term(params, z, target, op_params):
    """f(z) for z (B, R, d) -> (B, R); the networks see one flat batch of B * R."""
    b = z.shape[0]
    x = nets.G(params['generator'], z.reshape(b * big_r, d))
    if spec.objective == 'ge':
      m = nets.E(params['autoencoder'], x).reshape(b, big_r, -1)
      return _sum_rest(jnp.square(m - target[:, None]))
    if spec.objective == 'gan':
      x = x.reshape((b, big_r) + x.shape[1:])
      return _sum_rest(jnp.square(x - target[:, None]))
    rep = jax.tree.map(lambda a: jnp.repeat(a, big_r, axis=0), op_params)
    y = forward(x, rep)
    y = y.reshape((b, big_r) + y.shape[1:])
    return _sum_rest(jnp.square(y - target[:, None]))

  def objective(params, z, target, op_params, lam):
    return data_term(params, z, target, op_params) + lam[:, None] * _prior(spec, z)

  def total(z, params, target, op_params, lam):
    obj = objective(params, z, target, op_params, lam)
    return jnp.sum(obj), obj  # images are independent: d(sum)/dz[b, r] = d obj[b, r] / dz[b, r]

  value_and_grad = jax.value_and_grad(total, has_aux=True)
  init_state = jax.vmap(jax.vmap(tx.init))
  update = jax.vmap(jax.vmap(lambda g, s: tx.update(g, s)))

  def initial_z(params, target, op_params, indices, key, lam):
    """Best of n_init draws per (image, restart), by objective; (B, R, d)."""
    n = max(spec.n_init, 1)

    def draws(index):
      k = jax.random.fold_in(key, index)
      keys = jax.vmap(lambda r: jax.random.fold_in(k, r))(jnp.arange(big_r))
      return jax.vmap(lambda kr: jax.random.normal(kr, (n, d), jnp.float32))(keys)  # (R, n, d)

    cand = _project(spec, jax.vmap(draws)(indices))  # (B, R, n, d)
    if n == 1:
      return cand[:, :, 0]

    def pick(best, zc):  # one candidate per (image, restart) at a time: memory O(B R)
      best_z, best_obj = best
      obj = objective(params, zc, target, op_params, lam)
      better = obj < best_obj
      return (jnp.where(better[..., None], zc, best_z), jnp.where(better, obj, best_obj)), None

    start = (cand[:, :, 0], jnp.full(cand.shape[:2], jnp.inf, jnp.float32))
    (best_z, _), _ = lax.scan(pick, start, jnp.moveaxis(cand, 2, 0))
    return best_z

  def solve_chunk(params, target, op_params, indices, key, lr, lam) -> Result:
    b = indices.shape[0]
    z0 = initial_z(params, target, op_params, indices, key, lam)

    def step(carry, t):
      z, opt_state, best_z, best_obj = carry
      (_, obj), g = value_and_grad(z, params, target, op_params, lam)
      better = obj < best_obj  # NaN never wins
      best_obj = jnp.where(better, obj, best_obj)
      best_z = jnp.where(better[..., None], z, best_z)
      u, opt_state = update(g, opt_state)
      z = _project(spec, z - (lr * _schedule(spec, t))[:, None, None] * u)
      return (z, opt_state, best_z, best_obj), obj

    carry = (z0, init_state(z0), z0, jnp.full((b, big_r), jnp.inf, jnp.float32))
    k, rec = spec.steps, spec.record_every
    ts = jnp.arange(k, dtype=jnp.float32)
    z_trace = None
    if rec:
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
    final = objective(params, z, target, op_params, lam)  # the last iterate counts too
    better = final < best_obj
    best_obj = jnp.where(better, final, best_obj)
    best_z = jnp.where(better[..., None], z, best_z)

    r = jnp.argmin(best_obj, axis=1)  # (B,), by objective only
    take = lambda a: jnp.take_along_axis(a, r.reshape((b, 1) + (1,) * (a.ndim - 2)), axis=1)[:, 0]
    z_star = take(best_z)
    if spec.output == 'mean':
      xs = nets.G(params['generator'], best_z.reshape(b * big_r, -1))
      xs = xs.reshape((b, big_r) + xs.shape[1:])
      ok = jnp.isfinite(best_obj).reshape((b, big_r) + (1,) * (xs.ndim - 2))
      x = jnp.sum(jnp.where(ok, xs, 0.), axis=1) / jnp.maximum(jnp.sum(ok, axis=1), 1)
      x = jnp.where(jnp.any(ok, axis=1), x, jnp.nan)  # no finite restart: reported as diverged
    else:
      x = nets.G(params['generator'], z_star)
    obj_star = take(best_obj)
    loss_trace = take(jnp.moveaxis(objs, 0, 2))  # (B, K)
    diverged = (~jnp.isfinite(obj_star) | ~jnp.all(jnp.isfinite(x.reshape(b, -1)), axis=1)
                | ~jnp.all(jnp.isfinite(loss_trace), axis=1))
    return Result(x=x, z=z_star, objective=obj_star, restart_objectives=best_obj, loss_trace=loss_trace,
                  z_trace=None if z_trace is None else take(z_trace), diverged=diverged)

  def solve(params, target, op_params, indices, key, lr, lam, n_valid=None) -> Result:
    b = indices.shape[0]
    lr = jnp.broadcast_to(jnp.asarray(lr, jnp.float32), (b,))
    lam = jnp.broadcast_to(jnp.asarray(lam, jnp.float32), (b,))
    mesh = _cpu_mesh()
    if mesh is None:
      return solve_local(params, target, op_params, indices, key, lr, lam, n_valid)
    # Several CPU devices in one process (parallel.split_cpu): each device solves its share of the
    # batch in its own pieces, concurrently: XLA runs one device's convolutions on about one core.
    n_dev = mesh.devices.size
    per = -(-b // n_dev)
    batch = jax.tree.map(lambda a: _repeat_last(a, per * n_dev), (target, op_params, indices, lr, lam))
    n_valid = jnp.asarray(b if n_valid is None else n_valid, jnp.int32)

    def local(params, batch, key, n_valid):
      here = jnp.clip(n_valid - lax.axis_index(parallel.DATA) * per, 0, per)
      target, op_params, indices, lr, lam = batch
      return solve_local(params, target, op_params, indices, key, lr, lam, here)

    rows, same = jax.sharding.PartitionSpec(parallel.DATA), jax.sharding.PartitionSpec()
    out = jax.shard_map(local, mesh=mesh, in_specs=(same, rows, same, same), out_specs=rows,
                        check_vma=False)(params, batch, key, n_valid)
    return jax.tree.map(lambda a: a[:b], out)

  def solve_local(params, target, op_params, indices, key, lr, lam, n_valid=None) -> Result:
    b = indices.shape[0]
    plan = _chunk_plan(b, big_r)
    if plan is None:
      return solve_chunk(params, target, op_params, indices, key, lr, lam)
    n, c = plan  # n chunks of c images, solved one after the other (images are independent)

    def split(a):
      return _repeat_last(a, n * c).reshape((n, c) + a.shape[1:])

    def one(chunk):
      target, op_params, indices, lr, lam = chunk
      return solve_chunk(params, target, op_params, indices, key, lr, lam)

    chunks = jax.tree.map(split, (target, op_params, indices, lr, lam))
    if n_valid is None:
      out = lax.map(one, chunks)
    else:  # only the chunks holding one of the first n_valid images run; the rest stay zero
      first = jax.tree.map(lambda a: a[0], chunks)
      out = jax.tree.map(lambda s: jnp.zeros((n,) + s.shape, s.dtype), jax.eval_shape(one, first))

      def body(j, out):
        res = one(jax.tree.map(lambda a: a[j], chunks))
        return jax.tree.map(lambda o, r: o.at[j].set(r), out, res)

      out = lax.fori_loop(0, (jnp.asarray(n_valid, jnp.int32) + c - 1) // c, body, out)
    return jax.tree.map(lambda a: a.reshape((n * c,) + a.shape[2:])[:b], out)

  return jax.jit(solve)


# Rows (images x restarts) per piece on a CPU device: a whole solve of a few rows keeps the networks'
# activations in the core's caches, where one batch of 1024 rows streams them through memory at
# every layer (a CPU gains nothing from wider batches: its convolutions run as fast on 4 rows as on
# 1024). It also bounds the memory of any batch size and lets `solve_all` skip the pieces of a
# padded last batch (n_valid). With 2 CPU devices on 2 cores (batch 256, R = 4), 16 rows ran at
# 71-75 images/s, 32 at 70, 64 at 68-70, 128 at 60-65; on one device 16 and 128 tied (36-38).
_CPU_CHUNK_ROWS = 16


def _repeat_last(a: Array, size: int) -> Array:
  """Pads the leading axis to `size` by repeating the last row (inside jit; `_pad` is numpy's)."""
  return jnp.concatenate([a, jnp.repeat(a[-1:], size - a.shape[0], axis=0)]) if size > a.shape[0] else a


_SHARD_CPU = True  # False: solve on one CPU device even when there are several (benchmarks compare)


def _cpu_mesh() -> jax.sharding.Mesh | None:
  """A mesh over this process's CPU devices when it has several (parallel.split_cpu), else None."""
  if not _SHARD_CPU or jax.default_backend() != 'cpu' or jax.device_count() < 2 or jax.process_count() > 1:
    return None
  return parallel.make_mesh()


def _chunk_plan(b: int, restarts: int) -> tuple[int, int] | None:
  """(n chunks, images per chunk) for a batch of b images (one CPU device's share), or None (one
  piece: GPUs, TPUs, multi-process meshes)."""
  if jax.default_backend() != 'cpu' or jax.process_count() > 1:
    return None
  per = max(1, _CPU_CHUNK_ROWS // restarts)
  if b <= per:
    return None
  n = -(-b // per)
  return n, -(-b // n)


# --- host driver -------------------------------------------------------------------------------


def _pad(a: np.ndarray, size: int) -> np.ndarray:
  """Pad the leading axis to `size` by repeating the last row."""
  n = a.shape[0]
  if n == size:
    return a
  return np.concatenate([a, np.repeat(a[-1:], size - n, axis=0)], axis=0)


def _chunks(n: int, batch_size: int):
  return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def _per_image(name: str, v, n: int) -> np.ndarray:
  a = np.asarray(v, np.float32)
  if a.ndim > 1 or (a.ndim == 1 and a.shape[0] != n):
    raise UserError(f'{name} must be a number or one value per image ({n}), got shape {a.shape}.')
  if not np.all(np.isfinite(a)) or np.any(a < 0) or (name == 'lr' and np.any(a == 0)):
    raise UserError(f'{name} must be finite and {"> 0" if name == "lr" else ">= 0"}, got {v!r}.')
  return np.broadcast_to(a, (n,))


def solve_all(nets, spec: SolverSpec, params: PyTree, targets, key: Array, *, lr, lam, batch_size: int,
              op_params: PyTree | None = None, indices=None, forward: Forward | None = None,
              progress: bool = True, place: Callable[[PyTree], PyTree] | None = None) -> Result:
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

  Returns:
    A `Result` of numpy arrays for the N images; `diverged` holds the global indices of images with
    a non-finite objective, output or chosen trajectory.
  """
  targets = np.asarray(targets)
  n = targets.shape[0] if targets.ndim else 0
  if n == 0:
    raise UserError('solve_all got no images (targets is empty).')
  if not _is_int(batch_size) or batch_size < 1:
    raise UserError(f'batch_size={batch_size!r} must be an integer >= 1.')
  if spec.objective == 'ge' and 'autoencoder' not in params:
    raise UserError("objective='ge' needs params['autoencoder'] (the trained encoder).")
  indices = np.arange(n, dtype=np.int32) if indices is None else np.asarray(indices, np.int32)
  if indices.shape != (n,):
    raise UserError(f'indices must have shape ({n},) like targets, got {indices.shape}.')
  op_params = {} if op_params is None else jax.tree.map(np.asarray, op_params)
  for leaf in jax.tree.leaves(op_params):
    if leaf.shape[:1] != (n,):
      raise UserError(f'every op_params leaf needs the {n} images as leading axis, got {leaf.shape}.')
  inputs = dict(target=targets, op_params=op_params, indices=indices,
                lr=_per_image('lr', lr, n), lam=_per_image('lam', lam, n))
  place = place or (lambda tree: tree)
  solver = make_solver(nets, spec, forward)

  pieces, pending = [], None
  bar = tqdm(total=n, desc=f'solve[{spec.objective}]', unit='img', disable=not progress)
  for start, stop in _chunks(n, batch_size):
    chunk = jax.tree.map(lambda a: _pad(a[start:stop], batch_size), inputs)
    # n_valid: on a CPU the solver skips its internal pieces that hold only padding.
    out = solver(params, key=key, n_valid=np.int32(stop - start), **place(chunk))  # async: overlaps the fetch
    if pending is not None:
      pieces.append(_fetch(*pending))
      bar.update(pending[1])
    pending = (out, stop - start)
  pieces.append(_fetch(*pending))
  bar.update(pending[1])
  bar.close()

  res = Result(*(None if pieces[0][i] is None else np.concatenate([p[i] for p in pieces])
                 for i in range(len(Result._fields))))
  return res._replace(diverged=indices[res.diverged])


def _fetch(out: Result, n_real: int) -> Result:
  # to_host gathers shards held by other processes (multi-host); plain np.asarray otherwise.
  return Result(*(None if a is None else parallel.to_host(a)[:n_real] for a in out))


def solve(nets, params: PyTree, targets, key: Array, solve_cfg, objective: str, **kwargs) -> Result:
  """`solve_all` with spec, lr, lam and batch_size read from a `config.solve` block."""
  spec = SolverSpec.from_config(solve_cfg, objective)
  return solve_all(nets, spec, params, targets, key, lr=solve_cfg.lr, lam=solve_cfg.lam,
                   batch_size=solve_cfg.batch_size, **kwargs)


# --- autoencoder helpers -------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _jitted(nets, kind: str) -> Callable:
  if kind == 'encode':
    return jax.jit(lambda p, x: nets.E(p, x))
  if kind == 'decode':
    return jax.jit(lambda p, m: nets.Dec(p, m))
  return jax.jit(lambda p, x: nets.Dec(p, nets.E(p, x)))


def _map_batched(fn: Callable, params: PyTree, x, batch_size: int) -> np.ndarray:
  x = np.asarray(x)
  if not _is_int(batch_size) or batch_size < 1:
    raise UserError(f'batch_size={batch_size!r} must be an integer >= 1.')
  outs, pending = [], None
  for start, stop in _chunks(x.shape[0], batch_size):
    out = fn(params, _pad(x[start:stop], batch_size))
    if pending is not None:
      outs.append(np.asarray(pending[0])[:pending[1]])
    pending = (out, stop - start)
  if pending is not None:
    outs.append(np.asarray(pending[0])[:pending[1]])
  return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def encode_all(nets, params: PyTree, x, batch_size: int) -> np.ndarray:
  """Codes E(x) (N, code_dim) of images x (N, H, W, C), in padded chunks; params as for the solver."""
  return _map_batched(_jitted(nets, 'encode'), params['autoencoder'], x, batch_size)


def reconstruct_ae(nets, params: PyTree, x, batch_size: int) -> np.ndarray:
  """The AE-only baseline Dec(E(x)) (N, H, W, C), in padded chunks; params as for the solver."""
  return _map_batched(_jitted(nets, 'reconstruct'), params['autoencoder'], x, batch_size)


def decode_all(nets, params: PyTree, codes, batch_size: int) -> np.ndarray:
  """Images Dec(m) (N, H, W, C) of codes m (N, code_dim), in padded chunks; params as for the solver."""
  return _map_batched(_jitted(nets, 'decode'), params['autoencoder'], codes, batch_size)
