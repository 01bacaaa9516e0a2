"""The evaluation: every task x every method on a held-out split, as one table and a few figures.

  python -m ge_jax.evaluate --config=configs/mnist_aug_eval.py                  # results/mnist
  python -m ge_jax.evaluate ... --split=val --n=100 --tasks=denoise-0.3,deblur --nofigures   # tuning

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

An <outdir>/NOTE.md (a hand-written closing note) is included in results.md when present, and
tuning runs (`--split=val`) placed under <outdir>/variants/<name>/ are listed beside the table
(`ge_jax.report` writes all of it).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time

import numpy as np
from absl import flags

from ge_jax import cli
from ge_jax.methods import BLIND, METHODS, SOLVER_METHODS


# What a results folder keeps from its previous run: the tuning runs, and the files other tools
# write there (`ge_jax.latent_viz --outdir`, G's sample quality from `ge_jax.classifier`), which
# describe the networks rather than this evaluation.
CARRIED = ('variants', 'latent_interpolation.png', 'latent_pca.png', 'latent_stats.json', 'sample_quality.json')


def _define_flags() -> None:
  """CLI flags, defined only when run as a program (importing this module defines none)."""
  from ml_collections import config_flags
  config_flags.DEFINE_config_file('config', 'configs/mnist_aug_eval.py', 'Config file (ml_collections).')
  flags.DEFINE_string('workdir', None, 'Trained checkpoints (default runs/<config.name>).')
  flags.DEFINE_string('outdir', None, 'Where results go (default config.eval.outdir, else results/<config.name>).')
  flags.DEFINE_enum('split', 'test', ['test', 'val'], 'test: the reported numbers; val: tuning.')
  flags.DEFINE_integer('n', None, 'Images to use (default: the whole split).')
  flags.DEFINE_list('tasks', None, 'Evaluation tasks (default: the 11 of ge_jax.tasks.DEFAULT_TASKS; '
                    'also deblur-noisy, motionblur-noisy).')
  flags.DEFINE_list('methods', list(METHODS), 'Methods to run.')
  flags.DEFINE_bool('figures', True, 'Write grids, convergence curves and the lambda sweep.')
  flags.DEFINE_bool('overwrite', False, 'Replace results already in --outdir.')
  flags.DEFINE_bool('update', False, 'Re-run only --tasks and replace their rows in --outdir\'s results '
                    '(after a change of their settings); the other tasks, the sweep and the shift suite stay.')
  flags.DEFINE_bool('progress', False, 'Show the solver progress bars.')


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
    from ge_jax import tasks
    from ge_jax.errors import UserError
    ev = config.get('eval', None) or {}
    spec = dict(record_every=ev.get('record_every', 10), sweep_task=ev.get('sweep_task', '') or '',
                sweep_lams=ev.get('sweep_lams', ()), sweep_n=ev.get('sweep_n', 100),
                shift_tasks=tuple(ev.get('shift_tasks', ()) or ()), shift_n=ev.get('shift_n', 0),
                shift_methods=tuple(ev.get('shift_methods', cls.shift_methods) or ()))
    for name in spec['shift_tasks']:
      tasks.get(name)
    for k in ('record_every', 'sweep_n', 'shift_n'):
      if isinstance(spec[k], bool) or not isinstance(spec[k], int) or spec[k] < 0:
        raise UserError(f'config.eval.{k}={spec[k]!r} must be an integer >= 0.')
    try:
      spec['sweep_lams'] = tuple(float(v) for v in spec['sweep_lams'])
    except (TypeError, ValueError):
      raise UserError(f'config.eval.sweep_lams={spec["sweep_lams"]!r} must be a list of numbers.') from None
    if spec['sweep_task']:
      tasks.get(spec['sweep_task'])
      if not spec['sweep_lams'] or spec['sweep_n'] < 2:
        raise UserError('config.eval.sweep_task is set, so sweep_lams needs at least one value and '
                        f'sweep_n at least 2 (got {spec["sweep_lams"]!r}, {spec["sweep_n"]!r}).')
    return cls(**spec)


def settings(config) -> dict:
  """The solver settings the numbers depend on (written into results.json / results.md)."""
  from ge_jax import experiment
  s = config.solve
  out = dict(steps=s.steps, restarts=s.restarts, n_init=s.n_init, prior=s.prior, schedule=s.schedule,
             output=s.get('output', 'best'), seed=s.seed, ops_seed=config.ops.seed)
  for m in SOLVER_METHODS:
    out[f'lr_{m}'] = float(experiment.method_setting(s, 'lr', m))
    out[f'lam_{m}'] = float(experiment.method_setting(s, 'lam', m))
  if 'ge_sample' in s:
    out.update({f'ge_sample_{k}': v for k, v in s.ge_sample.items()})
  if 'ge_pix' in s:
    out.update({f'ge_pix_{k}': v for k, v in s.ge_pix.items()})
  if s.get('compress', None):
    out.update({f'compress_ge_{k}': v for k, v in s.compress.items()})
  return out


def default_outdir(config) -> str:
  ev = config.get('eval', None)
  return (ev.get('outdir', None) if ev is not None else None) or os.path.join('results', config.name)


def _psnr_trace(nets, params, z_trace: np.ndarray, clean: np.ndarray) -> np.ndarray:
  """Batch-mean PSNR of G(z) at each recorded step; z_trace (N, T, d) -> (T,)."""
  import jax
  from ge_jax import batching, metrics
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
  from ge_jax import api, experiment
  from ge_jax.models import Nets
  params = model.params
  rec = record_every if 0 < record_every <= model.config.solve.steps else 0
  out = api.restore(model, clean, task=name, indices=indices, methods=methods, progress=progress,
                    record_every=rec)
  scores = api.score(out, extractors, labels, domain_metrics)
  scores['task'] = name
  curves = {}
  if rec:
    nets = Nets(model.config)
    for m in ('ge', 'gan', 'ge_sample', 'ge_pix'):
      if m in out.z_trace:
        steps = [rec * (t + 1) for t in range(out.z_trace[m].shape[1])]
        curves[m] = dict(objective=[float(v) for v in np.nanmean(out.loss_trace[m], axis=0)],
                         psnr_steps=steps, psnr=[float(v) for v in _psnr_trace(nets, params, out.z_trace[m], clean)])
  scores['curves'] = curves
  if scratch:
    paths = experiment.save(out, os.path.join(scratch, name), scores)
    scores['_grid'] = paths['grid']
  return scores


def lambda_sweep(config, params, name: str, clean: np.ndarray, indices: np.ndarray, lams: list[float],
                 progress: bool) -> dict:
  """PSNR of GE and GAN-only versus lam on one task; every lam in one solver call (lam per image)."""
  import jax
  from ge_jax import experiment, metrics, operators, solver, tasks
  from ge_jax.models import Nets
  c, op_name = tasks.task_config(config, name)
  nets = Nets(c)
  op = operators.make(op_name, c.ops, nets.image_shape)
  y, _ = operators.corrupt_images(op, jax.random.key(c.ops.seed), clean, indices)
  n, k = len(clean), len(lams)
  rep = lambda a: np.concatenate([a] * k)
  out = dict(task=name, n_images=n, lams=lams, methods={})
  bs = min(int(c.solve.batch_size), n * k)
  for m in ('ge', 'gan'):
    if m == 'gan' and op.code_only:
      continue
    target = solver.encode_all(nets, params, clean if op.code_only else y, bs) if m == 'ge' else y
    spec = solver.SolverSpec.from_config(c.solve, m)
    res = solver.solve_all(nets, spec, params, rep(target), jax.random.key(c.solve.seed),
                           lr=experiment.method_setting(c.solve, 'lr', m),
                           lam=np.repeat(np.asarray(lams, np.float32), n), batch_size=bs,
                           indices=rep(indices), progress=progress)
    psnr = np.asarray(metrics.psnr(metrics.to_unit(res.x), metrics.to_unit(rep(clean)))).reshape(k, n)
    out['methods'][m] = dict(psnr_mean=psnr.mean(1).tolist(),
                             psnr_se=(psnr.std(1, ddof=1) / np.sqrt(n)).tolist())
  return out


def shift_suite(model, clean: np.ndarray, labels, task_names, methods, extractors, progress: bool) -> list[dict]:
  """Every shift of ge_jax.shift (inputs the models never saw) x the given tasks x methods, scored
  against the shifted clean images (the classifier's accuracy on those is the ceiling)."""
  from ge_jax import api, report, shift
  out = []
  indices = np.arange(len(clean))
  for shift_name, shifted in shift.shifted_sets(clean).items():
    for name in task_names:
      ts = time.time()
      res = api.restore(model, shifted, task=name, indices=indices, methods=methods, progress=progress)
      s = report.without_per_image(api.score(res, extractors, labels))
      s.update(task=name, shift=shift_name)
      out.append(s)
      psnr = {m: round(e['psnr_mean'], 2) for m, e in s['methods'].items() if 'psnr_mean' in e}
      print(f'[{time.strftime("%H:%M:%S")}] shift {shift_name} / {name}: PSNR {psnr} ({time.time() - ts:.0f} s)',
            flush=True)
  return out


def evaluate(config, workdir: str, outdir: str, *, split: str = 'test', n: int | None = None,
             tasks: list[str] | None = None, methods=METHODS, figures: bool = True,
             progress: bool = False, command: str = '', note: str = '') -> dict:
  """Runs the evaluation and writes results.md / results.json (+ figures) to `outdir`.

  The solver budget is config.solve; the convergence curves and the lambda sweep follow
  config.eval (record_every, sweep_task, sweep_lams, sweep_n).
  """
  import jax
  from ge_jax import api, data, fileio, report, tasks as task_table
  from ge_jax.errors import UserError
  t0 = time.time()
  ev = EvalSpec.from_config(config)
  tasks = list(tasks or task_table.DEFAULT_TASKS)
  for name in tasks:
    task_table.get(name)  # validate names early
  ds = data.load(config.data)
  images = ds.test if split == 'test' else ds.val
  n = len(images) if n is None else n
  if not 1 <= n <= len(images):
    raise UserError(f'--n={n} but the {split} split has {len(images)} images; pick 1..{len(images)}.')
  clean, indices = images[:n], np.arange(n)
  model = api.load(workdir, config)
  labels = (ds.test_labels if split == 'test' else ds.val_labels)
  labels = None if labels is None else np.asarray(labels)[:n]
  extractors = api.extractors(model, ds)
  domain_metrics = api.domain_metrics(model)
  print(f'evaluating {workdir} on {n} {split} images of {ds.source}: {len(tasks)} task(s) x {list(methods)}',
        flush=True)
  os.makedirs(outdir, exist_ok=True)
  scratch = os.path.join(workdir, 'eval', os.path.basename(os.path.normpath(outdir)) + f'_{split}') if figures else None
  results, solve_s, compile_s = [], 0.0, 0.0
  partial = os.path.join(outdir, 'results.partial.json')
  for name in tasks:
    ts = time.time()
    s = run_task(model, name, clean, indices, methods, record_every=ev.record_every if figures else 0,
                 scratch=scratch, progress=progress, extractors=extractors, labels=labels,
                 domain_metrics=domain_metrics)
    solve_s += s['solve_seconds']
    compile_s += s['compile_seconds']
    if figures and s.get('_grid'):
      shutil.copyfile(s['_grid'], os.path.join(outdir, f'grid_{name}.png'))
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
  from ge_jax.errors import UserError
  for key in ('config', 'workdir', 'split', 'n_images', 'data'):
    if old.get(key) != new.get(key):
      raise UserError(f'--update: the results were made with {key}={old.get(key)!r}, this run has '
                      f'{new.get(key)!r}; run every task again with --overwrite.')
  from ge_jax import tasks as task_table
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
  import json
  from ge_jax import report
  from ge_jax.errors import UserError
  path = os.path.join(outdir, 'results.json')
  if not os.path.isfile(path):
    raise UserError(f'--update: {outdir} has no results.json to update; run the evaluation first (no --update).')
  with open(path) as f:
    old = json.load(f)
  if not tasks:
    raise UserError('--update re-runs the tasks named by --tasks; name them (e.g. --tasks=compress).')
  n = old['n_images'] if n is None else n
  methods = set(kwargs.get('methods', METHODS))
  ran = methods | {'corrupted'} | ({'ge_pix_one'} if 'ge_pix' in methods else set())
  # what can be checked before the run is checked before it (the data source is checked after)
  merge_update(old, dict(old, workdir=workdir, split=split, n_images=n, settings=settings(config),
                         tasks=[dict(t, methods=[m for m in t['methods'] if m in ran])
                                for t in old['tasks'] if t['task'] in tasks]))
  quiet = config.copy_and_resolve_references()
  with quiet.unlocked():  # the sweep and the shift suite are kept from the full run
    quiet.eval.sweep_task, quiet.eval.shift_n = '', 0
  stage = os.path.join(outdir, '.update')  # a fixed name: its scratch under workdir/eval is reused
  shutil.rmtree(stage, ignore_errors=True)
  try:
    new = evaluate(quiet, workdir, stage, split=split, n=n, tasks=tasks, **kwargs)
    merged = merge_update(old, new)
    for t in tasks:
      grid = os.path.join(stage, f'grid_{t}.png')
      if os.path.exists(grid):
        shutil.copyfile(grid, os.path.join(outdir, f'grid_{t}.png'))
  finally:
    shutil.rmtree(stage, ignore_errors=True)
  if kwargs.get('figures', True):
    report.plot_convergence(os.path.join(outdir, 'convergence.png'), merged['tasks'])
  report.write_results(outdir, merged)
  return merged


@cli.exit_on_user_error
def main(argv):
  from ge_jax import tasks as task_table
  from ge_jax.errors import UserError
  f = flags.FLAGS
  config = f.config
  workdir = cli.start(argv, config, f.workdir)
  outdir = f.outdir or default_outdir(config)
  for name in f.tasks or ():
    task_table.get(name)  # a bad name fails before any work
  EvalSpec.from_config(config)  # a bad config.eval fails before any work
  command = 'python -m ge_jax.evaluate ' + ' '.join(a for a in sys.argv[1:])
  if f.update:
    if f.overwrite:
      raise UserError('--update keeps the other tasks and --overwrite replaces them all; pick one.')
    r = update(config, workdir, outdir, tasks=f.tasks, n=f.n, split=f.split, methods=f.methods,
               figures=f.figures, progress=f.progress, command=command, note=config.get('note', ''))
    print(open(os.path.join(outdir, 'results.md')).read())
    print(f'updated {", ".join(f.tasks)} in {outdir}/results.md, results.json ({r["updates"][-1]["wall_seconds"]:.0f} s)')
    return
  cli.check_outdir(outdir, f.overwrite, 'results.json', carry=CARRIED)
  with cli.output_folder(outdir, f.overwrite, 'results.json', carry=CARRIED,
                         keep_as=(('NOTE.md', 'NOTE.previous.md'),)) as stage:  # replaced whole
    r = evaluate(config, workdir, stage, split=f.split, n=f.n, tasks=f.tasks, methods=f.methods,
                 figures=f.figures, progress=f.progress, command=command, note=config.get('note', ''))
  print(open(os.path.join(outdir, 'results.md')).read())
  print(f'wrote {outdir}/results.md, results.json ({r["wall_seconds"]:.0f} s)')


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
