"""The device-tool scripts (scripts/gpu_*.sh, scripts/carry_run.sh) and the benchmarks' GPU-proof pieces,
checked on the CPU: what they copy, that a carried run restores, and (slow) their --smoke runs."""

import os
import subprocess

import pytest

from conftest import ROOT, run_cli


def _bash(*args, timeout=600):
  return subprocess.run(['bash', *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_carry_run_copies_the_newest_steps_and_the_copy_restores(tiny_workdir, tmp_path):
  dest = tmp_path / 'carried'
  proc = _bash('scripts/carry_run.sh', tiny_workdir, str(dest))
  assert proc.returncode == 0, proc.stderr
  for phase in ('gan', 'ae'):
    steps = sorted(int(s) for s in os.listdir(os.path.join(tiny_workdir, phase, 'checkpoints')) if s.isdigit())
    assert len(steps) > 1  # else the test would not show that only the newest travels
    assert os.listdir(dest / phase / 'checkpoints') == [str(steps[-1])]
  assert not (dest / 'gan' / 'log.jsonl').exists()  # logs and samples stay behind
  out = tmp_path / 'solve'
  proc = run_cli('solve.py', '--config=configs/mnist_tiny.py', f'--workdir={dest}', f'--outdir={out}', '--batch',
                 '--n=4', '--task=denoise', '--methods=ae,ge', '--noprogress')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (out / 'metrics.json').exists()


def test_carry_run_says_in_one_line_when_there_is_nothing_to_carry(tmp_path):
  for run, why in ((tmp_path / 'missing', 'no run folder'), (tmp_path, 'has no checkpoints')):
    proc = _bash('scripts/carry_run.sh', str(run), str(tmp_path / 'dest'))
    assert proc.returncode == 2 and why in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_cost_flops_counts_convolutions_before_compilation():
  """On a GPU the compiled convolutions are cuDNN custom calls that XLA's cost analysis skips; the
  count must come from the HLO before compilation and equal the analytic convolution FLOPs."""
  import jax
  import jax.numpy as jnp
  from benchmarks import _common
  b, h, w, cin, cout, k = 2, 16, 16, 3, 8, 3
  x, kern = jnp.ones((b, h, w, cin)), jnp.ones((k, k, cin, cout))
  conv = lambda x, kern: jax.lax.conv_general_dilated(x, kern, (1, 1), 'VALID',
                                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  outputs = b * (h - k + 1) * (w - k + 1) * cout
  assert _common.cost_flops(jax.jit(conv).lower(x, kern)) == pytest.approx(2 * outputs * cin * k * k, rel=0.01)


def test_the_pytorch_peer_is_pinned_to_the_solvers_precision():
  torch = pytest.importorskip('torch')
  from benchmarks import peer_pytorch as pt
  before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
  try:
    assert pt.set_fp32_precision(True) == 'float32'
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert pt.set_fp32_precision(False) == 'tf32'
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
  finally:
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.slow
@pytest.mark.parametrize('script', ['gpu_check.sh', 'gpu_eval.sh', 'gpu_bench64.sh'])
def test_gpu_script_smoke_runs_every_step(script, tmp_path):
  proc = _bash(f'scripts/{script}', '--smoke', str(tmp_path), timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  summary = proc.stdout[proc.stdout.index('=== summary'):].splitlines()[1:]
  steps = [l for l in summary if ': ' in l and not l.startswith('output')]
  assert len(steps) >= 3 and all(': exit 0 in' in l for l in steps), proc.stdout[-3000:]
