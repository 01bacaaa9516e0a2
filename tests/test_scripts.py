"""scripts/ that make committed pictures, on the tiny trained workdir."""

from PIL import Image

from conftest import run_cli


def test_data_vs_g_picture(tiny_workdir, tmp_path):
  out = tmp_path / 'dvg.png'
  proc = run_cli('scripts/data_vs_G.py', '--config=configs/mnist_tiny.py', f'--workdir={tiny_workdir}', f'--out={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  img = Image.open(out)
  assert img.size == (8 * 30, 6 * 30 + 12) and img.mode == 'RGB'
  rows = img.getextrema()
  assert rows[0][0] < rows[0][1]  # not one flat colour
