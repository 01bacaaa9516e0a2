"""Orbax checkpoints: one small wrapper around `CheckpointManager`.

Each training phase (GAN, AE) has its own directory `<workdir>/<phase>/checkpoints` holding steps
written atomically (Orbax writes to a temporary folder and renames it when complete, so a process
killed mid-save leaves no half checkpoint behind), with the run's config saved beside the state.
Restores go through an abstract target, so a checkpoint written on N devices restores on M.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

from ge_jax.errors import UserError

# Config fields that fix the shapes of saved parameters: a checkpoint only fits a config that agrees.
# Each phase checks only its own, so a GAN can be shared by AEs of another code size.
PHASE_SHAPE_KEYS = {
    'gan': ('data.image_size', 'data.channels', 'model.latent_dim', 'model.g_width', 'model.d_width',
            'model.base_size', 'model.g_norm', 'model.g_final'),
    'ae': ('data.image_size', 'data.channels', 'ae.kind', 'ae.code_dim', 'ae.width'),
}
SHAPE_KEYS = PHASE_SHAPE_KEYS['gan'] + PHASE_SHAPE_KEYS['ae'][2:]


def _get(cfg: dict, dotted: str):
  for part in dotted.split('.'):
    if not isinstance(cfg, dict) or part not in cfg:
      return None
    cfg = cfg[part]
  return cfg


def config_to_dict(config) -> dict:
  return json.loads(config.to_json_best_effort()) if isinstance(config, ml_collections.ConfigDict) else config


def check_compatible(saved: dict, config, where: str, keys: tuple[str, ...] = SHAPE_KEYS) -> None:
  """Raises UserError when `saved` (a config dict) has other parameter shapes (`keys`) than `config`."""
  current = config_to_dict(config)
  diffs = [f'{k}: saved {_get(saved, k)!r}, now {_get(current, k)!r}' for k in keys
           if _get(saved, k) is not None and _get(saved, k) != _get(current, k)]
  if diffs:
    raise UserError(
        f'{where} holds checkpoints of a different config ({"; ".join(diffs)}); '
        'use another --workdir or the config those checkpoints were trained with.')


class Checkpoints:
  """Save / restore / resume for one training phase."""

  def __init__(self, directory: str, *, keep: int = 3, async_save: bool = True,
               shape_keys: tuple[str, ...] = SHAPE_KEYS):
    self.directory = os.path.abspath(directory)
    self.shape_keys = shape_keys
    os.makedirs(self.directory, exist_ok=True)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=async_save,
        cleanup_tmp_directories=True)
    self._mngr = ocp.CheckpointManager(self.directory, options=options, item_names=('state', 'config'))

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._mngr.all_steps())

  def save(self, step: int, state: Any, config) -> None:
    self._mngr.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config_to_dict(config))), force=True)

  def saved_config(self, step: int | None = None) -> dict | None:
    step = self.latest_step() if step is None else step
    if step is None:
      return None
    return self._mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore())).config

  def restore(self, target: Any, config=None, step: int | None = None) -> tuple[Any, int] | tuple[None, None]:
    """Restores (state, step) of the latest (or given) step onto `target`'s structure and shardings.

    `target` is a pytree of arrays or `jax.ShapeDtypeStruct`s (with `.sharding` for multi-device).
    With `config`, first checks that the checkpoint was made with compatible shapes.
    Returns (None, None) when there is no checkpoint.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      return None, None
    if config is not None:
      saved = self.saved_config(step)
      if saved is not None:
        check_compatible(saved, config, f'{self.directory}', self.shape_keys)
    abstract = jax.tree.map(_abstract, target)
    try:
      restored = self._mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
    except (ValueError, KeyError, TypeError) as e:
      raise UserError(f'the checkpoint at {self.directory} step {step} does not match this config '
                      f'({str(e).splitlines()[0][:200]}); use another --workdir.') from None
    return restored.state, step

  def wait(self) -> None:
    self._mngr.wait_until_finished()

  def close(self) -> None:
    self._mngr.wait_until_finished()
    self._mngr.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def _abstract(x):
  if isinstance(x, jax.ShapeDtypeStruct):
    return x
  sharding = getattr(x, 'sharding', None)
  if sharding is None:
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
