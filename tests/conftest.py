"""Shared fixtures: the tiny config, and one tiny trained workdir per test session."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tests compare numbers with float32 tolerances. GPUs multiply float32 matrices in TF32 by default
# (TPUs in one bf16 pass), which rounds inputs to 10 (7) mantissa bits: pin full precision, here and
# (through the environment JAX reads at import) in every CLI and child process a test starts. On CPU
# it changes nothing. The solver's own precision is its ExecutionPlan's (ge_jax/solver.py).
os.environ.setdefault('JAX_DEFAULT_MATMUL_PRECISION', 'highest')

# The tests' programs are tiny and run for moments, but XLA:CPU spends up to seconds in LLVM's
# optimisation passes on each one: without them a compile takes a fifth to a half of the time and
# the tiny runs are no slower. The optimisation level changes how XLA's code runs, not the maps it
# computes (a float sum may round differently). Set before JAX starts its backend, so that this process and every child inherit it;
# tests that give a child its own XLA_FLAGS add to `xla_flags()`.
OPT_FLAG = '--xla_backend_optimization_level=0'
if OPT_FLAG.split('=')[0] not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = f"{os.environ.get('XLA_FLAGS', '')} {OPT_FLAG}".strip()
import jax  # noqa: E402  (after the variable: a jax imported first still gets the setting below)

jax.config.update('jax_default_matmul_precision', os.environ['JAX_DEFAULT_MATMUL_PRECISION'])

# The CLIs' persistent compilation cache, here too: most of a test's time on CPU is XLA compiling, and
# many tests (and the CLIs they start) compile the same programs, which the cache then compiles once.
from ge_jax import cli  # noqa: E402

cli.enable_compilation_cache()


def xla_flags(*extra: str) -> str:
  """This session's XLA_FLAGS with `extra` added, for a child that needs flags of its own."""
  return ' '.join([os.environ.get('XLA_FLAGS', ''), *extra]).strip()


def run_cli(*args, timeout=300, env=None):
  """Runs `python <args>` from the repo root; returns the CompletedProcess (text)."""
  full_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
  return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                        env=full_env)


def error_line(proc):
  """The one 'error: ...' line of a CLI that failed cleanly (exit 2, no traceback)."""
  assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  lines = [l for l in proc.stderr.splitlines() if l.startswith('error: ')]
  assert len(lines) == 1, proc.stderr[-2000:]
  return lines[0]


@pytest.fixture
def tiny_config():
  from configs import mnist_tiny
  return mnist_tiny.get_config()


@pytest.fixture(scope='session')
def tiny_workdir(tmp_path_factory):
  """A workdir holding finished tiny GAN + AE checkpoints (trained once per session, in-process)."""
  from configs import mnist_tiny
  from ge_jax import pretrain
  workdir = str(tmp_path_factory.mktemp('tiny_run'))
  pretrain.train_and_evaluate(mnist_tiny.get_config(), workdir, progress=False)
  return workdir


def resolved(config, method: str, record_every: int = 0, code_only: bool = False):
  """(spec, lr, lam) of a latent method as a run resolves them (config, or its config.solve block)."""
  import types
  from ge_jax import methods
  cfg = config if 'solve' in config else types.SimpleNamespace(solve=config)
  task = methods.Task('compress' if code_only else 'denoise', code_only=code_only)
  s = methods.BY_NAME[method].settings(cfg, task, record_every)
  return s.spec, s.lr, s.lam
