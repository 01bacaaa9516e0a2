"""pyproject.toml states ranges that admit requirements.txt's exact pins, and `pip install` keeps a newer JAX.

A user's JAX (a Colab TPU runtime, a jax[cuda12] build) must survive `pip install ge-jax`: the ranges
start at the tested pins, have no upper bound without a reason, and leave jaxlib to jax.
"""

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_TOOLS = {'pytest', 'nbformat', 'nbclient', 'ipykernel'}
# Pinned in requirements.txt for CI, not declared in pyproject.toml: the declared package that brings it.
PINNED_ONLY = {'jaxlib': 'jax'}
# Packages that make up a user's JAX install; none of them may be declared besides jax itself.
JAX_BUILD = {'jaxlib', 'libtpu', 'libtpu-nightly', 'jax-cuda12-plugin', 'jax-cuda12-pjrt',
             'jax-cuda13-plugin', 'jax-cuda13-pjrt', 'jax-rocm7-plugin', 'jax-rocm7-pjrt'}


def _pins() -> dict[str, Version]:
  """requirements.txt as {canonical name: pinned version}; every line is an exact pin."""
  pins = {}
  with open(os.path.join(ROOT, 'requirements.txt')) as f:
    for line in f:
      if line.strip() and not line.startswith('#'):
        req = Requirement(line.strip())
        (spec,) = req.specifier  # exactly one specifier ...
        assert spec.operator == '==' and not req.marker and not req.extras, line  # ... an exact pin
        pins[canonicalize_name(req.name)] = Version(spec.version)
  return pins


def _project() -> dict:
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    return tomllib.load(f)['project']


def _declared() -> tuple[list[Requirement], list[Requirement]]:
  project = _project()
  return ([Requirement(r) for r in project['dependencies']],
          [Requirement(r) for r in project['optional-dependencies']['test']])


def _names(reqs) -> set[str]:
  return {canonicalize_name(r.name) for r in reqs}


def test_every_pin_lies_in_its_range_at_the_lower_bound():
  pins = _pins()
  runtime, test = _declared()
  wrong = []
  for req in runtime + test:
    pin = pins.get(canonicalize_name(req.name))
    lower = [Version(s.version) for s in req.specifier if s.operator == '>=']
    if pin is None or pin not in req.specifier or lower != [pin]:
      wrong.append(f'{req} (requirements.txt: {pin})')
  assert not wrong, f'ranges that do not start at (or admit) the pin: {wrong}'


def test_the_pins_and_the_declared_packages_are_the_same():
  pins = _pins()
  runtime, test = _declared()
  assert len(_names(runtime)) == len(runtime) and len(_names(test)) == len(test)  # no duplicates
  assert not _names(runtime) & _names(test)
  assert _names(test) == TEST_TOOLS  # the tools only in the extra, the extra only tools
  assert set(pins) == _names(runtime) | _names(test) | set(PINNED_ONLY)
  for name, parent in PINNED_ONLY.items():
    assert name not in _names(runtime + test) and parent in _names(runtime)
    # The parent requires it, and the pins of both agree with each other.
    if Version(importlib.metadata.version(parent)) == pins[parent]:
      wants = [Requirement(r) for r in importlib.metadata.requires(parent)]
      wants = [r for r in wants if canonicalize_name(r.name) == name and not r.marker]
      assert wants and all(pins[name] in r.specifier for r in wants), wants


def test_no_upper_bound_without_a_reason():
  # Anything but '>=' (an upper bound, an exclusion, a pin) needs a comment on its line saying why.
  with open(os.path.join(ROOT, 'pyproject.toml')) as f:
    lines = f.read().splitlines()
  runtime, test = _declared()
  project = _project()
  for text, req in zip(project['dependencies'] + project['optional-dependencies']['test'], runtime + test):
    if any(s.operator != '>=' for s in req.specifier):
      line = next(l for l in lines if f'"{text}"' in l)
      assert '#' in line.split(f'"{text}"', 1)[1], f'{text}: say in a comment which release breaks ge-jax'


def test_a_newer_jax_is_admitted_and_its_build_left_to_jax():
  # What the resolver reads from the metadata: an installed newer jax satisfies the requirement, so pip
  # keeps it; no jaxlib/libtpu/plugin requirement of ours can pull a CPU jaxlib next to it.
  pin = _pins()['jax']
  (jax,) = [r for r in _declared()[0] if canonicalize_name(r.name) == 'jax']
  assert not jax.extras and not jax.marker, jax
  for newer in (f'{pin.major}.{pin.minor}.{pin.micro + 1}', f'{pin.major}.{pin.minor + 1}.0',
                f'{pin.major + 1}.0.0'):
    assert Version(newer) in jax.specifier, (jax, newer)
  runtime, test = _declared()
  assert not _names(runtime + test) & JAX_BUILD


# --- pip's own decision, in a throwaway venv that sees this environment and has a newer jax ----------


def _newer_jax() -> str:
  pin = _pins()['jax']
  return f'{pin.major}.{pin.minor + 1}.0'


def _venv_with_newer_jax(tmp_path) -> str:
  """A venv over this environment's packages where jax and jaxlib are one minor release newer.

  Installed as bare .dist-info folders in the venv's own site-packages, which come first on its path:
  to pip they are the installed jax and jaxlib (as a Colab TPU runtime's are), the older ones hidden.
  """
  venv.EnvBuilder(system_site_packages=True, with_pip=False).create(tmp_path / 'venv')
  python = str(tmp_path / 'venv' / 'bin' / 'python')
  site = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                        capture_output=True, text=True, check=True, env=_clean_env()).stdout.strip()
  v = _newer_jax()
  for name, requires in (('jax', [f'jaxlib<={v},>={v}', 'numpy>=2.0']), ('jaxlib', ['numpy>=2.0'])):
    info = os.path.join(site, f'{name}-{v}.dist-info')
    os.makedirs(info)
    with open(os.path.join(info, 'METADATA'), 'w') as f:
      f.write(f'Metadata-Version: 2.1\nName: {name}\nVersion: {v}\n')
      f.writelines(f'Requires-Dist: {r}\n' for r in requires)
    for file, text in (('INSTALLER', 'pip\n'), ('RECORD', '')):
      with open(os.path.join(info, file), 'w') as f:
        f.write(text)
  found = subprocess.run([python, '-c', 'import importlib.metadata as m; print(m.version("jax"))'],
                         capture_output=True, text=True, env=_clean_env()).stdout.strip()
  assert found == v, found
  return python


def _clean_env(keep_pip_config: bool = False) -> dict:
  """This environment without PYTHONPATH and, unless kept, without this machine's pip settings."""
  env = {k: v for k, v in os.environ.items()
         if k != 'PYTHONPATH' and (keep_pip_config or not k.startswith('PIP_'))}
  if not keep_pip_config:
    env['PIP_CONFIG_FILE'] = os.devnull  # no config file either (indexes, find-links, constraints)
  return dict(env, PIP_DISABLE_PIP_VERSION_CHECK='1')


def _wheel_of_metadata(folder) -> None:
  """ge-jax as a wheel holding only its metadata, written from pyproject.toml as setuptools does.

  (The slow test below builds the real metadata with setuptools; this one needs no build backend.)
  """
  project = _project()
  lines = ['Metadata-Version: 2.1', f'Name: {project["name"]}', f'Version: {project["version"]}',
           f'Requires-Python: {project["requires-python"]}']
  lines += [f'Requires-Dist: {r}' for r in project['dependencies']]
  for extra, reqs in project['optional-dependencies'].items():
    lines.append(f'Provides-Extra: {extra}')
    lines += [f'Requires-Dist: {r}; extra == "{extra}"' for r in reqs]
  info = f'ge_jax-{project["version"]}.dist-info'
  os.makedirs(folder)
  with zipfile.ZipFile(os.path.join(folder, f'ge_jax-{project["version"]}-py3-none-any.whl'), 'w') as z:
    z.writestr(f'{info}/METADATA', '\n'.join(lines) + '\n')
    z.writestr(f'{info}/WHEEL',
               'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n')
    z.writestr(f'{info}/RECORD', '')


def _source_copy(tmp_path) -> str:
  """What a build of ge-jax reads, copied: pip builds in the source folder (build/, *.egg-info)."""
  src = tmp_path / 'src'
  for name in ('ge_jax', 'configs'):
    shutil.copytree(os.path.join(ROOT, name), src / name, ignore=shutil.ignore_patterns('__pycache__'))
  for name in ('pyproject.toml', 'README.md'):
    shutil.copy(os.path.join(ROOT, name), src / name)
  return str(src)


def _dry_run(python: str, args: list[str], env: dict) -> tuple[set[str], subprocess.CompletedProcess]:
  """What `pip install` would install: {name==version}, from its --report."""
  proc = subprocess.run([python, '-m', 'pip', 'install', '--dry-run', '--quiet', '--report', '-', *args],
                        capture_output=True, text=True, env=env, timeout=600)
  if proc.returncode:
    return set(), proc
  report = json.loads(proc.stdout)
  return {f'{canonicalize_name(i["metadata"]["name"])}=={i["metadata"]["version"]}'
          for i in report['install']}, proc


def test_pip_install_ge_jax_keeps_a_newer_jax(tmp_path):
  # `pip install "ge-jax[test]"` offline, into the venv with the newer jax: pip installs ge-jax alone.
  # (With jax==<pin> it finds no way to satisfy it; with an index it would downgrade jax.)
  python = _venv_with_newer_jax(tmp_path)
  _wheel_of_metadata(tmp_path / 'wheels')
  install, proc = _dry_run(python, ['--no-index', '--find-links', str(tmp_path / 'wheels'), 'ge-jax[test]'],
                           _clean_env())
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert install == {f'ge-jax=={_project()["version"]}'}, install


@pytest.mark.slow
def test_pip_install_dot_keeps_a_newer_jax(tmp_path):
  # The real `pip install ".[test]"`, with the index that offers the pinned jax: setuptools (fetched by
  # build isolation) builds the metadata, and the resolver still installs no jax, jaxlib or plugin.
  python = _venv_with_newer_jax(tmp_path)
  install, proc = _dry_run(python, [_source_copy(tmp_path) + '[test]'], _clean_env(keep_pip_config=True))
  assert proc.returncode == 0, proc.stderr[-3000:]
  names = {i.split('==')[0] for i in install}
  assert 'ge-jax' in names and not names & (JAX_BUILD | {'jax'}), install


@pytest.mark.slow
def test_pip_installs_the_package(tmp_path):
  # --no-deps into a folder: nothing touches the environment running the tests.
  target = tmp_path / 'site'
  proc = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(target),
                         _source_copy(tmp_path)],
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  code = 'import ge_jax.api, configs.mnist; print(ge_jax.api.__file__)'
  out = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(target)))
  assert out.returncode == 0 and str(target) in out.stdout, out.stderr[-2000:]
