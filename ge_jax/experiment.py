"""One restoration experiment: corrupt a batch, restore it with the chosen methods, score and save it.

The methods are `ge_jax.methods.TABLE`'s objects: `restore` asks each whether it applies to the
task, resolves every method's settings before any work, then runs them one after the other on the
same observation, codes and random starts. `score` measures the rows, `table` prints them (the
recommended method first), `save` writes them. Used by solve.py, the evaluation and the notebook.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import time
from typing import Any

import jax
import numpy as np

from ge_jax import fileio, metrics, operators, perception, rock_metrics, solver, uncertainty, viz
from ge_jax import methods as method_table
from ge_jax.errors import UserError
from ge_jax.methods import LABELS, METHODS, ROWS, SHORT_LABELS
from ge_jax.models import Nets

ROW_LABELS = dict(clean='clean', corrupted='corrupted') | SHORT_LABELS
DOMAIN_METRICS = ('auto', 'rock', 'none')            # config.eval.domain_metrics


@dataclasses.dataclass
class Outcome:
  task: str
  description: str
  indices: np.ndarray                    # global indices of the images
  clean: np.ndarray | None               # (N, H, W, C) in [-1, 1], or None when not known
  corrupted: np.ndarray | None           # the observation y (None for 'compress': only codes given)
  recon: dict[str, np.ndarray]           # method -> (N, H, W, C)
  objective: dict[str, np.ndarray]       # method -> (N,) final objective (solver methods)
  loss_trace: dict[str, np.ndarray]      # method -> (N, K)
  diverged: dict[str, list[int]]         # method -> global indices whose solve was not finite
  notes: dict[str, str]                  # method -> why it was skipped / what it means
  compile_seconds: float
  solve_seconds: float
  z_trace: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  # method -> (posterior mean, per-pixel posterior std) of its chains (the sampling methods, R >= 2)
  uncertainty: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)


@contextlib.contextmanager
def _compile_timer():
  """Sums JAX's compile-time events (tracing, lowering, XLA compilation) inside the block."""
  total = [0.0]

  def listener(name, secs, **_):
    if name.startswith('/jax/core/compile/'):
      total[0] += secs

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    yield total
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)


def _check_images(x: np.ndarray, name: str) -> None:
  bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
  if bad.any():
    raise UserError(f'{name} has NaN or Inf values in {bad.sum()} image(s) (first at position '
                    f'{int(np.argmax(bad))}); clean the input first.')


def restore(config, params, *, task: str, clean: np.ndarray | None = None, corrupted: np.ndarray | None = None,
            indices: np.ndarray | None = None, methods=METHODS, progress: bool = True,
            record_every: int = 0, place=None, plan=None, strict: bool = False) -> Outcome:
  """Corrupts `clean` with `task` (or takes `corrupted` as given, task 'none') and restores it.

  Args:
    config: the run's config (data, solve and ops blocks are read).
    params: {'generator': G's (EMA) params, 'autoencoder': the AE's params; 'discriminator': D's,
      needed by output 'realest' only}.
    task: an operator name (operators.TASKS); 'none' means `corrupted` is the observation.
    clean: clean images in [-1, 1] (needed for any task but 'none'; optional with 'none').
    corrupted: the observation for task 'none'.
    indices: global image indices (seed the corruption and the solver's random starts).
    methods: subset of METHODS.
    strict: a method that cannot apply to the task is an error (UserError, before any work), not a
      note: for methods the user named; False skips them with a note (every method, many tasks).
    record_every: keep z every k solver steps (for convergence curves), 0 = off.
    place: sharding hook passed to the solver (see parallel.py).
    plan: the solver's ExecutionPlan (default: solver.ExecutionPlan.auto()).
  """
  nets = Nets(config)
  chosen = method_table.select(methods)
  op = operators.make(task, config.ops, nets.image_shape)
  if task == 'none':
    if corrupted is None:
      raise UserError("task 'none' takes the input as already corrupted, but no corrupted images were given.")
  elif clean is None:
    raise UserError(f"task {task!r} corrupts clean images, but none were given.")
  base = clean if clean is not None else corrupted
  n = len(base)
  indices = np.arange(n) if indices is None else np.asarray(indices)
  for name, x in (('the clean images', clean), ('the corrupted images', corrupted)):
    if x is not None:
      _check_images(x, name)
  facts = method_table.Task.of(task, op, config.ops)
  notes = {m.name: why for m in chosen if (why := m.why_not(facts)) is not None}
  if strict and notes:
    raise UserError(f'cannot run on task {task!r}: ' + '; '.join(f'{k} ({v})' for k, v in notes.items())
                    + '; leave them out of the methods asked for.')
  chosen = [m for m in chosen if m.name not in notes]
  settings = {m.name: m.settings(config, facts, record_every) for m in chosen}  # all checked before any work

  op_params: Any = {}
  if task != 'none':
    corrupted, op_params = operators.corrupt_images(op, jax.random.key(config.ops.seed), clean, indices)
  bs = min(int(config.solve.batch_size), n)
  rows = method_table.Output(recon={})
  t0 = time.time()
  with _compile_timer() as compile_s:
    codes = None
    if op.code_only:  # compression: only m = E(x) is known
      codes, corrupted = solver.encode_all(nets, params, clean, bs), None
    elif any('code' in m.needs for m in chosen):
      codes = solver.encode_all(nets, params, corrupted, bs)
    inputs = method_table.Inputs(nets=nets, params=params, key=jax.random.key(config.solve.seed), indices=indices,
                            batch_size=bs, corrupted=corrupted, codes=codes, forward=op.forward,
                            op_params=op_params, task=facts, progress=progress, place=place, plan=plan)
    for m in chosen:
      out = m.run(inputs, settings[m.name])
      for field in ('recon', 'objective', 'loss_trace', 'diverged', 'z_trace', 'uncertainty'):
        getattr(rows, field).update(getattr(out, field))
  wall = time.time() - t0
  return Outcome(task=task, description=op.description, indices=indices, clean=clean, corrupted=corrupted,
                 recon=rows.recon, objective=rows.objective, loss_trace=rows.loss_trace, diverged=rows.diverged,
                 notes=notes, compile_seconds=round(compile_s[0], 2), solve_seconds=round(wall - compile_s[0], 2),
                 z_trace=rows.z_trace, uncertainty=rows.uncertainty)


def domain(config) -> str | None:
  """Which domain's own metrics a config's restorations get: 'rock', or None for none.

  config.eval.domain_metrics names it; 'auto' (the default) means rock for the generated slices
  (data.source='rock'). Real slices from a folder or .npz are rock only when the config says so
  (configs/rock64.py does): nothing in a folder of images tells what they show.
  """
  ev = config.get('eval', None) or {}
  choice = ev.get('domain_metrics', 'auto')
  if choice not in DOMAIN_METRICS:
    raise UserError(f'config.eval.domain_metrics={choice!r} is not one of {", ".join(map(repr, DOMAIN_METRICS))}.')
  if choice == 'auto':
    return 'rock' if config.data.source == 'rock' else None
  return None if choice == 'none' else choice


def domain_metrics_for(config):
  """The `domain_metrics` hook of `score` for a config (see `domain`), or None.

  Rock: `rock_metrics.score_entry` (pore = darker than the clean slice's Otsu threshold), S2(r)
  up to r = 32 pixels, or half the image side when that is smaller.
  """
  if domain(config) != 'rock':
    return None
  r_max = min(rock_metrics.R_MAX, int(config.data.image_size) // 2)
  return functools.partial(rock_metrics.score_entry, r_max=r_max)


def score(out: Outcome, extractors=(), labels=None, domain_metrics=None) -> dict:
  """metrics.json content, per method: PSNR / SSIM on [0, 1] (mean, standard error, per image), and
  with `extractors` (perception.FeatureExtractor) realism: FD / KID of the restored set against the
  clean set, a per-image feature distance and, with `labels`, the classifier's accuracy
  (entry['perception'][extractor name]). `domain_metrics(restored_unit, clean_unit) -> dict` adds
  a domain's own errors (`domain_metrics_for(config)`); its 'per_image' lists join PSNR's."""
  result = dict(task=out.task, description=out.description, n_images=int(len(out.indices)),
                indices=[int(i) for i in out.indices], methods={},
                solve_seconds=out.solve_seconds, compile_seconds=out.compile_seconds, notes=out.notes)
  rows = dict(out.recon)
  if out.corrupted is not None:
    rows = {'corrupted': out.corrupted, **rows}
  for name, x_hat in rows.items():
    entry: dict[str, Any] = {}
    if name in out.diverged:
      entry['diverged'] = out.diverged[name]
    if out.clean is not None:
      ok = np.isfinite(x_hat.reshape(len(x_hat), -1)).all(axis=1)
      x, r = metrics.to_unit(out.clean[ok]), metrics.to_unit(x_hat[ok])
      psnr, ssim = np.asarray(metrics.psnr(r, x)), np.asarray(metrics.ssim(r, x))
      ps, ss = metrics.summary(psnr), metrics.summary(ssim)
      entry.update(psnr_mean=float(ps['mean']), psnr_se=float(ps['se']), ssim_mean=float(ss['mean']),
                   ssim_se=float(ss['se']), n_scored=int(ok.sum()),
                   per_image=dict(psnr=[round(float(v), 4) for v in psnr], ssim=[round(float(v), 5) for v in ssim]))
      if domain_metrics is not None and len(r):
        extra = dict(domain_metrics(np.asarray(r), np.asarray(x)))
        entry['per_image'].update(extra.pop('per_image', {}))  # beside psnr / ssim, not instead
        entry.update(extra)
    if name in out.objective:
      entry['objective_mean'] = float(np.nanmean(out.objective[name]))
    result['methods'][name] = entry
  for name, (mean, std) in out.uncertainty.items():  # what the chains say of their own error
    result['methods'][name]['uncertainty'] = uncertainty.summary(mean, std, out.recon[name], out.clean,
                                                                 out.corrupted, out.indices)
  if extractors and out.clean is not None:
    ps = perception.perception_scores(rows, out.clean, labels, extractors)
    result['extractors'] = ps['extractors']
    for name, per_ext in ps['methods'].items():
      result['methods'][name]['perception'] = per_ext
  return result


# The rock errors (rock_metrics.score_entry) as solve.py's table shows them: key, column head.
ROCK_COLUMNS = (('porosity_error', 'poro err'), ('s2_error', 'S2 err'), ('specific_surface_error', 'surf err'))


def _order(names, first: str | None) -> list[str]:
  """The input first, then `first` (the recommended method), then the rest as given."""
  names = list(names)
  lead = [k for k in ('corrupted', first) if k in names]
  return lead + [k for k in names if k not in lead]


def table(scores: dict, recommended: str | None = None) -> str:
  """A plain-text table of the scores (what solve.py prints): the input and the recommended method
  first, every number on a scale a reader can judge: PSNR also as the gain over the input, realism
  as the Frechet distance divided by the input's (below 1: closer to the clean images' statistics
  than the input; G's own samples for comparison). KID and the standard errors stay in metrics.json."""
  ms = scores['methods']
  ext = next(iter(scores.get('extractors', {})), None)  # the first (the classifier where there is one)
  fd = lambda k: ms.get(k, {}).get('perception', {}).get(ext, {}).get('fd')
  ref = 'corrupted' if fd('corrupted') else 'g_random' if fd('g_random') else None
  ref_name = {'corrupted': "input's", 'g_random': "G's own"}.get(ref, '')
  rock = any('porosity_error_mean' in e for e in ms.values())
  acc = ext and any('accuracy' in e.get('perception', {}).get(ext, {}) for e in ms.values())
  head = f'{"method":<20} {"PSNR (dB)":>15} {"vs input":>9} {"SSIM":>6}'
  if rock:
    head += ''.join(f' {label:>9}' for _, label in ROCK_COLUMNS)
  if ext:
    head += f' {("FD / " + ref_name) if ref else "FD (" + ext + ")":>14}' + (f' {"accuracy":>9}' if acc else '')
  base_psnr = ms.get('corrupted', {}).get('psnr_mean')
  lines = [f'task: {scores["task"]} ({scores["description"]}), {scores["n_images"]} images']
  if recommended in ms:
    lines.append(f'recommended (blind): {LABELS[recommended]}: {method_table.DESCRIPTIONS[recommended]}')
  lines.append(head)
  for name in _order(ms, recommended):
    e = ms[name]
    label = 'input' if name == 'corrupted' else LABELS.get(name, name)
    if 'psnr_mean' not in e:
      lines.append(f'{label:<20} {"(no clean images: not scored)":>33}')
      continue
    gain = f'{e["psnr_mean"] - base_psnr:+.2f}' if base_psnr is not None and name != 'corrupted' else ''
    line = f'{label:<20} {e["psnr_mean"]:>8.2f} +- {e["psnr_se"]:<4.2f} {gain:>9} {e["ssim_mean"]:>6.3f}'
    if rock:  # means only: the columns stay narrow (metrics.json has the standard errors)
      line += ''.join(f' {e[k + "_mean"]:>9.4f}' if k + '_mean' in e else f' {"n/a":>9}' for k, _ in ROCK_COLUMNS)
    if ext:
      v = fd(name)
      cell = 'n/a' if v is None else f'{v / fd(ref):.2f}' if ref else f'{v:.3g}'
      p = e.get('perception', {}).get(ext, {})
      line += f' {cell:>14}' + (f' {p["accuracy"]:>9.3f}' if acc and 'accuracy' in p else '')
    lines.append(line + ('   <- recommended' if name == recommended else ''))
    if e.get('diverged'):
      lines.append(f'{"":<20} diverged images: {e["diverged"][:20]}')
  for name, note in scores.get('notes', {}).items():
    lines.append(f'{LABELS.get(name, name):<20} {note}')
  for name in _order(ms, recommended):
    u = ms[name].get('uncertainty')
    if u:
      line = f'{LABELS[name]}: posterior std over its chains {u["score_mean"]:.3f} per pixel on [0, 1]'
      if 'coverage_90' in u:
        line += (f'; mean +- 1.64 std covers {100 * u["coverage_90"]:.0f}% of the clean pixels '
                 '(nominal 90%, uncalibrated)')
      if 'rank_correlation_mse' in u:
        line += f'; rank correlation with the error {u["rank_correlation_mse"]:.2f}'
      lines.append(line + f'; least to trust (most uncertain {100 * uncertainty.FLAG_FRACTION:.0f}%): '
                   f'images {u["flagged"][:20]}')
  if ext:
    lines.append(f'FD: Frechet distance to the clean images on {ext} features (lower is more realistic)'
                 + (f', divided by the {ref_name} ({fd(ref):.3g})' if ref else '')
                 + ('; accuracy: the project classifier reads the clean digit' if acc else '') + '.')
  lines.append(f'solve {scores["solve_seconds"]:.1f} s + compile {scores["compile_seconds"]:.1f} s')
  return '\n'.join(lines)


def save(out: Outcome, outdir: str, scores: dict, max_cols: int = 16, first: str | None = None) -> dict[str, str]:
  """Writes reconstructions.npz, grid.png and metrics.json into `outdir`; returns their paths.
  `first`: a method whose row the grid shows right after the input (solve.py: the recommended one)."""
  os.makedirs(outdir, exist_ok=True)
  paths = dict(npz=os.path.join(outdir, 'reconstructions.npz'), grid=os.path.join(outdir, 'grid.png'),
               metrics=os.path.join(outdir, 'metrics.json'))
  arrays = {k: v for k, v in dict(clean=out.clean, corrupted=out.corrupted).items() if v is not None}
  arrays.update(out.recon)
  spread = {f'{k}_posterior_{what}': a for k, pair in out.uncertainty.items() for what, a in zip(('mean', 'std'), pair)}
  fileio.save_npz(paths['npz'], indices=out.indices, **arrays, **spread)
  order = ['clean', *_order(['corrupted', *ROWS], first)]
  rows, labels = [], []
  for k in order:
    if k in arrays:
      rows.append(arrays[k])
      labels.append(ROW_LABELS[k])
    if k in out.uncertainty:  # its uncertainty beside it: the posterior std, white = the largest shown
      std = out.uncertainty[k][1][:max_cols]
      rows.append(2.0 * std / max(float(np.nanmax(std)), 1e-6) - 1.0)
      labels.append(f'{ROW_LABELS[k]} std')
  viz.save_rows(paths['grid'], [np.nan_to_num(r, nan=-1.0) for r in rows], labels, max_cols=max_cols)
  fileio.write_json(paths['metrics'], scores)
  return paths
