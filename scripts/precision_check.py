"""The solver's matmul precision, measured: PSNR and solve time of each method at each precision.

  python scripts/precision_check.py --config=configs/mnist.py --workdir=runs/mnist --n=500 --json=p.json

The same trained networks, test images, corruption and random starts for every precision; only the
solver's `ExecutionPlan.matmul_precision` changes (the codes E(y) are computed once, at JAX's
setting). On a GPU this compares 'highest' (full float32, the solver's choice there,
solver.ACCELERATOR_MATMUL_PRECISION) with 'tensorfloat32' (JAX's default on NVIDIA GPUs); on a CPU
both compute the same numbers. scripts/gpu_check.sh runs it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

if __package__ in (None, ''):
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def measure(config, workdir: str, n: int, task: str, methods: tuple[str, ...], precisions: list[str],
            log=print) -> dict:
  """{precision: {method: psnr, ssim, solve and compile seconds, max |x - x at the first precision|}}."""
  import numpy as np
  from ge_jax import data, experiment, pretrain, solver
  params = pretrain.load_trained(config, workdir)
  clean = data.load(config.data).test[:n]
  out, first = {}, None
  for precision in precisions:
    plan = dataclasses.replace(solver.ExecutionPlan.auto(), matmul_precision=precision)
    res = experiment.restore(config, params, task=task, clean=clean, methods=methods, progress=False, plan=plan)
    scores = experiment.score(res)
    first = first or res
    out[precision] = dict(
        solve_seconds=res.solve_seconds, compile_seconds=res.compile_seconds,
        methods={m: dict(psnr_mean=scores['methods'][m]['psnr_mean'], ssim_mean=scores['methods'][m]['ssim_mean'],
                         max_abs_diff_vs_first=float(np.nanmax(np.abs(res.recon[m] - first.recon[m]))))
                 for m in res.recon})
    _report(precisions[0], precision, out[precision], len(clean), log)
  return dict(task=task, n_images=int(len(clean)), precisions=out)


def _report(first: str, precision: str, r: dict, n: int, log) -> None:
  for m, e in r['methods'].items():
    log(f'{precision:>14} {m:>5}: PSNR {e["psnr_mean"]:.3f} dB, SSIM {e["ssim_mean"]:.4f}, '
        f'max |diff| vs {first} {e["max_abs_diff_vs_first"]:.2e}')
  log(f'{precision:>14} solve {r["solve_seconds"]:.2f} s (+ compile {r["compile_seconds"]:.1f} s), '
      f'{len(r["methods"])} methods x {n} images', flush=True)


def main(argv=None) -> int:
  from benchmarks.solver_throughput import load_config
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--config', default='configs/mnist.py')
  ap.add_argument('--workdir', required=True, help='a trained workdir (train.py)')
  ap.add_argument('--data_source', default=None, help='override config.data.source (e.g. builtin, offline)')
  ap.add_argument('--n', type=int, default=500)
  ap.add_argument('--task', default='denoise')
  ap.add_argument('--methods', default='ge,gan')
  ap.add_argument('--precisions', default='highest,tensorfloat32')
  ap.add_argument('--json', default=None)
  a = ap.parse_args(argv)
  from ge_jax import cli
  cli.setup_jax()
  config = load_config(a.config)
  if a.data_source:
    config.data.source = a.data_source
  res = measure(config, a.workdir, a.n, a.task, tuple(a.methods.split(',')), a.precisions.split(','))
  import jax
  res['device'] = jax.devices()[0].device_kind
  if a.json:
    from ge_jax import fileio
    fileio.write_json(a.json, res)
  return 0


if __name__ == '__main__':
  sys.exit(main())
