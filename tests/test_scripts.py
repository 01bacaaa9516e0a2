"""scripts/ that make committed pictures, on the tiny trained workdir."""

import importlib.util
import json
import os
import types

import numpy as np
from PIL import Image

from conftest import ROOT, error_line, run_cli


def test_data_vs_g_picture(tiny_workdir, tmp_path):
  out = tmp_path / 'dvg.png'
  proc = run_cli('scripts/data_vs_G.py', '--config=configs/mnist_tiny.py', f'--workdir={tiny_workdir}', f'--out={out}',
                 '--fd=64')
  assert proc.returncode == 0, proc.stderr[-3000:]
  fd_line = [l for l in proc.stdout.splitlines() if l.startswith('random-CNN FD to 64 test images')]
  assert len(fd_line) == 1 and 'G samples' in fd_line[0] and 'validation images' in fd_line[0], proc.stdout
  img = Image.open(out)
  assert img.size == (8 * 30, 6 * 30 + 12) and img.mode == 'RGB'
  rows = img.getextrema()
  assert rows[0][0] < rows[0][1]  # not one flat colour


def test_classifier_and_latent_viz_clis_fail_in_one_line(tmp_path):
  from conftest import error_line
  for module in ('ge_jax.classify', 'ge_jax.latent_pictures'):
    line = error_line(run_cli('-m', module, f'--workdir={tmp_path / "none"}'))
    assert 'train first' in line, (module, line)
    assert not os.path.exists(tmp_path / 'none'), module  # nothing trained or written before the check


def _code_errors_module():
  spec = importlib.util.spec_from_file_location('code_errors', os.path.join(ROOT, 'scripts', 'code_errors.py'))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def test_code_error_statistics_on_a_known_encoder():
  """E = flatten: a corruption adding (0.3, 0, 0, 0) to every image has error 0.09 / 4 per value, all bias."""
  nets = types.SimpleNamespace(E=lambda p, x: x.reshape(x.shape[0], -1) * p)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(50, 2, 2, 1)).astype(np.float32)
  shift = np.zeros((1, 2, 2, 1), np.float32)
  shift[0, 0, 0, 0] = 0.3
  noisy = x + rng.normal(scale=0.1, size=x.shape).astype(np.float32)
  g_codes = rng.normal(scale=2.0, size=(4000, 4))
  s = _code_errors_module().code_errors(nets, {'autoencoder': np.float32(1.0)}, x,
                                          {'shift': x + shift, 'noise': noisy}, g_codes)
  assert np.isclose(s['shift']['err_per_value'], 0.09 / 4, rtol=1e-4)
  assert np.isclose(s['shift']['bias_share'], 1.0, rtol=1e-4) and np.isclose(s['shift']['top3_share'], 1.0)
  assert np.isclose(s['shift']['vs_G'], 0.09 / 4 / 4.0, rtol=0.1)
  assert np.isclose(s['noise']['err_per_value'], 0.01, rtol=0.2) and s['noise']['bias_share'] < 0.1


def test_code_errors_cli(tiny_workdir, tmp_path):
  out = tmp_path / 'errors.json'
  proc = run_cli('scripts/code_errors.py', '--config=configs/mnist_tiny.py', f'--workdir={tiny_workdir}', '--n=16',
                 '--tasks=denoise-0.6,superres-x4,compress', f'--json={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [l.split()[0] for l in proc.stdout.splitlines()[2:] if l.split() and l.split()[0] in
          ('denoise-0.6', 'superres-x4', 'compress')]
  assert rows == ['denoise-0.6', 'superres-x4'], proc.stdout  # compress: the solver is given E(x) itself
  stats = json.loads(out.read_text())
  assert stats['n'] == 16 and set(stats['tasks']) == {'denoise-0.6', 'superres-x4'}
  assert all(v['err_per_value'] > 0 for v in stats['tasks'].values())
  line = error_line(run_cli('scripts/code_errors.py', '--config=configs/mnist_tiny.py',
                            f'--workdir={tiny_workdir}', '--tasks=denoise,nope'))
  assert 'unknown task(s) denoise, nope' in line


def test_realism_probes(tiny_workdir):
  proc = run_cli('scripts/realism_probes.py', f'--workdir={tiny_workdir}', '--probe=chains', '--n=8',
                 '--tasks=deblur', '--chains=2', '--weights=1')
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [l for l in proc.stdout.splitlines() if l.startswith('deblur')]
  assert [l.split(':')[0].split(None, 1)[1].strip() for l in rows] == [
      'chain 0', 'max D of chains', 'min code residual', 'D-guided, w 1']
  for l in rows:
    psnr, fd = float(l.split('PSNR')[1].split()[0]), float(l.split('FD')[1])
    assert 0 < psnr < 60 and fd >= 0, l
  proc = run_cli('scripts/realism_probes.py', f'--workdir={tiny_workdir}', '--probe=radius', '--n=8')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert sum(': FD' in l for l in proc.stdout.splitlines()) == 6 and 'z ~ N(0, I)' in proc.stdout
  line = error_line(run_cli('scripts/realism_probes.py', f'--workdir={tiny_workdir}', '--probe=radius', '--n=1'))
  assert '--n=1' in line
