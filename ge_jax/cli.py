"""What the CLIs share: config and flag checks, the compilation cache, multi-host start, the default
workdir, output folders that are replaced whole, and clean exits (one line, a status, no traceback)."""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import shutil
import sys
import tempfile

import jax
from absl import app, flags
from absl import logging as absl_logging

from ge_jax import config_check, interrupts, parallel
from ge_jax.errors import Interrupted, UserError

# Flags whose empty value means something ('' = no lambda sweep); any other flag given empty is an error.
EMPTY_OK = ('sweep_task',)
# Integer flags of the CLIs and their smallest meaningful value (a smaller one is an error, never a default).
INT_FLAG_MIN = {'n': 1, 'sweep_n': 1, 'record_every': 0}


class _QuietTfds(logging.Filter):
  """TFDS warns about an unprepared dataset folder on every probe; data.load() says it better."""

  def filter(self, record):
    return 'has no dataset_info.json' not in record.getMessage()


def setup_jax(multihost: bool | None = None, cpu_devices: int | str = 'auto') -> None:
  """Quiet library logs; persistent compilation cache; CPU devices; joins a multi-host run when asked.

  Args:
    multihost: the --multihost flag: True joins a multi-process run (`parallel.initialize`), False
      never does, None (flag not given) does when the environment asks (GE_JAX_MULTIHOST=1 or
      JAX_COORDINATOR_ADDRESS set). Must run before anything touches devices.
    cpu_devices: `parallel.split_cpu`'s count: 'auto' (one CPU device per core, for solving) or 1
      (training). XLA_FLAGS with --xla_force_host_platform_device_count overrides it.
  """
  absl_logging.set_verbosity(absl_logging.WARNING)
  absl_logging.get_absl_logger().addFilter(_QuietTfds())
  enable_compilation_cache()
  parallel.split_cpu(cpu_devices)
  if parallel.initialize(multihost):
    print(f'multi-host: {parallel.describe()}', flush=True)


def enable_compilation_cache() -> None:
  """XLA's persistent compilation cache in $GE_JAX_CACHE (default ~/.cache/ge-jax/xla; '' turns it off)."""
  cache = os.environ.get('GE_JAX_CACHE', os.path.expanduser('~/.cache/ge-jax/xla'))
  if cache:
    jax.config.update('jax_compilation_cache_dir', cache)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.2)
    jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def start(argv: list[str], config, workdir: str | None, multihost: bool | None = False,
          cpu_devices: int | str = 'auto', methods=None) -> str:
  """The common opening of every CLI's main: no stray arguments, JAX set up, the whole config
  validated (before any work); returns the workdir. `methods`: the solver methods the run uses."""
  if len(argv) > 1:
    raise UserError(f'unexpected argument(s) {" ".join(argv[1:])}; every option is a flag, e.g. --workdir=runs/x '
                    '(see --help).')
  setup_jax(multihost, cpu_devices)  # first: validation may touch devices, after which XLA's CPU split is fixed
  validate_config(config, methods)
  workdir = workdir or default_workdir(config)
  check_workdir(workdir)
  return workdir


def check_workdir(path: str) -> None:
  """A --workdir must be a folder or not exist yet, and not lie under a file."""
  _existing_folder_above(path, '--workdir')


def _existing_folder_above(path: str, flag: str) -> str:
  """The nearest existing folder at or above `path`; one sentence if `path` is or lies under a file."""
  full = os.path.abspath(path)
  if os.path.exists(full) and not os.path.isdir(full):
    raise UserError(f'{flag} {path} is a file, not a folder; pick another {flag}.')
  existing = full
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise UserError(f'{flag} {path} lies under {existing}, which is a file, not a folder; pick another {flag}.')
  return existing


def base_config():
  """The config that defines which keys exist (config files may change values, not add keys)."""
  for name in ('configs.base', 'configs.mnist'):
    try:
      return importlib.import_module(name).get_config()
    except ModuleNotFoundError as e:
      if e.name not in (name, 'configs'):
        raise
  return None


def validate_config(config, methods=None) -> None:
  """config_check.validate against `base_config()` (the config itself when that is not importable)."""
  base = base_config()
  if base is None:
    base = config
  config_check.validate(config, base, methods=tuple(methods) if methods else config_check.METHODS)


def default_workdir(config) -> str:
  """runs/<config.name>: the same for train.py and solve.py, so they find each other."""
  return os.path.join('runs', config.name)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, but a bad flag or config override is one sentence and exit 2."""
  try:
    rest = flags.FLAGS(argv)
    if 'config' in flags.FLAGS:
      flags.FLAGS.config.get('name')  # config files load lazily: surface a load error here
    _check_empty_flags(flags.FLAGS)
    return rest
  except OSError as e:
    path = next((a.split('=', 1)[1] for a in argv if a.startswith('--config=')), '?')
    print(f'error: cannot load the config file {path!r} ({str(e).splitlines()[-1].strip()}); '
          'pass an existing file, e.g. --config=configs/mnist.py.', file=sys.stderr)
    sys.exit(2)
  except (SyntaxError, ImportError, NameError, ArithmeticError, RuntimeError, AssertionError) as e:
    # the config file is not valid Python, or its get_config() fails
    path = next((a.split('=', 1)[1] for a in argv if a.startswith('--config=')), '?')
    where = f' line {e.lineno}' if getattr(e, 'lineno', None) else ''
    print(f'error: the config file {path!r} does not load ({type(e).__name__}{where}: '
          f'{" ".join(str(e).split())[:150]}); it must define get_config() returning a ConfigDict.', file=sys.stderr)
    sys.exit(2)
  except flags.Error as e:
    msg = str(e)
  except (KeyError, AttributeError, TypeError, ValueError) as e:
    while e.args and isinstance(e.args[0], Exception):
      e = e.args[0]
    msg = (e.args[0] if e.args and isinstance(e.args[0], str) else str(e)).strip('"\'')
    msg = ' '.join(msg.replace("'", '').split())
  bad = [a.split('=')[0] for a in argv[1:] if a.startswith('--config.')]
  hint = f' (overrides given: {", ".join(bad)})' if bad else ''
  print(f'error: bad command-line flag or config override: {msg}{hint}. '
        'Config keys are the fields of the --config file, e.g. --config.gan.steps=200.', file=sys.stderr)
  sys.exit(2)


def _check_empty_flags(flag_values) -> None:
  """`--n=` or `--input=` given empty must not silently mean the default."""
  for name in flag_values:
    flag = flag_values[name]
    if name.startswith('config.') or name in EMPTY_OK or not flag.present:
      continue
    if flag.value in ('', []) or (isinstance(flag.value, str) and not flag.value.strip()):
      print(f'error: --{name} was given an empty value; give a value or leave the flag out.', file=sys.stderr)
      sys.exit(2)
    low = INT_FLAG_MIN.get(name)
    if low is not None and isinstance(flag.value, int) and flag.value < low:
      print(f'error: --{name}={flag.value} must be at least {low}.', file=sys.stderr)
      sys.exit(2)


def exit_on_user_error(main):
  """Runs `main`: a UserError is one line on stderr and exit status 2, Ctrl-C one line and 130."""

  @functools.wraps(main)
  def wrapped(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except UserError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
    except Interrupted as e:
      print(f'interrupted: {e}', file=sys.stderr)
      sys.exit(interrupts.EXIT_STATUS)
    except KeyboardInterrupt:
      print('interrupted: stopped before finishing; files already complete (checkpoints, results) are kept '
            'and nothing half-written is left.', file=sys.stderr)
      sys.exit(interrupts.EXIT_STATUS)
    except OSError as e:  # disk full, permissions, a path that vanished: the system's own sentence
      where = f' ({e.filename})' if getattr(e, 'filename', None) else ''
      print(f'error: {e.strerror or e}{where}; check the path, its permissions and the free space.',
            file=sys.stderr)
      sys.exit(1)

  return wrapped


def run(main) -> None:
  """`app.run(main)` for a CLI: Ctrl-C handling, flag checks, and a quiet exit after an error.

  After an error or Ctrl-C the process ends without running exit handlers (after flushing), so
  library threads that are shutting down (Orbax, TFDS) cannot print pages after the one line.
  """
  interrupts.install()
  try:
    app.run(main, flags_parser=parse_flags)
  except SystemExit as e:
    code = e.code
    if code not in (None, 0):
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(code if isinstance(code, int) else 1)
    raise


# --- output folders -------------------------------------------------------------------------------


def check_outdir(path: str, overwrite: bool, marker: str, carry: tuple[str, ...] = ()) -> None:
  """Before any work: `path` can be made a results folder (see `output_folder`), else UserError.

  Args:
    path: the --outdir.
    overwrite: the --overwrite flag.
    marker: the file whose presence means the folder holds results (metrics.json, results.json).
    carry: entries (folders or files) of an old folder that are kept (moved into the new one), e.g.
      'variants'.
  """
  if not path or not str(path).strip():
    raise UserError('--outdir is empty; give a folder for the results.')
  full = os.path.abspath(path)
  existing = _existing_folder_above(path, '--outdir')
  parent = existing if existing != full else os.path.dirname(full)
  try:  # a real write (os.access says yes to root on a read-only file system); nothing is left behind
    os.rmdir(tempfile.mkdtemp(prefix='.ge_jax_write_test-', dir=parent))
  except OSError as e:
    raise UserError(f'cannot write results under {parent} ({e.strerror}); pick another --outdir.') from None
  if os.path.isdir(full):
    if os.path.exists(os.path.join(full, marker)):
      if not overwrite:
        raise UserError(f'{path} already holds results; pass --overwrite to replace them or pick another --outdir.')
    else:
      others = sorted(set(os.listdir(full)) - set(carry))
      if others:
        raise UserError(f'--outdir {path} already holds other files ({", ".join(others[:3])}'
                        f'{", ..." if len(others) > 3 else ""}) and no results; pick a new or empty folder.')


@contextlib.contextmanager
def output_folder(path: str, overwrite: bool, marker: str, carry: tuple[str, ...] = (),
                  keep_as: tuple[tuple[str, str], ...] = ()):
  """Yields a fresh folder to write the results into; on success it becomes `path` as a whole.

  The results are written next to `path` (`<name>.partial-*`), then `path` is replaced by them
  with renames, so a reader never sees two runs' files mixed (stale figures of an older run) or a
  half-written set. An old results folder is replaced only with `overwrite`; its `carry` entries
  (e.g. other runs kept in a subfolder) move into the new one, and each file `old` of `keep_as`
  ((old, new) name pairs, e.g. a hand-written NOTE.md) is kept under its `new` name: never lost,
  never shown as if written for the new results. On failure the partial folder is removed when
  empty and kept otherwise.
  """
  check_outdir(path, overwrite, marker, carry)
  full = os.path.abspath(path)
  parent, name = os.path.split(full)
  try:
    os.makedirs(parent, exist_ok=True)
    stage_root = tempfile.mkdtemp(prefix=f'{name}.partial-', dir=parent)
  except OSError as e:
    raise UserError(f'cannot create a folder in {parent} ({e.strerror}); pick another --outdir.') from None
  stage = os.path.join(stage_root, name)
  os.mkdir(stage)
  for entry in carry:  # visible while the run writes (e.g. listed in its report); hard links, no copy
    src = os.path.join(full, entry)
    if os.path.isdir(src):
      shutil.copytree(src, os.path.join(stage, entry), copy_function=os.link)
    elif os.path.isfile(src):  # a file another tool wrote here (e.g. the figures of python -m ge_jax.latent_pictures)
      os.link(src, os.path.join(stage, entry))
  kept = []
  for old_name, new_name in keep_as:
    src = os.path.join(full, old_name)
    if os.path.isfile(src):
      os.link(src, os.path.join(stage, new_name))
      kept.append((old_name, new_name))
  try:
    yield stage
  except BaseException:
    for entry in carry:
      shutil.rmtree(os.path.join(stage, entry), ignore_errors=True)
      with contextlib.suppress(OSError):
        os.remove(os.path.join(stage, entry))
    for _, new_name in kept:
      with contextlib.suppress(OSError):
        os.remove(os.path.join(stage, new_name))
    if not os.listdir(stage):
      shutil.rmtree(stage_root, ignore_errors=True)
    raise
  old = os.path.join(stage_root, name + '.old')
  with interrupts.deferred():  # a Ctrl-C between the two renames would leave no folder under `path`
    if os.path.exists(full):
      os.rename(full, old)
    os.rename(stage, full)
  shutil.rmtree(stage_root, ignore_errors=True)
  for old_name, new_name in kept:
    print(f'note: the old {old_name} was written for the replaced results; it is kept as '
          f'{os.path.join(path, new_name)} (update it, then rename it back to {old_name}).')
