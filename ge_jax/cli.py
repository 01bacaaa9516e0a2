"""What both CLIs share: the compilation cache, multi-host start, the default workdir, clean error exits."""

from __future__ import annotations

import functools
import logging
import os
import sys

from ge_jax.errors import UserError


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
  from absl import logging as absl_logging
  absl_logging.set_verbosity(absl_logging.WARNING)
  absl_logging.get_absl_logger().addFilter(_QuietTfds())
  import jax
  cache = os.environ.get('GE_JAX_CACHE', os.path.expanduser('~/.cache/ge-jax/xla'))
  if cache:
    jax.config.update('jax_compilation_cache_dir', cache)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.2)
    jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  from ge_jax import parallel
  parallel.split_cpu(cpu_devices)
  if parallel.initialize(multihost):
    print(f'multi-host: {parallel.describe()}', flush=True)


def start(argv: list[str], config, workdir: str | None, multihost: bool | None = False,
          cpu_devices: int | str = 'auto') -> str:
  """The common opening of every CLI's main: no stray arguments, JAX set up; returns the workdir."""
  from absl import app
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  setup_jax(multihost, cpu_devices)
  return workdir or default_workdir(config)


def default_workdir(config) -> str:
  """runs/<config.name>: the same for train.py and solve.py, so they find each other."""
  return os.path.join('runs', config.name)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, but a bad flag or config override is one sentence and exit 2."""
  from absl import flags
  try:
    rest = flags.FLAGS(argv)
    if 'config' in flags.FLAGS:
      flags.FLAGS.config.get('name')  # config files load lazily: surface a load error here
    return rest
  except OSError as e:
    path = next((a.split('=', 1)[1] for a in argv if a.startswith('--config=')), '?')
    print(f'error: cannot load the config file {path!r} ({str(e).splitlines()[-1].strip()}); '
          'pass an existing file, e.g. --config=configs/mnist.py.', file=sys.stderr)
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


def exit_on_user_error(main):
  """Runs `main`; a UserError becomes one line on stderr and exit status 2 (no traceback)."""

  @functools.wraps(main)
  def wrapped(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except UserError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
    except KeyboardInterrupt:
      print('interrupted; the last checkpoint is kept and the same command resumes.', file=sys.stderr)
      sys.exit(130)

  return wrapped
