"""notebooks/colab_tpu.ipynb runs top to bottom: tiny config, 8 simulated CPU devices, a fresh kernel.

Its install step keeps the runtime's JAX: one `pip install` of ge-jax itself, no jax reinstall.
"""

import ast
import os

import nbformat
from nbclient import NotebookClient

from conftest import xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, 'notebooks', 'colab_tpu.ipynb')


def _outputs(nb, kind: str) -> list:
  return [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []) if kind in o.get('data', {})]


def _text(nb) -> str:
  parts = []
  for c in nb.cells:
    for o in c.get('outputs', []) if c.cell_type == 'code' else []:
      parts.append(o.get('text', '') if o.get('output_type') == 'stream' else o.get('data', {}).get('text/plain', ''))
  return '\n'.join(parts)


def test_the_install_cell_installs_ge_jax_alone():
  # pyproject.toml's ranges keep the runtime's jax; the notebook must not undo that (no jax[tpu]
  # reinstall, no requirements.txt pins, no --upgrade or --force-reinstall).
  nb = nbformat.read(NOTEBOOK, as_version=4)
  code = [c.source for c in nb.cells if c.cell_type == 'code']
  installs = [ast.unparse(node.args[0]) for node in ast.walk(ast.parse(code[0]))
              if isinstance(node, ast.Call) and ast.unparse(node.func) == 'subprocess.run']
  assert installs == ["[sys.executable, '-m', 'pip', 'install', '-q', f'git+{REPO_URL}']"], installs
  for source in code:
    assert not any(l.lstrip().startswith(('!', '%pip')) for l in source.splitlines()), source  # no shell installs
    # Not even as advice in a comment, nor in the text: nothing to reinstall.
    assert not any(w in source for w in ('jax[', 'requirements.txt', '--upgrade', '--force')), source
  assert sum("'install'" in source for source in code) == 1
  assert not any('jax[' in c.source for c in nb.cells)


def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
  # The kernel inherits this environment: 8 CPU devices like a TPU v2-8, a tiny short run.
  monkeypatch.setenv('XLA_FLAGS', xla_flags('--xla_force_host_platform_device_count=8'))
  monkeypatch.setenv('JAX_PLATFORMS', 'cpu')
  monkeypatch.setenv('PYTHONPATH', ROOT)
  monkeypatch.setenv('GE_JAX_NOTEBOOK_CONFIG', 'mnist_tiny')
  monkeypatch.setenv('GE_JAX_NOTEBOOK_WORKDIR', str(tmp_path / 'run'))
  monkeypatch.setenv('GE_JAX_NOTEBOOK_STEPS', '4')
  monkeypatch.setenv('GE_JAX_NOTEBOOK_N', '12')  # not a multiple of 8: padded to 16
  nb = nbformat.read(NOTEBOOK, as_version=4)
  assert 'REPO_URL = ' in next(c.source for c in nb.cells if c.cell_type == 'code')  # first code cell
  NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': ROOT}}).execute()

  text = _text(nb)
  assert 'ge-jax from ' + ROOT in text  # already importable: nothing installed
  assert not os.path.exists(os.path.join(ROOT, 'ge-jax'))
  assert '8 CPU device(s)' in text and 'lies on 8 device(s)' in text
  assert len(_outputs(nb, 'image/png')) == 3  # G's samples, AE reconstructions, the comparison grid
  table = '\n'.join(o['data']['text/markdown'] for o in _outputs(nb, 'text/markdown'))
  for method in ('ae', 'gan', 'ge', 'csgm'):
    assert f'| {method} |' in table
  run = tmp_path / 'run'
  for f in ('gan/samples.png', 'ae/reconstructions.png', 'solve/denoise/grid.png', 'solve/denoise/metrics.json'):
    assert (run / f).exists(), f
