"""What the CLIs share: config file and flag checks, the compilation cache, multi-host start, the default
workdir, output folders that are replaced whole (the user's own files in them kept), and clean exits
(one line, a status, no traceback)."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import importlib
import importlib.machinery
import json
import logging
import os
import shutil
import sys
import tempfile
import traceback

import jax
import ml_collections
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from ge_jax import config_check, fileio, interrupts, parallel
from ge_jax.errors import Interrupted, UserError
from ge_jax.methods import ROWS

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
  """absl's flag parsing, but a bad flag, config file or config override is one sentence and exit 2."""
  try:
    for name, path in _config_files(argv):
      check_config_file(path, f'--{name}')  # before absl runs it: its failures are pages of traceback
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
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


def _config_files(argv: list[str]) -> list[tuple[str, str]]:
  """(flag name, path) of each config-file flag (config_flags.DEFINE_config_file): the last value
  given in `argv` (--config=X, --config X), else the flag's default."""
  out = []
  for name in list(flags.FLAGS):
    flag = flags.FLAGS[name]
    if not isinstance(getattr(flag, 'parser', None), config_flags.config_flags.ConfigFileFlagParser):
      continue
    path = None
    for i, a in enumerate(argv[1:], 1):
      key, eq, value = a.lstrip('-').partition('=')
      if a.startswith('-') and key == name:
        path = value if eq else (argv[i + 1] if i + 1 < len(argv) else None)
    if path is None:
      with contextlib.suppress(Exception):
        path = config_flags.get_config_filename(flag)
    if path is not None:
      out.append((name, path))
  return out


def check_config_file(spec: str, flag: str = '--config') -> None:
  """The config file `spec` ('path' or 'path:argument', as config_flags takes it) loads and its
  get_config() returns a ConfigDict; else UserError: one sentence naming the file, the line and the
  problem."""
  path, _, arg = spec.partition(':')
  if not path.strip():
    raise UserError(f'{flag} was given an empty value; give a config file, e.g. {flag}=configs/mnist.py.')
  if not os.path.exists(path):
    where = '' if os.path.isabs(path) else f' in {os.getcwd()}'
    raise UserError(f'cannot load the config file {path!r}: no such file{where}; pass an existing file, '
                    f'e.g. {flag}=configs/mnist.py.')
  if os.path.isdir(path):
    raise UserError(f'cannot load the config file {path!r}: it is a folder; pass a .py file in it, '
                    f'e.g. {flag}=configs/mnist.py.')
  name = '_ge_jax_config_check'
  try:
    try:
      module = importlib.machinery.SourceFileLoader(name, path).load_module()
    except SyntaxError as e:  # IndentationError, a non-UTF-8 file; or one the config file imports
      other = e.filename and os.path.abspath(e.filename) != os.path.abspath(path)
      where = f'{e.filename!r}, which it imports, line {e.lineno}' if other else f'line {e.lineno}'
      raise UserError(f'the config file {path!r} does not load: {where} is not valid Python '
                      f'({_one_line(e.msg)}).') from None
    except Exception as e:  # noqa: BLE001 - whatever the module's top level raises is the user's to fix
      raise UserError(_raised(path, e, 'loading it')) from None
    get_config = getattr(module, 'get_config', None)
    if not callable(get_config):
      raise UserError(f'the config file {path!r} does not load: it defines no get_config(); define one that '
                      'returns an ml_collections.ConfigDict (e.g. derived from configs/mnist.py get_config()).')
    try:
      config = get_config(*([arg] if arg else []))
    except Exception as e:  # noqa: BLE001
      raise UserError(_raised(path, e, 'get_config()', getattr(get_config, '__code__', None))) from None
  finally:
    sys.modules.pop(name, None)
  if not isinstance(config, ml_collections.ConfigDict):
    line = getattr(getattr(get_config, '__code__', None), 'co_firstlineno', '?')
    raise UserError(f'the config file {path!r} does not load: its get_config() (line {line}) returned '
                    f'{type(config).__name__} {_one_line(repr(config))[:60]}, not an ml_collections.ConfigDict; '
                    'return one (e.g. derived from configs/mnist.py get_config()).')


def _one_line(text: str) -> str:
  return ' '.join(str(text).split())


def _raised(path: str, e: BaseException, what: str, code=None) -> str:
  """'the config file X does not load: line N raises TypeError: ...' (N: the last line of the file in
  the traceback; the def of get_config when it was not reached, e.g. it takes arguments)."""
  line = None
  for frame in traceback.extract_tb(e.__traceback__):
    if os.path.abspath(frame.filename) == os.path.abspath(path):
      line = frame.lineno
  if line is None and code is not None:
    line = code.co_firstlineno
  where = f'line {line}' if line is not None else what
  msg = _one_line(e)
  msg = msg if len(msg) <= 200 else msg[:197] + '...'
  return (f'the config file {path!r} does not load: {where} raises {type(e).__name__}'
          f'{": " + msg if msg else ""}; fix it (get_config() must return an ml_collections.ConfigDict).')


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

# The record a results folder keeps of the files the tool wrote there (paths relative to the folder):
# an --overwrite replaces those and keeps every other file, whoever put it there.
MANIFEST = '.ge_jax_outputs.json'
# What solve.py writes (its marker: metrics.json), for folders written before manifests existed: file
# names (fnmatch patterns) and, ending in '/', folders (solve.py's per-method image folders).
SOLVE_OUTPUTS = ('metrics.json', 'reconstructions.npz', 'grid.png') + tuple(f'{m}/' for m in ROWS)
KNOWN_OUTPUTS = {'metrics.json': SOLVE_OUTPUTS}


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
  _check_writable(parent, f'cannot write results under {parent}', 'pick another --outdir')
  if os.path.isdir(full):
    if os.path.exists(os.path.join(full, marker)):
      if not overwrite:
        raise UserError(f'{path} already holds results; pass --overwrite to replace them or pick another --outdir.')
      # replacing means moving the user's files out of it and renaming it: both need write access
      _check_writable(full, f'cannot replace the results in {path}', 'pick another --outdir')
      if os.path.ismount(full):
        raise UserError(f'--outdir {path} is a mount point, and results are replaced by renaming their folder; '
                        'pick a folder inside it.')
    else:
      others = sorted(set(os.listdir(full)) - set(carry))
      if others:
        raise UserError(f'--outdir {path} already holds other files ({", ".join(others[:3])}'
                        f'{", ..." if len(others) > 3 else ""}) and no results; pick a new or empty folder.')


def _check_writable(folder: str, what: str, fix: str) -> None:
  """A real write (os.access says yes to root on a read-only file system); nothing is left behind."""
  try:
    os.rmdir(tempfile.mkdtemp(prefix='.ge_jax_write_test-', dir=folder))
  except OSError as e:
    raise UserError(f'{what} ({e.strerror}); {fix}.') from None


def files_under(folder: str, skip: tuple[str, ...] = ()) -> set[str]:
  """Every file (and symbolic link) under `folder`, as '/'-separated paths relative to it; top-level
  entries named in `skip` left out."""
  out = set()
  for d, dirs, files in os.walk(folder):
    rel = os.path.relpath(d, folder)
    if rel == '.':
      dirs[:] = [x for x in dirs if x not in skip]
      files = [f for f in files if f not in skip]
      rel = ''
    for name in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
      out.add(f'{rel}/{name}'.lstrip('/').replace(os.sep, '/'))
  return out


def _written(folder: str, marker: str, known) -> callable:
  """A test of 'the tool wrote this path' for an old results folder: its manifest when it has a
  readable one, else the known names (`known`, default KNOWN_OUTPUTS[marker])."""
  try:
    with open(os.path.join(folder, MANIFEST), encoding='utf-8') as f:
      listed = json.load(f)['written']
    if isinstance(listed, list) and all(isinstance(p, str) for p in listed):
      listed = set(listed) | {MANIFEST}
      return lambda rel: rel in listed
  except (OSError, ValueError, KeyError, TypeError):
    pass  # none, or damaged: the known names
  patterns = tuple(known if known is not None else KNOWN_OUTPUTS.get(marker, ())) + (marker, MANIFEST)

  def by_name(rel):
    top, _, rest = rel.partition('/')
    return any(fnmatch.fnmatchcase(top, p.rstrip('/')) and (p.endswith('/') == bool(rest)) for p in patterns)

  return by_name


def _user_entries(full: str, marker: str, carry, keep_as, known) -> list[str]:
  """The paths of an old results folder that no tool wrote: files (and links) by the test of
  `_written`, and empty folders; not `carry` entries nor `keep_as` files."""
  wrote = _written(full, marker, known)
  skip = tuple(carry) + tuple(old for old, _ in keep_as)
  mine = sorted(rel for rel in files_under(full, skip) if not wrote(rel))
  for d, dirs, files in os.walk(full):  # a user's empty folder is kept too
    rel = os.path.relpath(d, full).replace(os.sep, '/')
    if rel != '.' and not dirs and not files and rel.split('/')[0] not in skip and not wrote(rel + '/.'):
      mine.append(rel)
  return mine


def _free_name(stage: str, names) -> str:
  for name in names:
    if not os.path.lexists(os.path.join(stage, name)):
      return name
  raise AssertionError('unreachable')  # names is endless


def _alternatives(rel: str, first: str | None = None):
  """rel (or `first`), then rel.previous.ext, then rel.previous-2.ext, ...: names to keep a user's file
  under when the new results took its name."""
  root, ext = os.path.splitext(rel)
  if first is None:
    yield rel
    root = root + '.previous'
  else:
    root, ext = os.path.splitext(first)
  yield root + ext
  k = 2
  while True:
    yield f'{root}-{k}{ext}'
    k += 1


def _link_or_copy(src: str, dst: str) -> None:
  """A hard link (no copy), or a copy where the file system has none."""
  try:
    os.link(src, dst, follow_symlinks=False)
  except OSError:
    shutil.copy2(src, dst, follow_symlinks=False)


def _carry_into(src: str, dst: str) -> None:
  if os.path.islink(src):
    os.symlink(os.readlink(src), dst)
  elif os.path.isdir(src):
    shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
  elif os.path.exists(src):
    _link_or_copy(src, dst)


def record_outputs(folder: str, paths) -> None:
  """Adds `paths` (relative to `folder`) to its manifest, when it has one: files written into a
  results folder in place (python -m ge_jax.evaluate --update)."""
  path = os.path.join(folder, MANIFEST)
  try:
    with open(path, encoding='utf-8') as f:
      manifest = json.load(f)
    listed = set(manifest['written'])
  except (OSError, ValueError, KeyError, TypeError):
    return  # no manifest: the known names cover what the tools write
  fileio.write_json(path, dict(manifest, written=sorted(listed | set(paths))))


@contextlib.contextmanager
def output_folder(path: str, overwrite: bool, marker: str, carry: tuple[str, ...] = (),
                  keep_as: tuple[tuple[str, str], ...] = (), known: tuple[str, ...] | None = None):
  """Yields a fresh folder to write the results into; on success it becomes `path` as a whole.

  The results are written next to `path` (`<name>.partial-*`), then `path` is replaced by them
  with renames, so a reader never sees two runs' files mixed (stale figures of an older run) or a
  half-written set. An old results folder is replaced only with `overwrite`, and only what a run of
  the tool wrote there is dropped: the new folder's MANIFEST lists what this run wrote, and an
  old folder without one is judged by `known` (names and patterns of the tool's outputs, default
  KNOWN_OUTPUTS[marker]). Every other file of the old folder (the user's) is moved into the new
  one untouched (under another name, said in a note, where the new results took its name); the
  `carry` entries (e.g. other runs kept in a subfolder) are there while the run writes; each file
  `old` of `keep_as` ((old, new) name pairs, e.g. a hand-written NOTE.md) is kept under its `new`
  name: never lost, never shown as if written for the new results. On failure the old folder is
  untouched, and the partial folder is removed when empty and kept otherwise.
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
  carried = [e for e in carry if os.path.lexists(os.path.join(full, e))]
  try:
    for entry in carried:  # visible while the run writes (e.g. listed in its report); hard links, no copy
      _carry_into(os.path.join(full, entry), os.path.join(stage, entry))
    yield stage
  except BaseException:
    for entry in carried:
      shutil.rmtree(os.path.join(stage, entry), ignore_errors=True)
      with contextlib.suppress(OSError):
        os.remove(os.path.join(stage, entry))
    if not os.listdir(stage):
      shutil.rmtree(stage_root, ignore_errors=True)
    raise
  written = files_under(stage, tuple(carried) + (MANIFEST,))
  fileio.write_json(os.path.join(stage, MANIFEST), dict(
      written=sorted(written), about='the files ge_jax wrote here; --overwrite replaces these and keeps any other'))
  old = os.path.join(stage_root, name + '.old')
  kept, renamed, moved = [], [], []
  with interrupts.deferred():  # a Ctrl-C between the renames would leave no folder under `path`
    try:
      if os.path.isdir(full):
        plan = [(rel, _alternatives(rel)) for rel in _user_entries(full, marker, carry, keep_as, known)]
        plan += [(o, _alternatives(o, first=n)) for o, n in keep_as
                 if os.path.lexists(os.path.join(full, o)) and o not in carry]
        for rel, names in plan:  # the user's files go along, untouched
          dest = _free_name(stage, names)
          os.makedirs(os.path.dirname(os.path.join(stage, dest)), exist_ok=True)
          os.rename(os.path.join(full, rel), os.path.join(stage, dest))
          moved.append((rel, dest))
          (kept if rel == dest else renamed).append((rel, dest))
        os.rename(full, old)
      os.rename(stage, full)
    except BaseException:
      if os.path.isdir(old) and not os.path.lexists(full):
        os.rename(old, full)
      for rel, dest in reversed(moved):  # back where they were: the old folder as it was
        with contextlib.suppress(OSError):
          os.rename(os.path.join(stage, dest), os.path.join(full, rel))
      raise
  shutil.rmtree(stage_root, ignore_errors=True)
  if kept:
    print(f'note: kept {len(kept)} file(s) in {path} that no run of this tool wrote: '
          f'{", ".join(r for r, _ in kept[:5])}{", ..." if len(kept) > 5 else ""}.')
  notes = dict(keep_as)
  for rel, dest in renamed:
    if rel in notes:
      print(f'note: the old {rel} was written for the replaced results; it is kept as '
            f'{os.path.join(path, dest)} (update it, then rename it back to {rel}).')
    else:
      print(f'note: the new results took the name {rel}; your file of that name is kept as '
            f'{os.path.join(path, dest)}.')
