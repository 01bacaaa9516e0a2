"""The Python API: load a trained workdir, restore a batch of images with any method and task, score it.

  from ge_jax import api
  model = api.load('runs/mnist_aug')                          # the config saved with the checkpoints
  out = api.restore(model, clean, task='deblur')              # every method of ge_jax.methods
  out.recon['ge']                                             # (N, H, W, C) in [-1, 1]
  api.score(out)['methods']['ge']['psnr_mean']                # PSNR / SSIM on [0, 1]
  api.score(out, domain_metrics=api.domain_metrics(model))    # + rock errors for rock configs
  out = api.restore(model, corrupted=y, task='none', methods=('ge',))   # already-corrupted input

Images are NHWC float32 in [-1, 1] (`ge_jax.data.to_model_range` converts uint8 or [0, 1] arrays).
`task` is an operator name (`ge_jax.operators.TASKS`, parameters from `model.config.ops`, which
`ops=` overrides) or an evaluation task name (`ge_jax.tasks.EVAL_TASKS`, e.g. 'superres-x4').
solve.py, `python -m ge_jax.evaluate` and the notebook run through these three calls.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from typing import Any, Mapping

import numpy as np

from ge_jax import data_convert, experiment, load as load_lib, operators, perception, tasks
from ge_jax.errors import UserError
from ge_jax.methods import METHODS, describe

Outcome = experiment.Outcome


@dataclasses.dataclass(frozen=True)
class Model:
  """A trained GE model: the config it was trained with, and its parameters.

  Attributes:
    config: the run's ConfigDict (model, data, solve and ops blocks are read).
    params: {'generator': G's EMA params, 'discriminator': D's, 'autoencoder': the AE's}, replicated on the mesh.
    workdir: where the checkpoints came from.
  """
  config: Any
  params: dict
  workdir: str = ''

  @property
  def image_shape(self) -> tuple[int, int, int]:
    d = self.config.data
    return (int(d.image_size), int(d.image_size), int(d.channels))


def load(workdir: str, config=None, *, mesh=None) -> Model:
  """Loads a workdir's final checkpoints; `config` defaults to the one saved with them."""
  config = load_lib.saved_config(workdir) if config is None else config
  return Model(config=config, params=load_lib.load_trained(config, workdir, mesh=mesh), workdir=workdir)


def _check_ops(config, op: str, ops: Mapping[str, Any], image_shape) -> None:
  """`ops` overrides: keys of config.ops that this task's operator reads, nothing else."""
  unknown = sorted(k for k in ops if k not in config.ops)
  if unknown:
    close = difflib.get_close_matches(unknown[0], list(config.ops.keys()), n=1)
    raise UserError(f'ops={{{unknown[0]!r}: ...}} is not an operator setting (config.ops)'
                    + (f'; did you mean {close[0]!r}?' if close else '; see configs/mnist.py.'))
  used = operators.keys_read(op, config.ops, image_shape)
  idle = sorted(k for k in ops if k not in used)
  if idle:
    raise UserError(f'ops={{{idle[0]!r}: ...}} has no effect on task {op!r}, which reads '
                    f'{", ".join(sorted(used)) or "no operator setting"}; leave it out.')


def _images(a, name: str, shape) -> np.ndarray | None:
  """`a` as float32 (N, H, W, C) in [-1, 1]; one sentence for anything else (never a guess)."""
  if a is None:
    return None
  a = np.asarray(a)
  if a.ndim != 4 or a.shape[1:] != shape:
    raise UserError(f'{name} images have shape {a.shape}; this model takes (N, {", ".join(map(str, shape))}) '
                    'arrays in [-1, 1].')
  if not len(a):
    raise UserError(f'{name} holds no images (shape {a.shape}); give at least one.')
  if not np.issubdtype(a.dtype, np.floating):
    raise UserError(f'{name} images are {a.dtype}, not float in [-1, 1]; convert them first with '
                    "ge_jax.data.to_model_range(x) (uint8 0..255) or to_model_range(x, value_range='unit') ([0, 1]).")
  lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
  if lo < -1 - data_convert.RANGE_TOL or hi > 1 + data_convert.RANGE_TOL:
    raise UserError(f'{name} images hold values in [{lo:g}, {hi:g}]; this model takes [-1, 1]: convert them with '
                    "ge_jax.data.to_model_range(x) (0..255) or to_model_range(x, value_range='unit') ([0, 1]).")
  return a.astype(np.float32)


def _task_config(config, task: str, ops: Mapping[str, Any] | None):
  """(config with config.ops for this task, operator name)."""
  if task in tasks.EVAL_TASKS:
    config, op = tasks.task_config(config, task)
  elif task in operators.TASKS:
    op = task
    if ops:
      config = config.copy_and_resolve_references()
  else:
    raise UserError(f'unknown task {task!r}; choose an operator ({", ".join(operators.TASKS)}) '
                    f'or an evaluation task ({", ".join(tasks.EVAL_TASKS)}).')
  if ops:
    _check_ops(config, op, ops, (int(config.data.image_size),) * 2 + (int(config.data.channels),))
    with config.unlocked():
      for k, v in ops.items():
        config.ops[k] = v
  return config, op


def restore(model: Model, clean: np.ndarray | None = None, *, task: str = 'denoise',
            corrupted: np.ndarray | None = None, methods=None, ops: Mapping[str, Any] | None = None,
            indices: np.ndarray | None = None, progress: bool = False, record_every: int = 0,
            place=None, strict: bool | None = None) -> Outcome:
  """Corrupts `clean` with `task` (or takes `corrupted` as the observation, task 'none') and restores it.

  Args:
    model: from `load`.
    clean: (N, H, W, C) clean images in [-1, 1]; needed for every task but 'none' (optional there,
      to score the result).
    task: an operator or evaluation task name (see the module docstring).
    corrupted: the observation for task 'none' (with another task, the clean images are corrupted
      here: giving both is an error).
    methods: None (every method; those that cannot apply to the task are skipped with a note in
      Outcome.notes), or any of METHODS (ge_jax.methods), run in the table's order; the rows they return:
      METHOD_LINES
    ops: overrides of config.ops for this call (e.g. {'denoise_sigma': 0.5}).
    indices: global image indices: image i's corruption and random starts depend on (seed, i) only.
    record_every: keep z every k solver steps (convergence curves), 0 = off.
    place: a sharding hook for the solver (`ge_jax.parallel.solver_place(mesh)`).
    strict: whether a method that cannot apply is an error; default: when `methods` is given.
  Returns:
    an `Outcome`: .recon[method], .corrupted, .objective, .diverged, timings.
  """
  config, op = _task_config(model.config, task, ops)
  clean, corrupted = _images(clean, 'clean', model.image_shape), _images(corrupted, 'corrupted', model.image_shape)
  if op != 'none' and corrupted is not None:
    raise UserError(f"corrupted= is an observation, restored as it is with task='none'; with task={task!r} the "
                    'clean images are corrupted here: give one or the other.')
  strict = methods is not None if strict is None else strict
  return experiment.restore(config, model.params, task=op, clean=clean, corrupted=corrupted,
                            indices=indices, methods=tuple(METHODS if methods is None else methods),
                            progress=progress, record_every=record_every, place=place, strict=strict)


restore.__doc__ = restore.__doc__.replace('METHOD_LINES', describe().replace('\n', '\n      '))


def extractors(model: Model, dataset=None) -> list:
  """The feature extractors realism is measured with (ge_jax.perception): a fixed random CNN for
  any data, and the project's classifier (trained once on the train split, cached in the workdir)
  when `dataset` has labels."""
  return perception.default_extractors(model.workdir or None, dataset, model.image_shape)


def domain_metrics(model: Model):
  """The domain's own metrics for `score`, as the model's config.eval.domain_metrics chooses
  (experiment.domain_metrics_for): rock errors for rock slices, else None."""
  return experiment.domain_metrics_for(model.config)


def score(out: Outcome, extractors=(), labels=None, domain_metrics=None) -> dict:
  """The content of metrics.json, per method: PSNR / SSIM on [0, 1] (mean, standard error, per
  image); with `extractors` (see `extractors`) also FD / KID / feature distance, with `labels`
  the classifier accuracy of the restorations, and with `domain_metrics` (see `domain_metrics`)
  a domain's own errors, e.g. porosity / S2 / specific surface for rock."""
  return experiment.score(out, extractors, labels, domain_metrics)


def save(out: Outcome, outdir: str, scores: dict | None = None) -> dict[str, str]:
  """Writes reconstructions.npz, grid.png and metrics.json into `outdir`; returns their paths."""
  if os.path.exists(outdir) and not os.path.isdir(outdir):
    raise UserError(f'{outdir} is a file, not a folder; give api.save a folder to write the results into.')
  return experiment.save(out, outdir, score(out) if scores is None else scores)


def table(scores: dict) -> str:
  """The plain-text table solve.py prints."""
  return experiment.table(scores)
