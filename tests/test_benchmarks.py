"""Smoke tests of the benchmarks on mnist_tiny: they run, write the keys they promise, and the PyTorch
peer computes the same networks (no timing assertions: timings belong to benchmarks/RESULTS.md)."""

import importlib.util
import json

import jax
import pytest

from benchmarks import solver_throughput as st
from configs import mnist_tiny
from ge_jax import models

HAS_TORCH = importlib.util.find_spec('torch') is not None
TINY = dict(config='configs/mnist_tiny.py', steps=2, restarts=2, batch_sizes=(4,), headline_batch=4, reps=1,
            loop_images=2, torch_loop_images=1, memory_batch=0, cache_check=False, matmul_n=256, layers=False,
            compare_impls=False)


def test_solver_benchmark_writes_its_keys(tmp_path):
  res = st.run(st.Options(torch=HAS_TORCH, **TINY), log=lambda *a: None)
  path = tmp_path / 'solver.json'
  path.write_text(json.dumps(res))
  res = json.loads(path.read_text())
  assert res['machine']['cpu_count'] >= 1 and res['machine']['jax']
  keys = ['flops_fraction_batch256', 'matmul_flops_per_s', 'flops_per_solver_step_per_image', 'compile_s_batch256']
  if HAS_TORCH:
    keys += ['speedup_vs_pytorch_batched', 'speedup_vs_pytorch_per_image']
  for k in keys:
    assert res[k] > 0, k
  methods = {r['method'] for r in res['rows']}
  assert {'jax batched', 'jax one-image loop'} <= methods
  assert all(r['images_per_s'] > 0 for r in res['rows'])
  # One step's FLOPs (cost analysis) scale with the batch: per image the same at batch 1 and 4.
  assert res['flops_per_solver_step_batch1'] == pytest.approx(res['flops_per_solver_step_per_image'], rel=0.05)
  if HAS_TORCH:
    assert max(res['torch_conversion_max_abs_err'].values()) < 1e-4
    # The peer starts from the solver's own z0 (jax_initial_z) and takes the same Adam steps.
    assert res['torch_same_steps']['max_relative_gap'] < 1e-3


@pytest.mark.skipif(not HAS_TORCH, reason='torch is an optional benchmark dependency')
@pytest.mark.parametrize('g_final,g_norm,g_upsample', [('conv', 'none', 'subpixel'), ('subpixel', 'pixel', 'subpixel'),
                                                      ('conv', 'none', 'resize')])
def test_torch_peer_loads_the_same_networks(g_final, g_norm, g_upsample):
  from benchmarks import peer_pytorch as pt
  cfg = mnist_tiny.get_config()
  cfg.model.g_final, cfg.model.g_norm, cfg.model.g_upsample = g_final, g_norm, g_upsample
  params = jax.jit(lambda k: models.init_params(cfg, k))(jax.random.key(0))
  errs = pt.check_conversion(cfg, params, pt.build(cfg, params))
  assert set(errs) == {'G', 'E', 'Dec', 'D'}
  assert max(errs.values()) < 1e-4, errs


def test_solver_plan_follows_the_precision_option():
  from ge_jax import solver
  assert st.solver_plan(st.Options(**TINY)) == solver.ExecutionPlan.auto()
  plan = st.solver_plan(st.Options(matmul_precision='tensorfloat32', **TINY))
  assert plan.matmul_precision == 'tensorfloat32' and plan.piece_rows == solver.ExecutionPlan.auto().piece_rows


@pytest.mark.slow  # compiles one solver per variant
def test_compare_impls_times_every_variant():
  cfg = st.load_config('configs/mnist_tiny.py')
  rows = st.compare_impls(cfg, st.Options(**TINY), 4, rounds=1)
  methods = [r['method'] for r in rows]
  assert len(methods) == len(set(methods)) >= len(models.CONV_IMPLS) + 2
  assert all(r['images_per_s'] > 0 for r in rows)
