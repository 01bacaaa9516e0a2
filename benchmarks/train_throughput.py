"""Throughput of pre-training: the GAN and AE train steps of ge_jax.pretrain, and an eager PyTorch peer.

  python benchmarks/train_throughput.py --quick --json=/tmp/train.json
  python benchmarks/train_throughput.py --impls=stride1,xla,matmul     # the conv implementations side by side

Steps/s and images/s of the jitted, state-donating steps (`make_gan_step`, `make_ae_step`) at the
config's batch sizes, random weights and random images (speed does not depend on them). FLOPs per
step come from XLA's cost analysis with conv_impl='xla' (the model's own FLOPs). The GAN step's lazy
R1 penalty (every r1_every steps) sits in a lax.cond, which the cost analysis counts at its larger
branch; its share is taken out again for the steps without it. The matmul FLOP/s is timed in the same
run. The PyTorch peer runs the same losses, optimisers and batches eagerly.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if __package__ in (None, ''):
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


from benchmarks import _common
from benchmarks.solver_throughput import load_config


def _gan_flops(cfg, batch: int) -> float:
  """Average FLOPs of one GAN step (conv_impl='xla'), lazy R1 counted once every r1_every steps."""
  import jax
  import jax.numpy as jnp
  from ge_jax import models, pretrain
  c = cfg.copy_and_resolve_references()
  c.model.conv_impl = 'xla'
  nets = models.Nets(c)
  state = pretrain.init_gan_state(nets, c, jax.random.key(0))
  real = jnp.zeros((batch,) + nets.image_shape)
  step = _common.cost_flops(jax.jit(pretrain.make_gan_step(nets, c.gan)).lower(state, real, jax.random.key(1)))

  def r1_grad(d, x):  # the R1 branch's extra work: grad over D of sum(grad_x D(x)^2)
    return jax.grad(lambda d: jnp.sum(jax.grad(lambda x: nets.D(d, x).sum())(x)**2))(d)

  r1 = _common.cost_flops(jax.jit(r1_grad).lower(state['d'], real))
  every = int(c.gan.r1_every)
  return step - r1 * (1 - 1 / every)


def _ae_flops(cfg, n_real: int) -> float:
  import jax
  import jax.numpy as jnp
  from ge_jax import models, pretrain
  c = cfg.copy_and_resolve_references()
  c.model.conv_impl = 'xla'
  nets = models.Nets(c)
  state = pretrain.init_ae_state(nets, c, jax.random.key(0))
  g = models.init_params(c, jax.random.key(1))['generator']
  real = jnp.zeros((n_real,) + nets.image_shape)
  fn = jax.jit(pretrain.make_ae_step(nets, c.ae, c.ops))
  return _common.cost_flops(fn.lower(state, real, g, jax.random.key(2)))


def bench_jax(cfg, impl: str, steps: int) -> list[dict]:
  import jax
  from ge_jax import models, pretrain
  c = cfg.copy_and_resolve_references()
  c.model.conv_impl = impl
  nets = models.Nets(c)
  rows = []
  key = jax.random.key(0)
  # GAN
  b = int(c.gan.batch_size)
  real = jax.random.uniform(jax.random.key(1), (b,) + nets.image_shape, minval=-1, maxval=1)
  state = pretrain.init_gan_state(nets, c, key)
  step = jax.jit(pretrain.make_gan_step(nets, c.gan), donate_argnums=0)
  t0 = time.perf_counter()
  step = step.lower(state, real, key).compile()
  compile_s = time.perf_counter() - t0
  every = int(c.gan.r1_every)
  n = max(every, steps - steps % every)
  for _ in range(every):  # warm-up, both branches of the lazy R1
    state, logs = step(state, real, key)
  jax.block_until_ready(state)
  t0 = time.perf_counter()
  for _ in range(n):
    state, logs = step(state, real, key)
  jax.block_until_ready(state)
  run_s = (time.perf_counter() - t0) / n
  rows.append(dict(method=f'jax {impl}', phase='gan', batch=b, compile_s=compile_s, s_per_step=run_s))
  # AE: real images + samples of G (as pretrain.train_ae)
  n_real = int(c.ae.batch_size) - pretrain.generated_count(c.ae)
  real = jax.random.uniform(jax.random.key(2), (n_real,) + nets.image_shape, minval=-1, maxval=1)
  g_params = jax.tree.map(jax.numpy.copy, state['g'])
  state = pretrain.init_ae_state(nets, c, key)
  step = jax.jit(pretrain.make_ae_step(nets, c.ae, c.ops), donate_argnums=0)
  t0 = time.perf_counter()
  step = step.lower(state, real, g_params, key).compile()
  compile_s = time.perf_counter() - t0
  state, _ = step(state, real, g_params, key)
  jax.block_until_ready(state)
  t0 = time.perf_counter()
  for _ in range(steps):
    state, logs = step(state, real, g_params, key)
  jax.block_until_ready(state)
  rows.append(dict(method=f'jax {impl}', phase='ae', batch=int(c.ae.batch_size), compile_s=compile_s,
                   s_per_step=(time.perf_counter() - t0) / steps))
  return rows


def _torch_seconds_per_call(step, real, n: int, device) -> float:
  """Mean seconds of n calls of a PyTorch train step (already warmed up), synchronised at both ends."""
  from benchmarks import peer_pytorch as pt
  pt.sync(device)
  t0 = time.perf_counter()
  for _ in range(n):
    step(real)
  pt.sync(device)
  return (time.perf_counter() - t0) / n


def bench_torch(cfg, steps: int) -> list[dict]:
  import jax
  import torch
  from benchmarks import peer_pytorch as pt
  from ge_jax import models, pretrain
  torch.set_num_threads(_common.machine()['cpus_usable'])
  torch.manual_seed(0)
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  precision = pt.set_fp32_precision(False) if device == 'cuda' else 'float32'  # as JAX trains: default precision
  params = models.init_params(cfg, jax.random.key(0))
  shape = (cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
  rows = []
  nets = pt.build(cfg, params, device, trainable=True)
  b = int(cfg.gan.batch_size)
  real = torch.rand((b,) + shape, device=device) * 2 - 1
  gan = pt.GanStep(nets, cfg.gan, cfg.model.latent_dim)
  every = int(cfg.gan.r1_every)
  n = max(every, steps - steps % every)
  for _ in range(every):
    gan(real)
  rows.append(dict(method='torch eager', phase='gan', batch=b, s_per_step=_torch_seconds_per_call(gan, real, n, device)))
  n_gen = pretrain.generated_count(cfg.ae)
  real = torch.rand((int(cfg.ae.batch_size) - n_gen,) + shape, device=device) * 2 - 1
  g = pt.build(cfg, {'generator': params['generator']}, device)['G']
  ae = pt.AeStep(nets, g, cfg.ae, n_gen, cfg.model.latent_dim)
  ae(real)
  rows.append(dict(method='torch eager', phase='ae', batch=int(cfg.ae.batch_size),
                   s_per_step=_torch_seconds_per_call(ae, real, steps, device), torch=torch.__version__))
  for r in rows:
    r['torch_precision'] = precision
  return rows


def run(config: str = 'configs/mnist.py', impls=None, steps: int = 40, use_torch: bool = True, log=print) -> dict:
  from ge_jax import pretrain
  cfg = load_config(config)
  impls = impls or [cfg.model.conv_impl]
  info = _common.machine()
  log(f'config {config}: conv_impl={cfg.model.conv_impl}, g_final={cfg.model.g_final}, g_width={cfg.model.g_width}; '
      f'{info["device_kind"]}, {info["cpus_usable"]} CPUs, load {info["loadavg_1m_at_start"]}')
  ceilings = [_common.matmul_flops()]
  flops = dict(gan=_gan_flops(cfg, int(cfg.gan.batch_size)),
               ae=_ae_flops(cfg, int(cfg.ae.batch_size) - pretrain.generated_count(cfg.ae)))
  rows = []
  for impl in impls:
    rows += bench_jax(cfg, impl, steps)
    log(f'  jax {impl}: ' + ', '.join(f'{r["phase"]} {1 / r["s_per_step"]:.3g} steps/s' for r in rows[-2:]))
  ceilings.append(_common.matmul_flops())
  if use_torch:
    rows += bench_torch(cfg, max(4, steps // 4))
    log('  torch: ' + ', '.join(f'{r["phase"]} {1 / r["s_per_step"]:.3g} steps/s' for r in rows[-2:]))
  ceiling = max(ceilings)
  for r in rows:
    r['steps_per_s'] = 1 / r['s_per_step']
    r['images_per_s'] = r['batch'] * r['steps_per_s']
    r['flops_per_s'] = flops[r['phase']] * r['steps_per_s']
    r['flops_fraction'] = r['flops_per_s'] / ceiling
  main = f'jax {impls[0]}'
  out = dict(machine=info, config=config, conv_impl_default=cfg.model.conv_impl, flops_per_step=flops,
             matmul_flops_per_s=ceiling, rows=rows)
  for phase in ('gan', 'ae'):
    j = next(r for r in rows if r['method'] == main and r['phase'] == phase)
    t = next((r for r in rows if r['method'] == 'torch eager' and r['phase'] == phase), None)
    out[f'{phase}_speedup_vs_pytorch'] = j['steps_per_s'] / t['steps_per_s'] if t else None
    out[f'{phase}_flops_fraction'] = j['flops_fraction']
  info['loadavg_1m_at_end'] = os.getloadavg()[0]
  return out


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--quick', action='store_true')
  ap.add_argument('--json', default=None)
  ap.add_argument('--config', default='configs/mnist.py')
  ap.add_argument('--impls', default=None, help="comma list of conv impls (default: the config's)")
  ap.add_argument('--steps', type=int, default=None)
  ap.add_argument('--no_torch', action='store_true')
  a = ap.parse_args(argv)
  t0 = time.time()
  res = run(a.config, a.impls.split(',') if a.impls else None, a.steps or (8 if a.quick else 40), not a.no_torch)
  res['wall_s'] = time.time() - t0
  print()
  print(_common.table(res['rows'], [('method', 'method', ''), ('phase', 'phase', ''), ('batch', 'batch', 'd'),
                                    ('steps_per_s', 'steps/s', '.3g'), ('images_per_s', 'images/s', '.3g'),
                                    ('flops_per_s', 'FLOP/s', '.3g'), ('flops_fraction', 'of matmul', '.0%'),
                                    ('compile_s', 'compile s', '.2f')]))
  print(f'matmul ceiling {res["matmul_flops_per_s"]:.3g} FLOP/s; FLOPs per step {res["flops_per_step"]}')
  for k in ('gan_speedup_vs_pytorch', 'ae_speedup_vs_pytorch', 'gan_flops_fraction', 'ae_flops_fraction'):
    if res.get(k) is not None:
      print(f'{k}: {res[k]:.3g}')
  print(f'({res["wall_s"]:.0f} s)')
  _common.write_json(a.json, res)
  return 0


if __name__ == '__main__':
  sys.exit(main())
