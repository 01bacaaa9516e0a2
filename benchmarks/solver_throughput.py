"""Throughput of the GE solver: ge-jax (jit + vmap + scan) against eager PyTorch on the same nets.

  python benchmarks/solver_throughput.py --quick --json=/tmp/solver.json   # < 2 minutes
  python benchmarks/solver_throughput.py --json=benchmarks/solver.json      # full, < 10 minutes

For the config's networks (random weights: speed does not depend on training), the GE objective,
R restarts and K Adam steps per image, it measures images/s of
  (a) a Python loop over images, each solved by the jit-compiled one-image solver;
  (b) the batched solver (`ge_jax.solver.make_solver`) at several batch sizes;
  (c) `peer_pytorch`: the same nets with the same (converted) weights and the same steps in eager
      PyTorch, the original's one-image loop and batched;
plus compile time apart from run time, peak memory (RSS of a child process solving the memory
batch in one call), a second-process compile against the persistent compilation cache, and FLOP/s:
XLA's cost analysis of one solver step (conv_impl='xla', the model's FLOPs) times K over the
measured time, next to the FLOP/s of a large float32 matmul timed in the same run. Timings on a
shared machine are noisy: compare the ratios inside one run (they are in the JSON's top level).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time

if __package__ in (None, ''):
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks import _common


@dataclasses.dataclass
class Options:
  """What to measure; the defaults are the full run."""
  config: str = 'configs/mnist.py'
  conv_impl: str | None = None          # None: the config's
  matmul_precision: str | None = None   # None: the solver's ExecutionPlan.auto() (GPU: 'highest')
  steps: int = 20                       # K
  restarts: int | None = 4              # R, pinned so runs stay comparable; None: config.solve.restarts
  n_init: int = 0                       # best-of-N start; 0 = one draw (the steps dominate)
  lr: float = 0.05
  lam: float = 1e-3
  batch_sizes: tuple[int, ...] = (1, 16, 64, 256, 1024)
  headline_batch: int = 256             # the batch of the speedups and the FLOP fraction
  reps: int = 3                         # timed calls per batch size (best counts); 1 above 256
  loop_images: int = 8                  # (a) JAX one-image loop
  torch: bool = True
  torch_loop_images: int = 4            # (c) PyTorch one-image loop
  torch_threads: int | None = None      # None: the usable CPU count
  memory_batch: int = 1024              # peak RSS of one call with this many images (child process)
  cache_check: bool = True              # compile twice in fresh processes sharing a cache dir
  matmul_n: int = 2048
  layers: bool = True                   # each conv layer alone: FLOP/s (why the fraction is what it is)
  compare_impls: bool = True            # the headline batch with every conv impl, interleaved
  seed: int = 0

  @classmethod
  def quick(cls, **kw) -> 'Options':
    base = dict(steps=10, batch_sizes=(1, 16, 64, 256), reps=2, loop_images=4, torch_loop_images=2, layers=False,
                compare_impls=False)
    base.update(kw)
    return cls(**base)


def load_config(path: str, conv_impl: str | None = None):
  from ge_jax import load
  cfg = load.config_file(path if os.path.isabs(path) else os.path.join(_common.ROOT, path))
  if conv_impl:
    cfg.model.conv_impl = conv_impl
  return cfg


def setup(cfg, opts: Options, n: int):
  """Nets, params, n target codes (codes of G's images) and the solver spec."""
  import jax
  from ge_jax import models, solver
  nets = models.Nets(cfg)
  params = jax.jit(lambda k: models.init_params(cfg, k))(jax.random.key(opts.seed))  # one compile, not eager
  z_true = jax.random.normal(jax.random.key(opts.seed + 1), (n, cfg.model.latent_dim))
  x = jax.jit(nets.G)(params['generator'], z_true)
  targets = np.asarray(jax.jit(nets.E)(params['autoencoder'], x))
  r = opts.restarts or int(cfg.solve.restarts)
  spec = solver.SolverSpec('ge', steps=opts.steps, restarts=r, n_init=opts.n_init)
  return nets, params, targets, spec


def solver_plan(opts: Options):
  """The solver's execution plan for this process (ExecutionPlan.auto), at the chosen precision."""
  from ge_jax import solver
  plan = solver.ExecutionPlan.auto()
  if opts.matmul_precision is None:
    return plan
  return dataclasses.replace(plan, matmul_precision=opts.matmul_precision)


def solver_args(params, targets, b: int, key, opts: Options, offset: int = 0):
  import jax.numpy as jnp
  p = {'generator': params['generator'], 'autoencoder': params['autoencoder']}
  idx = jnp.arange(offset, offset + b, dtype=jnp.int32)
  return (p, jnp.asarray(targets[offset:offset + b]), {}, idx, key, jnp.float32(opts.lr), jnp.float32(opts.lam))


def step_flops(cfg, params, b: int, r: int) -> float:
  """XLA's cost analysis of ONE solver step (grad of the GE objective + Adam) on b images x r restarts.

  Counted with conv_impl='xla' (lax convolutions), i.e. the model's own FLOPs whatever impl runs.
  """
  import jax
  import jax.numpy as jnp
  import optax
  from ge_jax import models
  c = cfg.copy_and_resolve_references()
  c.model.conv_impl = 'xla'
  nets = models.Nets(c)
  tx = optax.scale_by_adam()
  d = c.model.latent_dim

  def step(z, opt_state, p, m, lam, lr):
    def total(z):
      code = nets.E(p['autoencoder'], nets.G(p['generator'], z.reshape(b * r, d))).reshape(b, r, -1)
      obj = jnp.sum(jnp.square(code - m[:, None]), -1) + lam * jnp.sum(z * z, -1)
      return jnp.sum(obj)
    g = jax.grad(total)(z)
    u, opt_state = tx.update(g, opt_state)
    return z - lr * u, opt_state

  z = jnp.zeros((b, r, d))
  args = (z, tx.init(z), {'generator': params['generator'], 'autoencoder': params['autoencoder']},
          jnp.zeros((b, c.ae.code_dim)), jnp.float32(1e-3), jnp.float32(0.05))
  return _common.cost_flops(jax.jit(step).lower(*args))


def jax_initial_z(key, indices, restarts: int, d: int) -> np.ndarray:
  """The solver's starting z for n_init <= 1: normal(fold_in(fold_in(key, index), restart)); (B, R, d)."""
  import jax
  rows = [[np.asarray(jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, int(i)), r), (1, d)))[0]
           for r in range(restarts)] for i in indices]
  return np.asarray(rows, np.float32)


# --- (a) and (b): ge-jax ------------------------------------------------------------------------


def bench_batched(nets, spec, params, targets, b: int, opts: Options, reps: int) -> dict:
  import jax
  from ge_jax import solver
  key = jax.random.key(opts.seed + 2)
  fn = solver.make_solver(nets, spec, plan=solver_plan(opts))
  args = solver_args(params, targets, b, key, opts)
  t0 = time.perf_counter()
  compiled = fn.lower(*args).compile()
  compile_s = time.perf_counter() - t0
  run_s = _common.best_time(lambda: compiled(*args), reps, warmup=1)
  return dict(method='jax batched', batch=b, compile_s=compile_s, run_s=run_s, images_per_s=b / run_s)


def bench_loop(nets, spec, params, targets, n: int, opts: Options) -> dict:
  """(a): a Python loop over n images, each one call of the jitted one-image solver."""
  import jax
  from ge_jax import solver
  key = jax.random.key(opts.seed + 2)
  fn = solver.make_solver(nets, spec, plan=solver_plan(opts))
  t0 = time.perf_counter()
  compiled = fn.lower(*solver_args(params, targets, 1, key, opts)).compile()
  compile_s = time.perf_counter() - t0
  _common.block(compiled(*solver_args(params, targets, 1, key, opts)))  # warm-up
  t0 = time.perf_counter()
  for i in range(n):
    res = compiled(*solver_args(params, targets, 1, key, opts, offset=i))
    np.asarray(res.x)  # the host gets each image's result before the next starts
  run_s = time.perf_counter() - t0
  return dict(method='jax one-image loop', batch=1, images=n, compile_s=compile_s, run_s=run_s,
              images_per_s=n / run_s)


def compare_impls(cfg, opts: Options, b: int, rounds: int = 2) -> list[dict]:
  """The batched solver at batch b for each conv impl, 'stride1' and 'xla' in one piece on one
  device (the state before this benchmark's changes was 'xla' in one piece), and 'stride1' on one
  of several CPU devices (parallel.split_cpu); timed in interleaved rounds. Each variant is an
  ExecutionPlan derived from this process's `solver_plan`."""
  import jax
  from ge_jax import models, solver
  auto = solver_plan(opts)
  n_dev = auto.mesh.devices.size if auto.mesh is not None else 1
  variants = [(impl, True, n_dev) for impl in models.CONV_IMPLS] + [('stride1', False, 1), ('xla', False, 1)]
  if n_dev > 1:  # the same solver on one of the CPU devices (parallel.split_cpu off)
    variants.append(('stride1', True, 1))
  compiled = {}
  for impl, pieces, devices in variants:
    c = cfg.copy_and_resolve_references()
    c.model.conv_impl = impl
    nets, params, targets, spec = setup(c, opts, b)
    plan = dataclasses.replace(auto, piece_rows=auto.piece_rows if pieces else 0,
                               mesh=auto.mesh if devices > 1 else None)
    args = solver_args(params, targets, b, jax.random.key(opts.seed + 2), opts)
    compiled[(impl, pieces, devices)] = (solver.make_solver(nets, spec, plan=plan).lower(*args).compile(), args)
  best = {k: float('inf') for k in compiled}
  for r in range(rounds + 1):
    for k, (fn, args) in compiled.items():
      t0 = time.perf_counter()
      _common.block(fn(*args))
      if r:  # round 0 warms up
        best[k] = min(best[k], time.perf_counter() - t0)
  return [dict(method=f'jax batched, conv_impl={impl}' + ('' if pieces else ', one piece')
               + f', {devices} CPU device' + ('s' if devices > 1 else ''), batch=b, run_s=t, images_per_s=b / t)
          for (impl, pieces, devices), t in best.items()]


# --- (c): PyTorch ---------------------------------------------------------------------------------


def bench_torch(cfg, params, targets, spec, opts: Options, batch: int, full_fp32: bool) -> tuple[list[dict], dict]:
  """`full_fp32`: the JAX solver's matmul precision is 'highest', so the peer's GPU convolutions
  are pinned to full float32 too (PyTorch's cuDNN default is TF32)."""
  import jax
  import torch
  from benchmarks import peer_pytorch as pt
  threads = opts.torch_threads or _common.machine()['cpus_usable']
  torch.set_num_threads(threads)
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  precision = pt.set_fp32_precision(full_fp32) if device == 'cuda' else 'float32'
  nets = pt.build(cfg, params, device)
  conversion = pt.check_conversion(cfg, params, nets)
  key = jax.random.key(opts.seed + 2)
  n = max(batch, opts.torch_loop_images)
  z0 = torch.from_numpy(jax_initial_z(key, range(n), spec.restarts, cfg.model.latent_dim)).to(device)
  m = torch.from_numpy(np.array(targets[:n])).to(device)
  kw = dict(lr=opts.lr, lam=opts.lam, steps=spec.steps, device=device)
  pt.time_solve(pt.solve_batched, nets, m[:2], z0[:2], **dict(kw, steps=2))  # warm-up (allocator, threads)
  rows = []
  k = opts.torch_loop_images
  run_s, _ = pt.time_solve(pt.solve_per_image, nets, m[:k], z0[:k], **kw)
  rows.append(dict(method='torch one-image loop', batch=1, images=k, run_s=run_s, images_per_s=k / run_s))
  run_s, _ = pt.time_solve(pt.solve_per_image_restarts_batched, nets, m[:k], z0[:k], **kw)
  rows.append(dict(method='torch one-image loop, R batched', batch=1, images=k, run_s=run_s,
                   images_per_s=k / run_s))
  best = float('inf')
  for _ in range(max(1, opts.reps - 1)):
    run_s, _ = pt.time_solve(pt.solve_batched, nets, m[:batch], z0[:batch], **kw)
    best = min(best, run_s)
  rows.append(dict(method='torch batched', batch=batch, run_s=best, images_per_s=batch / best))
  for r in rows:
    r.update(torch_threads=threads, torch_device=device, torch=torch.__version__, torch_precision=precision)
  return rows, conversion


def same_steps_check(cfg, params, targets, opts: Options, n: int = 3, steps: int = 5) -> dict:
  """The two implementations take the same steps: same z0 -> same best objective (relative gap)."""
  import jax
  import torch
  from benchmarks import peer_pytorch as pt
  from ge_jax import models, solver
  key = jax.random.key(opts.seed + 2)
  spec = solver.SolverSpec('ge', steps=steps, restarts=2, n_init=0)
  nets = models.Nets(cfg)
  res = solver.make_solver(nets, spec, plan=solver_plan(opts))(*solver_args(params, targets, n, key, opts))
  tn = pt.build(cfg, params)
  z0 = torch.from_numpy(jax_initial_z(key, range(n), 2, cfg.model.latent_dim))
  _, obj = pt.solve_batched(tn, torch.from_numpy(np.array(targets[:n])), z0, lr=opts.lr, lam=opts.lam, steps=steps)
  j = np.asarray(res.objective)
  return dict(max_relative_gap=float(np.max(np.abs(obj.numpy() - j) / np.maximum(np.abs(j), 1e-6))))


# --- the conv layers one by one -------------------------------------------------------------------


def conv_layers(cfg) -> list[dict]:
  """The conv layers G and E run (kind, features, kernel, stride, input shape without batch)."""
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  from ge_jax import models
  nets, seen = models.Nets(cfg), []

  def record(next_fun, args, kwargs, context):
    mod = context.module
    if context.method_name == '__call__' and not isinstance(mod.parent, models.Upsample):
      shape = tuple(args[0].shape[1:])
      if isinstance(mod, models.Upsample):
        seen.append(dict(kind='upsample', features=mod.features, kernel=3, stride=1, shape=shape))
      elif isinstance(mod, models.Conv):
        seen.append(dict(kind='conv', features=mod.features, kernel=mod.kernel, stride=mod.stride, shape=shape))
    return next_fun(*args, **kwargs)

  params = jax.eval_shape(lambda k: models.init_params(cfg, k), jax.random.key(0))
  with nn.intercept_methods(record):
    x = jax.eval_shape(nets.G, params['generator'], jnp.zeros((1, cfg.model.latent_dim)))
    g_layers = len(seen)
    jax.eval_shape(nets.E, params['autoencoder'], jnp.zeros(x.shape))
  for i, l in enumerate(seen):
    l['net'] = 'G' if i < g_layers else 'E'
  return seen


def layer_profile(cfg, rows: int, ceiling: float, loops: int = 10) -> list[dict]:
  """FLOP/s of each conv layer alone (forward + input gradient, the solver's work) on `rows` rows."""
  import jax
  from ge_jax import models
  out = []
  for l in conv_layers(cfg):
    x = jax.random.normal(jax.random.key(0), (rows,) + l['shape'])

    def module(impl):
      if l['kind'] == 'upsample':
        return models.Upsample(l['features'], impl)
      return models.Conv(l['features'], l['kernel'], l['stride'], impl)

    p = module('xla').init(jax.random.key(1), x[:1])

    def work(impl):
      m = module(impl)
      def f(x, p):
        y, vjp = jax.vjp(lambda x: m.apply(p, x), x)
        return vjp(y)[0]
      return f

    flops = _common.cost_flops(jax.jit(work('xla')).lower(x, p))

    def loop(x, p):
      f = work(models.resolve_conv_impl(cfg.model.conv_impl))
      return jax.lax.fori_loop(0, loops, lambda i, x: f(x, p) * 1e-3 + x, x)

    c = jax.jit(loop).lower(x, p).compile()
    t = _common.best_time(lambda: c(x, p), reps=3) / loops
    out.append(dict(layer=f'{l["net"]} {l["kind"]} {l["kernel"]}x{l["kernel"]}/{l["stride"]} '
                          f'{l["shape"][0]}x{l["shape"][1]}x{l["shape"][2]}->{l["features"]}',
                    rows=rows, ms=t * 1e3, flops=flops, flops_per_s=flops / t, flops_fraction=flops / t / ceiling))
  return out


# --- child processes: peak memory and the compilation cache ----------------------------------------


def child_memory(opts: Options, b: int) -> dict:
  """One solve of b images in a fresh process; peak RSS before and after."""
  import jax
  cfg = load_config(opts.config, opts.conv_impl)
  nets, params, targets, spec = setup(cfg, dataclasses.replace(opts, steps=min(opts.steps, 5)), b)
  setup_peak = _common.peak_rss_bytes()
  before = _common.rss_bytes()
  reset = _common.reset_peak_rss()
  from ge_jax import solver
  solve = solver.make_solver(nets, spec, plan=solver_plan(opts))
  res = solve(*solver_args(params, targets, b, jax.random.key(0), opts))
  _common.block(res)
  peak = _common.peak_rss_bytes()
  out = dict(batch=b, restarts=spec.restarts, peak_rss_bytes=max(peak, setup_peak), rss_before_solve_bytes=before,
             peak_rss_during_solve_bytes=peak if reset else None)
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    out['device_peak_bytes'] = int(stats['peak_bytes_in_use'])
  return out


def child_cache(opts: Options, b: int) -> dict:
  """Compile the batch solver after `cli.setup_jax()` (the CLIs' persistent cache); count cache hits."""
  from ge_jax import cli
  cli.setup_jax()
  import jax
  counts = {'hits': 0, 'misses': 0}

  def listen(event, **kw):
    if event == '/jax/compilation_cache/cache_hits':
      counts['hits'] += 1
    elif event == '/jax/compilation_cache/cache_misses':
      counts['misses'] += 1

  jax.monitoring.register_event_listener(listen)
  cfg = load_config(opts.config, opts.conv_impl)
  nets, params, targets, spec = setup(cfg, opts, b)
  from ge_jax import solver
  fn = solver.make_solver(nets, spec, plan=solver_plan(opts))
  args = solver_args(params, targets, b, jax.random.key(0), opts)
  t0 = time.perf_counter()
  fn.lower(*args).compile()
  return dict(compile_s=time.perf_counter() - t0, cache_hits=counts['hits'], cache_misses=counts['misses'])


def _child_argv(kind: str, opts: Options, b: int) -> list[str]:
  return [os.path.abspath(__file__), f'--_child={kind}', f'--_child_batch={b}',
          f'--_opts={json.dumps(dataclasses.asdict(opts))}']


# --- the run ------------------------------------------------------------------------------------


def run(opts: Options, log=print) -> dict:
  """Measures everything; returns the JSON-ready results."""
  cfg = load_config(opts.config, opts.conv_impl)
  info = _common.machine()
  n_max = max(max(opts.batch_sizes), opts.headline_batch, opts.loop_images, opts.torch_loop_images)
  nets, params, targets, spec = setup(cfg, opts, n_max)
  r, k = spec.restarts, spec.steps
  impl, plan = nets.spec.conv_impl, solver_plan(opts)
  log(f'config {opts.config}: conv_impl={cfg.model.conv_impl} ({impl}), matmul_precision={plan.matmul_precision}, '
      f'g_final={cfg.model.g_final}, g_norm={cfg.model.g_norm}, g_width={cfg.model.g_width}; '
      f'GE, R={r}, K={k}, n_init={opts.n_init}; '
      f'{info["device_kind"]}, {info["cpus_usable"]} CPUs, load {info["loadavg_1m_at_start"]}')
  ceilings = [opts.matmul_n and _common.matmul_flops(opts.matmul_n)]
  rows = []
  flops_per_image_step = step_flops(cfg, params, 1, r)  # per image, R restarts
  flops_256 = step_flops(cfg, params, opts.headline_batch, r) / opts.headline_batch

  if opts.loop_images:
    rows.append(bench_loop(nets, spec, params, targets, opts.loop_images, opts))
    log(f'  {rows[-1]["method"]}: {rows[-1]["images_per_s"]:.3g} images/s')
  for b in sorted(set(opts.batch_sizes) | {opts.headline_batch}):
    rows.append(bench_batched(nets, spec, params, targets, b, opts, opts.reps if b <= 256 else 1))
    log(f'  jax batched {b}: {rows[-1]["images_per_s"]:.3g} images/s (compile {rows[-1]["compile_s"]:.1f} s)')
    if b == opts.headline_batch:
      ceilings.append(_common.matmul_flops(opts.matmul_n))
  if opts.compare_impls:
    impl_rows = compare_impls(cfg, opts, opts.headline_batch)
    rows += impl_rows
    for t in impl_rows:
      log(f'  {t["method"]}: {t["images_per_s"]:.3g} images/s')
  conversion, same = None, None
  if opts.torch:
    trows, conversion = bench_torch(cfg, params, targets, spec, opts, opts.headline_batch,
                                    full_fp32=plan.matmul_precision == 'highest')
    rows += trows
    for t in trows:
      log(f'  {t["method"]}: {t["images_per_s"]:.3g} images/s')
    same = same_steps_check(cfg, params, targets, opts)
  ceilings.append(_common.matmul_flops(opts.matmul_n))
  ceiling = max(c for c in ceilings if c)

  per_image = flops_256 * k  # FLOPs of one image's solve (its R restarts, K steps)
  for row in rows:
    row['flops_per_s'] = per_image * row['images_per_s']
    row['flops_fraction'] = row['flops_per_s'] / ceiling
    row['ms_per_step'] = 1e3 * row['run_s'] / k

  layers = None
  if opts.layers:
    layers = layer_profile(cfg, min(opts.headline_batch * r, plan.piece_rows or 1 << 30), ceiling)
    for l in layers:
      log(f'  {l["layer"]}: {l["flops_per_s"]:.3g} FLOP/s ({l["flops_fraction"]:.0%} of matmul)')

  memory = None
  if opts.memory_batch:
    memory = _common.run_child(_child_argv('memory', opts, opts.memory_batch))
    log(f'  peak RSS solving {opts.memory_batch} images x R={r} in one call: '
        f'{memory["peak_rss_bytes"] / 2**30:.2f} GiB')
  cache = None
  if opts.cache_check:
    d = tempfile.mkdtemp(prefix='ge_jax_cache_')
    try:
      env = {'GE_JAX_CACHE': d}
      first = _common.run_child(_child_argv('cache', opts, opts.headline_batch), env)
      second = _common.run_child(_child_argv('cache', opts, opts.headline_batch), env)
      cache = dict(first=first, second=second, entries=len(os.listdir(d)))
    finally:
      shutil.rmtree(d, ignore_errors=True)
    log(f'  compile with an empty cache {first["compile_s"]:.1f} s, second process {second["compile_s"]:.1f} s '
        f'({second["cache_hits"]} cache hits)')

  find = lambda m, b=None: next((x for x in rows if x['method'] == m and (b is None or x['batch'] == b)), None)
  head = find('jax batched', opts.headline_batch)
  tb, tl, tlr = find('torch batched'), find('torch one-image loop'), find('torch one-image loop, R batched')
  info['loadavg_1m_at_end'] = os.getloadavg()[0] if hasattr(os, 'getloadavg') else None
  return dict(
      machine=info,
      setting=dict(config=opts.config, conv_impl=impl, matmul_precision=plan.matmul_precision,
                   g_final=cfg.model.g_final, g_norm=cfg.model.g_norm, g_width=cfg.model.g_width, objective='ge',
                   restarts=r, steps=k,
                   n_init=opts.n_init, lr=opts.lr, lam=opts.lam, options=dataclasses.asdict(opts)),
      speedup_vs_pytorch_batched=head['images_per_s'] / tb['images_per_s'] if tb else None,
      speedup_vs_pytorch_per_image=head['images_per_s'] / tl['images_per_s'] if tl else None,
      speedup_vs_pytorch_per_image_restarts_batched=head['images_per_s'] / tlr['images_per_s'] if tlr else None,
      speedup_vs_jax_per_image=head['images_per_s'] / rows[0]['images_per_s'] if opts.loop_images else None,
      flops_fraction_batch256=head['flops_fraction'],
      flops_per_solver_step_per_image=flops_256,
      flops_per_solver_step_batch1=flops_per_image_step,
      matmul_flops_per_s=ceiling, matmul_flops_per_s_samples=[c for c in ceilings if c],
      compile_s_batch256=head['compile_s'],
      peak_memory=memory, compilation_cache=cache, layer_profile=layers, torch_conversion_max_abs_err=conversion,
      torch_same_steps=same, rows=rows)


def print_table(res: dict, out=print) -> None:
  cols = [('method', 'method', ''), ('batch', 'batch', 'd'), ('images_per_s', 'images/s', '.3g'),
          ('ms_per_step', 'ms/step', '.4g'), ('flops_per_s', 'FLOP/s', '.3g'),
          ('flops_fraction', 'of matmul', '.0%'), ('compile_s', 'compile s', '.2f')]
  out(_common.table(res['rows'], cols))
  s = res['setting']
  out(f'matmul ceiling {res["matmul_flops_per_s"]:.3g} FLOP/s; GE R={s["restarts"]} K={s["steps"]}; '
      f'one solver step = {res["flops_per_solver_step_per_image"]:.3g} FLOP per image (XLA cost analysis)')
  for key in ('speedup_vs_pytorch_batched', 'speedup_vs_pytorch_per_image',
              'speedup_vs_pytorch_per_image_restarts_batched', 'speedup_vs_jax_per_image',
              'flops_fraction_batch256', 'compile_s_batch256'):
    if res.get(key) is not None:
      out(f'{key}: {res[key]:.3g}')
  if res.get('layer_profile'):
    out('conv layers alone (forward + input gradient):')
    out(_common.table(res['layer_profile'], [('layer', 'layer', ''), ('rows', 'rows', 'd'), ('ms', 'ms', '.3g'),
                                             ('flops_per_s', 'FLOP/s', '.3g'), ('flops_fraction', 'of matmul', '.0%')]))
  if res.get('peak_memory'):
    m = res['peak_memory']
    during = m.get('peak_rss_during_solve_bytes')
    out(f'peak RSS of the process, {m["batch"]} images x R={m["restarts"]} in one call: '
        f'{m["peak_rss_bytes"] / 2**30:.2f} GiB; RSS before the solve {m["rss_before_solve_bytes"] / 2**30:.2f} GiB'
        + (f', peak during compile + solve {during / 2**30:.2f} GiB' if during else ''))
  if res.get('compilation_cache'):
    c = res['compilation_cache']
    out(f'compile in a fresh process: {c["first"]["compile_s"]:.2f} s; again with the cache: '
        f'{c["second"]["compile_s"]:.2f} s, {c["second"]["cache_hits"]} hits, {c["second"]["cache_misses"]} misses')
  if res.get('torch_conversion_max_abs_err'):
    out(f'Flax vs torch max |diff|: {res["torch_conversion_max_abs_err"]}; same steps: {res["torch_same_steps"]}')


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--quick', action='store_true', help='a run under two minutes')
  ap.add_argument('--json', default=None, help='write the results here')
  ap.add_argument('--config', default=None)
  ap.add_argument('--conv_impl', default=None)
  ap.add_argument('--matmul_precision', default=None,
                  help="the solver's matmul precision, e.g. highest | tensorfloat32 (default: the solver's plan)")
  ap.add_argument('--steps', type=int, default=None)
  ap.add_argument('--restarts', type=int, default=None)
  ap.add_argument('--n_init', type=int, default=None)
  ap.add_argument('--batch_sizes', default=None, help='comma list, e.g. 1,16,64,256,1024')
  ap.add_argument('--no_torch', action='store_true')
  ap.add_argument('--headline_batch', type=int, default=None, help='the batch of the speedups (default 256)')
  ap.add_argument('--memory_batch', type=int, default=None, help='peak-memory batch; 0 = skip (default 1024)')
  ap.add_argument('--no_cache_check', action='store_true', help='skip the two-process compilation-cache check')
  ap.add_argument('--cpu_devices', default='auto',
                  help="CPU devices for JAX (parallel.split_cpu): 'auto' = one per core (the CLIs' default), or N")
  ap.add_argument('--_child', default=None, help=argparse.SUPPRESS)
  ap.add_argument('--_child_batch', type=int, default=0, help=argparse.SUPPRESS)
  ap.add_argument('--_opts', default=None, help=argparse.SUPPRESS)
  a = ap.parse_args(argv)
  from ge_jax import parallel
  parallel.split_cpu(a.cpu_devices if a.cpu_devices == 'auto' else int(a.cpu_devices))  # children inherit it
  if a._child:
    opts = Options(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(a._opts).items()})
    fn = child_memory if a._child == 'memory' else child_cache
    print(json.dumps(fn(opts, a._child_batch)))
    return 0
  kw = {k: v for k, v in dict(config=a.config, conv_impl=a.conv_impl, matmul_precision=a.matmul_precision,
                              steps=a.steps, restarts=a.restarts, n_init=a.n_init, headline_batch=a.headline_batch,
                              memory_batch=a.memory_batch).items() if v is not None}
  if a.batch_sizes:
    kw['batch_sizes'] = tuple(int(b) for b in a.batch_sizes.split(','))
  if a.no_torch:
    kw['torch'] = False
  if a.no_cache_check:
    kw['cache_check'] = False
  opts = Options.quick(**kw) if a.quick else Options(**kw)
  t0 = time.time()
  res = run(opts)
  res['wall_s'] = time.time() - t0
  print()
  print_table(res)
  print(f'({res["wall_s"]:.0f} s)')
  _common.write_json(a.json, res)
  return 0


if __name__ == '__main__':
  sys.exit(main())
