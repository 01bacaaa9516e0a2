"""scripts/ that make committed pictures, on the tiny trained workdir."""

from PIL import Image

from conftest import run_cli


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
  for module in ('ge_jax.classifier', 'ge_jax.latent_viz'):
    line = error_line(run_cli('-m', module, f'--workdir={tmp_path / "none"}'))
    assert 'train first' in line, (module, line)
