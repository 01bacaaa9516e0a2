"""pyproject.toml: the same pins as requirements.txt (runtime vs the test extra), and it installs."""

import os
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _requirements() -> set[str]:
  with open(os.path.join(ROOT, 'requirements.txt')) as f:
    return {l.strip() for l in f if l.strip() and not l.startswith('#')}


def test_pins_match_requirements():
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    project = tomllib.load(f)['project']
  runtime, test = set(project['dependencies']), set(project['optional-dependencies']['test'])
  assert runtime | test == _requirements() and not runtime & test
  assert all('==' in r for r in runtime | test)
  assert not {r.split('==')[0] for r in runtime} & {'pytest', 'nbformat', 'nbclient', 'ipykernel'}


@pytest.mark.slow
def test_pip_installs_the_package(tmp_path):
  # --no-deps into a folder: nothing touches the environment running the tests.
  target = tmp_path / 'site'
  proc = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(target), ROOT],
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  code = 'import ge_jax.api, configs.mnist; print(ge_jax.api.__file__)'
  out = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(target)))
  assert out.returncode == 0 and str(target) in out.stdout, out.stderr[-2000:]
