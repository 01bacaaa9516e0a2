"""The evaluation: every task x every method on a held-out split, as one table and a few figures.

Run it as `python -m ge_jax.evaluate` (ge_jax/evaluate.py: the command line over `evaluate` and `update`).

Tasks are `ge_jax.tasks.EVAL_TASKS` (an operator plus the config.ops fields it changes); methods
are ge_jax.methods.METHODS (AE alone, GAN alone, GE's MAP and its posterior sample; CSGM, GE-op and the
classical restorations with the operator known; G's random samples as the realism reference), scored on PSNR / SSIM and on realism (FD / KID /
classifier accuracy, ge_jax.perception), all run by
`experiment.restore` with the config's solver settings (per-method `lam_<m>` included). The
budget is the config's (`config.solve`, and `config.eval` for the sweep and curves). Writes to
the outdir (--outdir, else config.eval.outdir, else results/<config.name>):

  results.partial.json        the tasks finished so far (removed at the end)
  results.md / results.json   PSNR and SSIM (mean +- standard error) per task and method, the best
                              blind method in bold; rock data (config.eval.domain_metrics): porosity,
                              S2 and specific-surface errors; realism (FD +- bootstrap SE, KID,
                              classifier accuracy); the perception-distortion front of every task;
                              the shift suite (config.eval.shift_*); the settings and the wall time
  grid_<task>.png             clean / corrupted / every method, for the first images
  pd_<task>.png               PSNR against FD, one point per method, the front drawn
  convergence.png             objective and PSNR versus solver step (batch mean), GE and GAN-only
  lambda_sweep.png            PSNR versus lam for one task (config.eval.sweep_task), validation split
  .ge_jax_outputs.json        the files written (ge_jax.cli.MANIFEST): --overwrite replaces those, keeps others

Nothing is written into the workdir (it may be shared read-only): scratch lives in the outdir while
the run lasts. With --update, a re-run task's figures are its new run's (none with --nofigures), and
the figures drawn from the rows (pd_<task>.png, convergence.png) are drawn again from the merged rows.

An <outdir>/NOTE.md (a hand-written closing note) is included in results.md when present, and
tuning runs (`--split=val`) placed under <outdir>/variants/<name>/ are listed beside the table
(`ge_jax.report` writes all of it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import os
import shutil
import tempfile
import time

import jax
import numpy as np

from ge_jax import api, batching, data, experiment, fileio, load, metrics, operators, perception, report, shift, solver
from ge_jax import methods as method_table
from ge_jax import tasks as task_table
from ge_jax.errors import UserError
from ge_jax.methods import BLIND, METHODS, SOLVER_METHODS
from ge_jax.models import Nets


# What a results folder keeps from its previous run: the tuning runs, and the files other tools
# write there (`python -m ge_jax.latent_pictures --outdir`, G's sample quality from `python -m ge_jax.classify`), which
# describe the networks rather than this evaluation.
CARRIED = ('variants', 'latent_interpolation.png', 'latent_pca.png', 'latent_stats.json', 'sample_quality.json')
# What the evaluation writes into a results folder (names and patterns; see the list above): what an
# --overwrite replaces in a folder written before results folders recorded their files (cli.MANIFEST).
OUTPUTS = ('results.json', 'results.md', 'results.partial.json', 'grid_*.png', 'pd_*.png', 'convergence.png',
           'lambda_sweep.png', '.update/')


@dataclasses.dataclass(frozen=True)
class EvalSpec:
  """What the evaluation takes from config.eval: the convergence curves and the lambda sweep."""
  record_every: int = 10              # solver steps between convergence points (0: off)
  sweep_task: str = ''                # task of the lambda sweep ('' = none)
  sweep_lams: tuple[float, ...] = ()
  sweep_n: int = 100                  # validation images of the sweep
  shift_tasks: tuple[str, ...] = ()   # tasks applied to the shift suite (ge_jax.shift); () = none
  shift_n: int = 0                    # test images of the shift suite
  shift_methods: tuple[str, ...] = tuple(m for m in BLIND if m in METHODS)  # ge_pix_one comes with ge_pix

  @classmethod
  def from_config(cls, config) -> 'EvalSpec':
    """Every setting of config.eval checked (one sentence naming the key), before any work."""
    ev = config.get('eval', None) or {}
    _check_eval_keys(ev, config)
    spec = dict(record_every=ev.get('record_every', 10), sweep_task=ev.get('sweep_task', '') or '',
                sweep_lams=ev.get('sweep_lams', ()), sweep_n=ev.get('sweep_n', 100),
                shift_tasks=_names(ev, 'shift_tasks', ()), shift_n=ev.get('shift_n', 0),
                shift_methods=_names(ev, 'shift_methods', cls.shift_methods))
    for k in ('record_every', 'sweep_n', 'shift_n'):
      if isinstance(spec[k], bool) or not isinstance(spec[k], int) or spec[k] < 0:
        raise UserError(f'config.eval.{k}={spec[k]!r} must be an integer >= 0.')
    if not isinstance(spec['sweep_task'], str):
      raise UserError(f'config.eval.sweep_task={spec["sweep_task"]!r} must be a task name (\'\' for no sweep).')
    try:
      if isinstance(spec['sweep_lams'], str):
        raise TypeError
      spec['sweep_lams'] = tuple(float(v) for v in spec['sweep_lams'])
    except (TypeError, ValueError):
      raise UserError(f'config.eval.sweep_lams={spec["sweep_lams"]!r} must be a list of numbers.') from None
    bad = [v for v in spec['sweep_lams'] if not np.isfinite(v) or v < 0]
    if bad:
      raise UserError(f'config.eval.sweep_lams has {bad[0]!r}; each lam must be a finite number >= 0.')
    for key, names, known, what in (
        ('sweep_task', (spec['sweep_task'],) if spec['sweep_task'] else (), task_table.EVAL_TASKS, 'evaluation task'),
        ('shift_tasks', spec['shift_tasks'], task_table.EVAL_TASKS, 'evaluation task'),
        ('shift_methods', spec['shift_methods'], METHODS, 'method')):
      unknown = [v for v in names if v not in known]
      if unknown:
        hint = (" (a list is written \"('a','b')\" on the command line)" if ',' in unknown[0] else '')
        raise UserError(f'config.eval.{key} names an unknown {what} {unknown[0]!r}{hint}; choose from '
                        f'{", ".join(known)}.')
    if spec['sweep_task'] and (not spec['sweep_lams'] or spec['sweep_n'] < 2):
      raise UserError('config.eval.sweep_task is set, so sweep_lams needs at least one value and '
                      f'sweep_n at least 2 (got {spec["sweep_lams"]!r}, {spec["sweep_n"]!r}).')
    if spec['shift_n'] and not spec['shift_tasks']:  # (shift_n=0 is how a run turns the suite off)
      raise UserError(f'config.eval.shift_n={spec["shift_n"]} has no effect: config.eval.shift_tasks is empty (the '
                      "shift suite's tasks); name them, e.g. --config.eval.shift_tasks=\"('denoise-0.3',)\", or leave "
                      'shift_n at 0.')
    if spec['shift_n'] and not spec['shift_methods']:
      raise UserError('config.eval.shift_methods is empty while the shift suite is on (config.eval.shift_tasks); '
                      'name the methods it runs.')
    outdir = ev.get('outdir', None)
    if outdir is not None and (not isinstance(outdir, str) or not outdir.strip()):
      raise UserError(f'config.eval.outdir={outdir!r} must be a folder name (leave it unset for results/<name>).')
    experiment.domain(config)  # config.eval.domain_metrics, checked where it is read
    return cls(**spec)

  def check_run(self, methods, figures: bool, n_val: int) -> None:
    """What the config's settings need of this run (its --methods, figures, the validation split's
    size), before any work; UserError naming the key."""
    if self.shift_tasks and self.shift_n and not set(methods) & set(self.shift_methods):
      raise UserError(f'config.eval.shift_methods ({", ".join(self.shift_methods)}) names none of the methods '
                      f'this run runs ({", ".join(methods)}); add one to --methods, or turn the shift suite off '
                      '(config.eval.shift_n=0 and shift_tasks=()).')
    if figures and self.sweep_task and n_val < 2:
      raise UserError(f'config.eval.sweep_task={self.sweep_task!r} runs the lambda sweep on the validation split, '
                      f'which has {n_val} image(s); it needs at least 2 (config.data.val_size), or set '
                      "config.eval.sweep_task='' (or pass --nofigures).")


# The keys of config.eval (what each means: configs/mnist.py); domain_metrics is read by the scoring.
EVAL_KEYS = ('outdir', 'record_every', 'sweep_task', 'sweep_lams', 'sweep_n', 'shift_tasks', 'shift_n',
             'shift_methods', 'domain_metrics')


def _check_eval_keys(ev, config) -> None:
  declared = set(config.get('declared_keys', None) or ())
  for key in ev.keys() if hasattr(ev, 'keys') else ():
    if key not in EVAL_KEYS and f'eval.{key}' not in declared:
      close = difflib.get_close_matches(key, EVAL_KEYS, n=1, cutoff=0.6)
      hint = f'did you mean config.eval.{close[0]}? ' if close else ''
      raise UserError(f'config.eval.{key} is not a setting of the evaluation; {hint}'
                      f'(its settings: {", ".join(EVAL_KEYS)}).')


def _names(ev, key: str, default) -> tuple[str, ...]:
  """A list of names of config.eval (a lone string would read as its letters): UserError otherwise."""
  value = ev.get(key, default)
  if value is None:
    return ()
  if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
    example = tuple(default)[:2] or ('denoise-0.3',)
    raise UserError(f'config.eval.{key}={value!r} must be a list of names, e.g. {example!r}.')
  return tuple(value)


def _extractors(model, ds) -> list:
  """api.extractors, but a classifier that is not trained yet in a workdir this process cannot write
  (a trained model shared read-only) is left out with a note, not trained and cached there."""
  cached = os.path.exists(os.path.join(model.workdir, 'classifier', 'params.msgpack'))
  if getattr(ds, 'train_labels', None) is not None and not cached and not _can_write(model.workdir):
    print(f'note: {model.workdir} has no trained classifier and cannot be written, so realism is scored on '
          'random-CNN features only (no classifier FD, no accuracy); to add them, run '
          f'`python -m ge_jax.classify --workdir={model.workdir}` once where the workdir can be written.', flush=True)
    return [perception.random_extractor(model.image_shape)]
  return api.extractors(model, ds)


def _can_write(folder: str) -> bool:
  """A real write, removed at once (os.access says yes to root on a read-only file system)."""
  try:
    os.rmdir(tempfile.mkdtemp(prefix='.ge_jax_write_test-', dir=folder))
    return True
  except OSError:
    return False


def settings(config) -> dict:
  """The solver settings the numbers depend on (written into results.json / results.md)."""
  s = config.solve
  out = dict(steps=s.steps, restarts=s.restarts, n_init=s.n_init, prior=s.prior, schedule=s.schedule,
             output=s.get('output', 'best'), seed=s.seed, ops_seed=config.ops.seed)
  for m in SOLVER_METHODS:
    out[f'lr_{m}'] = float(method_table.setting(s, 'lr', m))
    out[f'lam_{m}'] = float(method_table.setting(s, 'lam', m))
  for block, prefix in (('ge_sample', 'ge_sample_'), ('ge_pix', 'ge_pix_'), ('compress', 'compress_ge_')):
    if s.get(block, None):  # the sampled methods' blocks, and GE's code-only budget
      out.update({f'{prefix}{k}': v for k, v in s[block].items()})
  return out


def default_outdir(config) -> str:
  ev = config.get('eval', None)
  return (ev.get('outdir', None) if ev is not None else None) or os.path.join('results', config.name)


def _psnr_trace(nets, params, z_trace: np.ndarray, clean: np.ndarray) -> np.ndarray:
  """Batch-mean PSNR of G(z) at each recorded step; z_trace (N, T, d) -> (T,)."""
  n, t, d = z_trace.shape
  g = jax.jit(nets.G)
  xs = batching.map_batched(g, params['generator'], z_trace.reshape(n * t, d), min(256, n * t))
  xs = metrics.to_unit(xs.reshape((n, t) + xs.shape[1:]))
  x = metrics.to_unit(clean)
  return np.asarray([float(np.mean(np.asarray(metrics.psnr(xs[:, k], x)))) for k in range(t)])


def run_task(model, name: str, clean: np.ndarray, indices: np.ndarray, methods, *,
             record_every: int, scratch: str | None, progress: bool, extractors=(), labels=None,
             domain_metrics=None) -> dict:
  """Restores the images for one evaluation task; returns its scores (+ convergence curves)."""
  params = model.params
  rec = record_every if 0 < record_every <= model.config.solve.steps else 0
  out = api.restore(model, clean, task=name, indices=indices, methods=methods, strict=False, progress=progress,
                    record_every=rec)
  scores = api.score(out, extractors, labels, domain_metrics)
  scores['task'] = name
  curves = {}
  if rec:
    nets = Nets(model.config)
    for m in out.z_trace:  # the blind latent methods' curves: what the convergence figure shows
      if m in BLIND:
        steps = [rec * (t + 1) for t in range(out.z_trace[m].shape[1])]
        curves[m] = dict(objective=[float(v) for v in np.nanmean(out.loss_trace[m], axis=0)],
                         psnr_steps=steps, psnr=[float(v) for v in _psnr_trace(nets, params, out.z_trace[m], clean)])
  scores['curves'] = curves
  if scratch:
    paths = api.save(out, os.path.join(scratch, name), scores)
    scores['_grid'] = paths['grid']
  return scores


def lambda_sweep(config, params, name: str, clean: np.ndarray, indices: np.ndarray, lams: list[float],
                 progress: bool) -> dict:
  """PSNR versus lam on one task of the blind methods that minimise (GE's MAP and GAN-only), with the
  settings a run of that task resolves; every lam in one solver call (lam per image)."""
  c, op_name = task_table.task_config(config, name)
  nets = Nets(c)
  op = operators.make(op_name, c.ops, nets.image_shape)
  y, _ = operators.corrupt_images(op, jax.random.key(c.ops.seed), clean, indices)
  task = method_table.Task.of(op_name, op, c.ops)
  n, k = len(clean), len(lams)
  rep = lambda a: np.concatenate([a] * k)
  out = dict(task=name, n_images=n, lams=lams, methods={})
  bs = min(int(c.solve.batch_size), n * k)
  swept = [m for m in method_table.TABLE if m.name in BLIND and m.name in SOLVER_METHODS and m.why_not(task) is None]
  codes = solver.encode_all(nets, params, clean if op.code_only else y, bs)
  for m in swept:
    s = m.settings(c, task)
    inputs = method_table.Inputs(nets=nets, params=params, key=jax.random.key(c.solve.seed), indices=rep(indices),
                                 batch_size=bs, corrupted=None if op.code_only else rep(y), codes=rep(codes),
                                 forward=op.forward, op_params={}, task=task, progress=progress)
    res = m.run(inputs, dataclasses.replace(s, lam=np.repeat(np.asarray(lams, np.float32), n)))
    psnr = np.asarray(metrics.psnr(metrics.to_unit(res.recon[m.name]), metrics.to_unit(rep(clean)))).reshape(k, n)
    out['methods'][m.name] = dict(psnr_mean=psnr.mean(1).tolist(),
                                  psnr_se=(psnr.std(1, ddof=1) / np.sqrt(n)).tolist())
  return out


def shift_suite(model, clean: np.ndarray, labels, task_names, methods, extractors, progress: bool) -> list[dict]:
  """Every shift of ge_jax.shift (inputs the models never saw) x the given tasks x methods, scored
  against the shifted clean images (the classifier's accuracy on those is the ceiling)."""
  out = []
  indices = np.arange(len(clean))
  for shift_name, shifted in shift.shifted_sets(clean).items():
    for name in task_names:
      ts = time.time()
      res = api.restore(model, shifted, task=name, indices=indices, methods=methods, strict=False,
                        progress=progress)
      s = report.without_per_image(api.score(res, extractors, labels))
      s.update(task=name, shift=shift_name)
      out.append(s)
      psnr = {m: round(e['psnr_mean'], 2) for m, e in s['methods'].items() if 'psnr_mean' in e}
      print(f'[{time.strftime("%H:%M:%S")}] shift {shift_name} / {name}: PSNR {psnr} ({time.time() - ts:.0f} s)',
            flush=True)
  return out


def evaluate(config, workdir: str, outdir: str, *, split: str = 'test', n: int | None = None,
             tasks: list[str] | None = None, methods=METHODS, figures: bool = True,
             progress: bool = False, command: str = '', note: str = '', other_split: bool = False) -> dict:
  """Runs the evaluation and writes results.md / results.json (+ figures) to `outdir`.

  The solver budget is config.solve; the convergence curves and the lambda sweep follow
  config.eval (record_every, sweep_task, sweep_lams, sweep_n).
  """
  t0 = time.time()
  ev = EvalSpec.from_config(config)
  tasks = list(tasks or task_table.DEFAULT_TASKS)
  for name in tasks:
    task_table.get(name)  # validate names early
  ds = data.load(config.data)
  load.check_split(config, workdir, ds, allow_other=other_split)  # held-out images that are held out
  images = ds.test if split == 'test' else ds.val
  n = len(images) if n is None else n
  if not 1 <= n <= len(images):
    raise UserError(f'--n={n} but the {split} split has {len(images)} images; pick 1..{len(images)}.')
  ev.check_run(methods, figures, len(ds.val))
  clean, indices = images[:n], np.arange(n)
  model = api.load(workdir, config)
  labels = (ds.test_labels if split == 'test' else ds.val_labels)
  labels = None if labels is None else np.asarray(labels)[:n]
  extractors = _extractors(model, ds)
  domain_metrics = api.domain_metrics(model)
  print(f'evaluating {workdir} on {n} {split} images of {ds.source}: {len(tasks)} task(s) x {list(methods)}',
        flush=True)
  os.makedirs(outdir, exist_ok=True)
  results, solve_s, compile_s = [], 0.0, 0.0
  partial = os.path.join(outdir, 'results.partial.json')
  # Scratch (each task's restorations, to draw its grid) lives beside the results, never in the
  # workdir: a trained model may be shared read-only.
  with tempfile.TemporaryDirectory(prefix='.scratch-', dir=outdir) as scratch:
    for name in tasks:
      ts = time.time()
      s = run_task(model, name, clean, indices, methods, record_every=ev.record_every if figures else 0,
                   scratch=scratch if figures else None, progress=progress, extractors=extractors, labels=labels,
                   domain_metrics=domain_metrics)
      solve_s += s['solve_seconds']
      compile_s += s['compile_seconds']
      if figures and s.get('_grid'):
        os.replace(s['_grid'], os.path.join(outdir, f'grid_{name}.png'))
      results.append(report.without_per_image(s))
      psnr = {m: round(e['psnr_mean'], 2) for m, e in s['methods'].items() if 'psnr_mean' in e}
      fileio.write_json(partial, dict(config=config.name, split=split, n_images=n, settings=settings(config),
                                      tasks=results))
      print(f'[{time.strftime("%H:%M:%S")}] {name}: PSNR {psnr} ({time.time() - ts:.0f} s)', flush=True)
  shift = None
  if ev.shift_tasks and ev.shift_n:
    shift = shift_suite(model, clean[:ev.shift_n], None if labels is None else labels[:ev.shift_n],
                        ev.shift_tasks, [m for m in methods if m in ev.shift_methods], extractors, progress)
  sweep = None
  if figures and ev.sweep_task:
    n_sw = min(ev.sweep_n, len(ds.val))
    sweep = lambda_sweep(config, model.params, ev.sweep_task, ds.val[:n_sw], np.arange(n_sw),
                         list(ev.sweep_lams), progress)
    report.plot_sweep(os.path.join(outdir, 'lambda_sweep.png'), sweep)
  if figures:
    report.plot_convergence(os.path.join(outdir, 'convergence.png'), results)
  result = dict(config=config.name, workdir=workdir, split=split, n_images=n, data=ds.source,
                command=command, note=note, settings=settings(config), tasks=results, lambda_sweep=sweep,
                shift_suite=shift,
                devices=f'{jax.device_count()} x {jax.devices()[0].device_kind}',
                wall_seconds=round(time.time() - t0, 1), solve_seconds=round(solve_s, 1),
                compile_seconds=round(compile_s, 1), figures=figures)
  report.write_results(outdir, result)
  os.remove(partial)
  return result


# Settings (keys of `settings`) that only the code-only task (compression) uses: --update may re-run
# it alone after they change.
CODE_ONLY_SETTINGS = ('compress_ge_',)


def merge_update(old: dict, new: dict) -> dict:
  """`old` results with `new`'s tasks in place of theirs (a re-run of some tasks): UserError unless
  both runs measured the same networks, images and settings, and `new` re-ran every method of each
  task it replaces."""
  for key in ('config', 'workdir', 'split', 'n_images', 'data'):
    if old.get(key) != new.get(key):
      raise UserError(f'--update: the results were made with {key}={old.get(key)!r}, this run has '
                      f'{new.get(key)!r}; run every task again with --overwrite.')
  changed = sorted(k for k in set(old['settings']) & set(new['settings']) if old['settings'][k] != new['settings'][k])
  rerun = {t['task'] for t in new['tasks']}
  if all(t['task'] in rerun for t in old['tasks'] if task_table.get(t['task']).operator == 'compress'):
    changed = [k for k in changed if not k.startswith(CODE_ONLY_SETTINGS)]  # only those tasks use them
  if changed:
    raise UserError(f'--update: settings changed since the results were made ({", ".join(changed)}), and they '
                    'may move every task; run every task again with --overwrite.')
  by_name = {t['task']: t for t in new['tasks']}
  for t in old['tasks']:
    missing = sorted(set(t['methods']) - set(by_name.get(t['task'], t)['methods']))
    if missing:
      raise UserError(f'--update: the {t["task"]} row has methods this run did not re-run '
                      f'({", ".join(missing)}); add them to --methods.')
  merged = dict(old, settings={**old['settings'], **new['settings']})
  merged['tasks'] = [by_name.pop(t['task'], t) for t in old['tasks']] + list(by_name.values())
  merged['updates'] = list(old.get('updates') or []) + [dict(
      tasks=[t['task'] for t in new['tasks']], command=new['command'], devices=new['devices'],
      wall_seconds=new['wall_seconds'], date=time.strftime('%Y-%m-%d'))]
  return merged


def update(config, workdir: str, outdir: str, *, tasks, n: int | None, split: str = 'test', **kwargs) -> dict:
  """Re-runs `tasks` and merges them into `outdir`'s results (merge_update), figures included."""
  path = os.path.join(outdir, 'results.json')
  if not os.path.isfile(path):
    raise UserError(f'--update: {outdir} has no results.json to update; run the evaluation first (no --update).')
  with open(path) as f:
    old = json.load(f)
  if not tasks:
    raise UserError('--update re-runs the tasks named by --tasks; name them (e.g. --tasks=compress).')
  n = old['n_images'] if n is None else n
  methods = set(kwargs.get('methods', METHODS))
  ran = {'corrupted'} | {r for m in method_table.select(methods) for r in m.rows}
  # what can be checked before the run is checked before it (the data source is checked after)
  merge_update(old, dict(old, workdir=workdir, split=split, n_images=n, settings=settings(config),
                         tasks=[dict(t, methods=[m for m in t['methods'] if m in ran])
                                for t in old['tasks'] if t['task'] in tasks]))
  quiet = config.copy_and_resolve_references()
  with quiet.unlocked():  # the sweep and the shift suite are kept from the full run
    quiet.eval.sweep_task, quiet.eval.shift_n, quiet.eval.shift_tasks = '', 0, ()
  stage = os.path.join(outdir, '.update')
  shutil.rmtree(stage, ignore_errors=True)
  try:
    new = evaluate(quiet, workdir, stage, split=split, n=n, tasks=tasks, **kwargs)
    merged = merge_update(old, new)
    # Figures follow their rows: a re-run task's figures of the old run go (its grid is the new run's,
    # or none with --nofigures); those drawn from the rows (pd_<task>.png, convergence.png) are drawn again.
    for t in tasks:
      for figure in (f'grid_{t}.png', f'pd_{t}.png'):
        with contextlib.suppress(FileNotFoundError):
          os.remove(os.path.join(outdir, figure))
      grid = os.path.join(stage, f'grid_{t}.png')
      if os.path.exists(grid):
        os.replace(grid, os.path.join(outdir, f'grid_{t}.png'))
  finally:
    shutil.rmtree(stage, ignore_errors=True)
  convergence = os.path.join(outdir, 'convergence.png')
  with contextlib.suppress(FileNotFoundError):
    os.remove(convergence)
  report.plot_convergence(convergence, merged['tasks'])  # the curves of the rows kept (none: no figure)
  report.write_results(outdir, merged)
  return merged
