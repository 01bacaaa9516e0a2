"""The evaluation's task table: named corruption settings, shared by the evaluation and the pictures.

A task is an operator of `ge_jax.operators` plus the `config.ops` fields it changes, so that
'denoise-0.6' and 'superres-x4' are one name each in results tables and on command lines.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ge_jax import operators
from ge_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """One evaluation task: `operator` (a name in operators.TASKS) with `overrides` of config.ops."""
  name: str
  operator: str
  overrides: tuple[tuple[str, Any], ...] = ()

  def ops(self, ops_cfg) -> dict:
    """config.ops as a plain dict, with this task's overrides applied."""
    return {**dict(ops_cfg.items()), **dict(self.overrides)}

  def make(self, ops_cfg, image_shape: tuple[int, int, int]) -> operators.Operator:
    return operators.make(self.operator, self.ops(ops_cfg), image_shape)


EVAL_TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec('denoise-0.3', 'denoise', (('denoise_sigma', 0.3),)),
    TaskSpec('denoise-0.6', 'denoise', (('denoise_sigma', 0.6),)),
    TaskSpec('speckle', 'speckle'),
    TaskSpec('saltpepper', 'saltpepper'),
    TaskSpec('deblur', 'deblur', (('blur_noise_sigma', 0.0),)),
    TaskSpec('motionblur', 'motionblur', (('blur_noise_sigma', 0.0),)),
    TaskSpec('inpaint-center', 'inpaint', (('inpaint_mode', 'center'),)),
    TaskSpec('inpaint-pixels', 'inpaint', (('inpaint_mode', 'pixels'),)),
    TaskSpec('superres-x2', 'superres', (('superres_factor', 2),)),
    TaskSpec('superres-x4', 'superres', (('superres_factor', 4),)),
    TaskSpec('compress', 'compress'),
    # Blur with camera noise (sigma 0.1 on [-1, 1], 0.05 on [0, 1]): not in the default list, so that
    # the reported 11-task tables stay what their command makes; run with --tasks=deblur-noisy,...
    TaskSpec('deblur-noisy', 'deblur', (('blur_noise_sigma', 0.1),)),
    TaskSpec('motionblur-noisy', 'motionblur', (('blur_noise_sigma', 0.1),)),
)}
EXTRA_TASKS = ('deblur-noisy', 'motionblur-noisy')
DEFAULT_TASKS = tuple(t for t in EVAL_TASKS if t not in EXTRA_TASKS)  # evaluate's "all tasks"


def get(name: str) -> TaskSpec:
  if name not in EVAL_TASKS:
    raise UserError(f'unknown evaluation task {name!r}; choose from {", ".join(EVAL_TASKS)}.')
  return EVAL_TASKS[name]


def task_config(config, name: str):
  """A copy of `config` with config.ops set for evaluation task `name`; returns (config, operator name)."""
  spec = get(name)
  c = config.copy_and_resolve_references()
  with c.unlocked():
    for k, v in spec.overrides:
      c.ops[k] = v
  return c, spec.operator
