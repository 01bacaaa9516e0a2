"""Helpers shared by the benchmarks: machine description, timing, the matmul ceiling, FLOP counts."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine() -> dict[str, Any]:
  """What ran the benchmark: CPU, cores, load, library versions, JAX devices."""
  import jax
  import jaxlib
  cpu = platform.processor()
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next((l.split(':', 1)[1].strip() for l in f if l.startswith('model name')), cpu)
  except OSError:
    pass
  info = dict(
      platform=platform.platform(), python=platform.python_version(), cpu=cpu, cpu_count=os.cpu_count(),
      cpus_usable=len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(),
      loadavg_1m_at_start=os.getloadavg()[0] if hasattr(os, 'getloadavg') else None,
      jax=jax.__version__, jaxlib=jaxlib.__version__, backend=jax.default_backend(),
      devices=[str(d) for d in jax.devices()], device_kind=jax.devices()[0].device_kind,
      xla_flags=os.environ.get('XLA_FLAGS', ''))
  try:
    import flax
    info['flax'] = flax.__version__
  except ImportError:
    pass
  return info


def block(x):
  import jax
  return jax.block_until_ready(x)


def best_time(fn: Callable[[], Any], reps: int, warmup: int = 1) -> float:
  """Best wall time of `reps` calls of fn() (each blocked on), after `warmup` calls."""
  for _ in range(warmup):
    block(fn())
  best = float('inf')
  for _ in range(reps):
    t0 = time.perf_counter()
    block(fn())
    best = min(best, time.perf_counter() - t0)
  return best


def matmul_flops(n: int = 2048, reps: int = 10) -> float:
  """FLOP/s of the best of `reps` jitted float32 (n, n) @ (n, n) products on the default device."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  f = jax.jit(jnp.matmul).lower(a, b).compile()
  return 2.0 * n**3 / best_time(lambda: f(a, b), reps, warmup=2)


def cost_flops(lowered) -> float:
  """FLOPs of a lowered (not yet compiled) XLA computation from its cost analysis (loop bodies counted once).

  The analysis of the HLO before compilation: after it, a GPU's convolutions are cuDNN custom calls
  that the cost analysis does not count (an H200 run reported 4.9e6 FLOP per rock64 solver step, the
  dense layers alone, against 6.3e8 counted here on any backend).
  """
  ca = lowered.cost_analysis()
  if isinstance(ca, (list, tuple)):
    ca = ca[0]
  return float(ca.get('flops', 0.0)) if ca else 0.0


def peak_rss_bytes() -> int:
  """Peak resident set size of this process (since `reset_peak_rss`, where Linux allows it)."""
  try:
    with open('/proc/self/status') as f:
      return next(int(l.split()[1]) * 1024 for l in f if l.startswith('VmHWM:'))
  except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024


def rss_bytes() -> int:
  try:
    with open('/proc/self/status') as f:
      return next(int(l.split()[1]) * 1024 for l in f if l.startswith('VmRSS:'))
  except (OSError, StopIteration):
    return 0


def reset_peak_rss() -> bool:
  """Resets the peak RSS to the current RSS (Linux: /proc/self/clear_refs); False if impossible."""
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')
    return True
  except OSError:
    return False


def run_child(args: list[str], env: dict | None = None, timeout: float = 600) -> dict:
  """Runs `python <args>` from the repository root; returns the JSON of its last stdout line."""
  full_env = dict(os.environ, **(env or {}))
  full_env['PYTHONPATH'] = ROOT + os.pathsep + full_env.get('PYTHONPATH', '')
  proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                        env=full_env)
  if proc.returncode != 0:
    raise RuntimeError(f'benchmark child {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
  return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt(v, spec: str = '.3g') -> str:
  if v is None:
    return '-'
  return format(v, spec) if isinstance(v, (int, float)) else str(v)


def table(rows: list[dict], cols: list[tuple[str, str, str]]) -> str:
  """A plain-text table; cols are (key, header, format spec)."""
  cells = [[h for _, h, _ in cols]] + [[fmt(r.get(k), s) for k, _, s in cols] for r in rows]
  widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
  lines = ['  '.join(c[i].rjust(widths[i]) if i else c[i].ljust(widths[i]) for i in range(len(cols))) for c in cells]
  lines.insert(1, '  '.join('-' * w for w in widths))
  return '\n'.join(lines)


def write_json(path: str | None, result: dict) -> None:
  """Writes a benchmark's results (making the folder) and says where; nothing when path is None."""
  if not path:
    return
  from ge_jax import fileio
  fileio.write_json(path, result, indent=2)
  print(f'wrote {path}')
