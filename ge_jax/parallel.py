"""Device mesh and shardings: batch axis sharded over every device, parameters replicated."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

DATA = 'data'


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh with axis 'data' over all (or the given) devices."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.sharding.Mesh(np.asarray(devices), (DATA,))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA))


def replicate(tree: Any, mesh) -> Any:
  return jax.device_put(tree, replicated(mesh))


def shard_batch(tree: Any, mesh) -> Any:
  """Puts every array's leading (batch) axis across the mesh; its size must divide evenly."""
  return jax.device_put(tree, batch_sharding(mesh))


def num_devices(mesh) -> int:
  return mesh.devices.size
