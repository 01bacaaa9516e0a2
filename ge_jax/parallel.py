"""Devices, meshes and shardings: the batch axis sharded over every device, parameters replicated.

One 1-D mesh with axis 'data' spans every device of every process (`jax.make_mesh`, no `pmap`).
Jitted functions see global arrays: a batch sharded on its leading axis, parameters replicated;
the compiler inserts the gradient all-reduce. The same code runs on 1 CPU, 8 TPU cores or a pod.

Multi-host (one process per host): call `initialize` before anything touches devices; each
process then feeds only its rows of a global batch (`local_rows` + `shard_batch`), every process
runs the same jitted calls, and only `is_primary()` writes pictures, logs and results.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from ge_jax import batching
from ge_jax.errors import UserError

DATA = 'data'
# Environment variables that turn multi-host on without --multihost.
_ENV_SWITCH = 'GE_JAX_MULTIHOST'
_ENV_COORDINATOR = 'JAX_COORDINATOR_ADDRESS'


# --- processes -------------------------------------------------------------------------------------


def initialize(multihost: bool | None = None) -> bool:
  """Joins a multi-process run (`jax.distributed.initialize`); call before anything touches devices.

  Args:
    multihost: True: initialize (on TPU pods, SLURM and Open MPI everything is auto-detected;
      elsewhere set JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES and JAX_PROCESS_ID).
      False: never. None: only when the environment asks for it (GE_JAX_MULTIHOST=1, or
      JAX_COORDINATOR_ADDRESS set).

  Returns:
    Whether this process is part of a distributed run. Calling it again is harmless.
  """
  if multihost is None:
    multihost = (os.environ.get(_ENV_SWITCH, '').lower() in ('1', 'true', 'yes')
                 or bool(os.environ.get(_ENV_COORDINATOR)))
  if not multihost:
    return jax.distributed.is_initialized()
  if jax.distributed.is_initialized():
    return True
  kwargs = {}
  for name, env in (('num_processes', 'JAX_NUM_PROCESSES'), ('process_id', 'JAX_PROCESS_ID')):
    if os.environ.get(env):
      try:
        kwargs[name] = int(os.environ[env])
      except ValueError:
        raise UserError(f'{env}={os.environ[env]!r} is not an integer.') from None
  try:
    jax.distributed.initialize(**kwargs)
  except (ValueError, RuntimeError, TypeError) as e:
    raise UserError(
        f'multi-host start failed ({str(e).splitlines()[0][:200]}); on a TPU pod slice run the same '
        'command on every host (gcloud ... --worker=all); elsewhere set JAX_COORDINATOR_ADDRESS=host:port, '
        'JAX_NUM_PROCESSES and JAX_PROCESS_ID on every process, or drop --multihost.') from None
  return True


_CPU_FLAG = '--xla_force_host_platform_device_count'
_ENV_CPU_DEVICES = 'GE_JAX_CPU_DEVICES'


def split_cpu(count: int | str = 'auto') -> int | None:
  """Asks XLA to present the host CPU as `count` devices; call before anything touches devices.

  XLA runs one CPU device's small convolutions on about one core however many threads it has, so
  the solver spreads a batch over one CPU device per core and they run concurrently (1.9x on 2
  cores, benchmarks/RESULTS.md). GPU/TPU devices are not affected; neither is training, which
  keeps one CPU device (train.py passes 1: the GAN step got slower split in two).

  Args:
    count: 'auto' = $GE_JAX_CPU_DEVICES if set, else the number of usable cores; 1 = leave XLA's
      default (one CPU device).

  Returns:
    The count set, or None when nothing was changed: the count is 1, XLA_FLAGS already sets it
    (the user's choice wins), or JAX's backends are already initialised.
  """
  if count == 'auto':
    env = os.environ.get(_ENV_CPU_DEVICES, '').strip()
    if env:
      try:
        count = int(env)
      except ValueError:
        raise UserError(f'{_ENV_CPU_DEVICES}={env!r} is not an integer (CPU devices; 1 = off).') from None
    else:
      count = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
  if not isinstance(count, int) or count < 1:
    raise UserError(f'CPU device count {count!r} must be an integer >= 1.')
  flags = os.environ.get('XLA_FLAGS', '')
  from jax._src import xla_bridge  # no public API says whether backends exist yet
  if count == 1 or _CPU_FLAG in flags or xla_bridge.backends_are_initialized():
    return None
  os.environ['XLA_FLAGS'] = f'{flags} {_CPU_FLAG}={count}'.strip()
  return count


def is_primary() -> bool:
  """True on the process that writes pictures, logs and results (process 0)."""
  return jax.process_index() == 0


def describe() -> str:
  """One line: processes, devices and their kind."""
  d = jax.devices()
  return (f'{len(d)} {d[0].platform.upper()} device(s) ({d[0].device_kind}) in {jax.process_count()} '
          f'process(es), {jax.local_device_count()} local to process {jax.process_index()}')


# --- mesh and shardings ----------------------------------------------------------------------------


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh with axis 'data' over all (or the given) devices.

  `jax.make_mesh` orders devices for fast collectives; with several processes they are then
  grouped by process, so each process's rows of a batch are one contiguous block.
  """
  devices = jax.devices() if devices is None else list(devices)
  mesh = jax.make_mesh((len(devices),), (DATA,), axis_types=(AxisType.Auto,), devices=devices)
  if jax.process_count() > 1:
    ordered = sorted(mesh.devices.flat, key=lambda d: d.process_index)  # stable: keeps the ring order
    mesh = jax.sharding.Mesh(np.asarray(ordered), (DATA,), axis_types=(AxisType.Auto,))
  return mesh


def num_devices(mesh) -> int:
  return mesh.devices.size


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA))


def replicate(tree: Any, mesh) -> Any:
  """The same value on every device of the mesh (parameters, optimizer state)."""
  return jax.device_put(tree, replicated(mesh))


def pad_to_multiple(n: int, k: int) -> int:
  """The smallest multiple of k that is >= n (k >= 1)."""
  return -(-int(n) // int(k)) * int(k)


def shardable(global_size: int, mesh) -> bool:
  """Whether a batch of `global_size` rows splits evenly over the mesh's devices."""
  return global_size % num_devices(mesh) == 0


def local_rows(global_size: int, mesh) -> slice:
  """The rows of a global batch of `global_size` that this process feeds to `shard_batch`.

  One process: all of them. Several: its contiguous share, in process order; or all of them
  when the batch does not split over the devices (it is then replicated).
  """
  n_proc = jax.process_count()
  if n_proc == 1 or not shardable(global_size, mesh):
    return slice(0, global_size)
  per = global_size // n_proc
  i = jax.process_index()
  return slice(i * per, (i + 1) * per)


def shard_batch(tree: Any, mesh, global_size: int | None = None) -> Any:
  """Host batch -> global arrays with the leading (batch) axis split over the mesh.

  Args:
    tree: arrays with the batch as leading axis: the whole batch, or (with `global_size`) this
      process's rows `local_rows(global_size, mesh)` of it.
    mesh: the device mesh.
    global_size: size of the global batch when `tree` holds only this process's rows.

  A global batch that is not a multiple of the device count is replicated instead: correct, but
  every device then computes all of it (pad it, like the solver does, to get the speed-up).
  """
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return tree
  n_here = leaves[0].shape[0]
  n = n_here if global_size is None else int(global_size)
  sharding = batch_sharding(mesh) if shardable(n, mesh) else replicated(mesh)
  if n_here == n:
    return jax.device_put(tree, sharding)
  return jax.tree.map(
      lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a), (n,) + a.shape[1:]), tree)


def solver_place(mesh) -> Callable[[Any], Any]:
  """A `place` hook for `solver.solve_all`: spreads each chunk's images over the mesh.

  Each chunk (a dict of arrays with the images as leading axis, the same on every process) is
  padded to a multiple of the device count by repeating its last image, then sharded. The solver
  keeps only the first rows of its output, so the padding is dropped; images never influence each
  other (per-image objectives, per-image keys folded from global indices), so the real images'
  results do not depend on the padding or on the number of devices. The solver's params must be
  replicated on the same mesh (`replicate`, or `pretrain.load_trained(..., mesh=mesh)`).
  """
  n_dev = num_devices(mesh)
  sharding = batch_sharding(mesh)

  def place(tree):
    def put(a):
      a = np.asarray(a)
      return jax.device_put(batching.pad_rows(a, pad_to_multiple(a.shape[0], n_dev)), sharding)

    return jax.tree.map(put, tree)

  return place


def to_host(x: Any) -> np.ndarray:
  """A numpy copy of a (possibly multi-host, sharded) array; on many hosts every process gets all of it."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)
