"""ge_jax.evaluate on the tiny trained workdir: files, table, JSON, per-method overrides."""

import json
import os

import numpy as np

from conftest import run_cli


def test_evaluate_writes_table_json_and_figures(tiny_workdir, tiny_config, tmp_path):
  from ge_jax import evaluate
  out = tmp_path / 'res'
  r = evaluate.evaluate(tiny_config, tiny_workdir, str(out), split='test', n=6,
                        tasks=['denoise-0.3', 'compress'], record_every=5, sweep_task='denoise-0.3',
                        sweep_lams=[0.0, 0.1], sweep_n=4, command='test')
  for f in ('results.md', 'results.json', 'convergence.png', 'lambda_sweep.png', 'grid_denoise-0.3.png',
            'grid_compress.png'):
    assert os.path.getsize(out / f) > 0, f
  j = json.load(open(out / 'results.json'))
  assert j['n_images'] == 6 and j['split'] == 'test' and [t['task'] for t in j['tasks']] == ['denoise-0.3', 'compress']
  assert {'steps', 'restarts', 'lam_ge', 'lr_gan', 'prior', 'seed'} <= set(j['settings'])
  assert j['wall_seconds'] > 0 and r['lambda_sweep']['lams'] == [0.0, 0.1]
  den = j['tasks'][0]['methods']
  for m in ('corrupted', 'ae', 'gan', 'ge', 'csgm'):
    assert np.isfinite(den[m]['psnr_mean']) and {'psnr_se', 'ssim_mean', 'ssim_se'} <= set(den[m])
  assert 'gan' not in j['tasks'][1]['methods']  # compress: no image for GAN-only
  curves = j['tasks'][0]['curves']
  assert set(curves) == {'ge', 'gan'} and len(curves['ge']['objective']) == tiny_config.solve.steps
  assert len(curves['ge']['psnr']) == tiny_config.solve.steps // 5
  md = open(out / 'results.md').read()
  assert '**' in md and '| denoise-0.3 |' in md and 'GE − CSGM' in md and 'GE − GAN' in md and '## Settings' in md


def test_per_method_overrides(tiny_config):
  from ge_jax import evaluate, experiment
  c = tiny_config
  c.solve.lam_gan = 0.5
  c.solve.lam_ge = None  # unset: falls back to config.solve.lam
  assert experiment.method_setting(c.solve, 'lam', 'gan') == 0.5
  assert experiment.method_setting(c.solve, 'lam', 'ge') == c.solve.lam
  s = evaluate.settings(c)
  assert s['lam_gan'] == 0.5 and s['lam_ge'] == c.solve.lam and s['lr_ge'] == c.solve.lr


def test_task_config_sets_ops(tiny_config):
  from ge_jax import evaluate
  c, op = evaluate.task_config(tiny_config, 'superres-x4')
  assert op == 'superres' and c.ops.superres_factor == 4 and tiny_config.ops.superres_factor == 2


def test_cli_bad_task_is_one_line(tiny_workdir, tmp_path):
  proc = run_cli('-m', 'ge_jax.evaluate', '--config=configs/mnist_tiny.py', f'--workdir={tiny_workdir}',
                 f'--outdir={tmp_path}', '--tasks=nope')
  assert proc.returncode == 2 and 'unknown evaluation task' in proc.stderr
  assert 'Traceback' not in proc.stderr
