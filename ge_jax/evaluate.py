"""The evaluation: every task x every method on a held-out split, as one table and a few figures.

  python -m ge_jax.evaluate --config=configs/mnist.py --workdir=runs/mnist --outdir=results/mnist
  python -m ge_jax.evaluate ... --split=val --n=100 --tasks=denoise-0.3,deblur --nofigures   # tuning

Tasks are `EVAL_TASKS` (an operator of ge_jax.operators plus the config.ops fields it changes);
methods are experiment.METHODS (AE alone, GAN alone, GE, CSGM with the operator known), all run by
`experiment.restore` with the config's solver settings (per-method `lam_<m>` / `lr_<m>` overrides
included). Writes to --outdir:

  results.partial.json        the tasks finished so far (removed at the end)
  results.md / results.json   PSNR and SSIM (mean +- standard error) per task and method, the best
                              blind method in bold, GE - CSGM, the settings and the wall time
  grid_<task>.png             clean / corrupted / AE / GAN / GE / CSGM for the first images
  convergence.png             objective and PSNR versus solver step (batch mean), GE and GAN-only
  lambda_sweep.png            PSNR versus lam for one task (--sweep_task), on the validation split

An <outdir>/NOTE.md (a hand-written closing note) is included in results.md when present.

Results of tuning runs (`--split=val`) placed under <outdir>/variants/<name>/ are listed in
results.md too, so the variants that lost are reported beside the one that won.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import time
from typing import Any

import numpy as np
from absl import flags
from ml_collections import config_flags

from ge_jax import cli


def _define_flags() -> None:
  """CLI flags, defined only when run as a program (importing this module defines none)."""
  config_flags.DEFINE_config_file('config', 'configs/mnist.py', 'Config file (ml_collections).')
  flags.DEFINE_string('workdir', None, 'Trained checkpoints (default runs/<config.name>).')
  flags.DEFINE_string('outdir', None, 'Where results go (default results/<config.name>).')
  flags.DEFINE_enum('split', 'test', ['test', 'val'], 'test: the reported numbers; val: tuning.')
  flags.DEFINE_integer('n', None, 'Images to use (default: the whole split).')
  flags.DEFINE_list('tasks', None, 'Subset of the evaluation tasks (default all).')
  flags.DEFINE_list('methods', ['ae', 'gan', 'ge', 'csgm'], 'Methods to run.')
  flags.DEFINE_bool('figures', True, 'Write grids, convergence curves and the lambda sweep.')
  flags.DEFINE_integer('record_every', 10, 'Solver steps between convergence points (0: off).')
  flags.DEFINE_string('sweep_task', 'denoise-0.3', 'Task of the lambda sweep ("" = none).')
  flags.DEFINE_list('sweep_lams', ['0', '1e-3', '1e-2', '0.1', '1'], 'lam values of the sweep.')
  flags.DEFINE_integer('sweep_n', 100, 'Validation images of the lambda sweep.')
  flags.DEFINE_bool('overwrite', False, 'Replace results already in --outdir.')
  flags.DEFINE_bool('progress', False, 'Show the solver progress bars.')


# name -> (operator, config.ops overrides)
EVAL_TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    'denoise-0.3': ('denoise', dict(denoise_sigma=0.3)),
    'denoise-0.6': ('denoise', dict(denoise_sigma=0.6)),
    'speckle': ('speckle', {}),
    'saltpepper': ('saltpepper', {}),
    'deblur': ('deblur', {}),
    'motionblur': ('motionblur', {}),
    'inpaint-center': ('inpaint', dict(inpaint_mode='center')),
    'inpaint-pixels': ('inpaint', dict(inpaint_mode='pixels')),
    'superres-x2': ('superres', dict(superres_factor=2)),
    'superres-x4': ('superres', dict(superres_factor=4)),
    'compress': ('compress', {}),
}
LABELS = dict(corrupted='input', ae='AE only', gan='GAN only', ge='GE', csgm='CSGM (A known)')


def task_config(config, name: str):
  """A copy of `config` with config.ops set for evaluation task `name`; returns (config, operator)."""
  from ge_jax.errors import UserError
  if name not in EVAL_TASKS:
    raise UserError(f'unknown evaluation task {name!r}; choose from {", ".join(EVAL_TASKS)}.')
  op, overrides = EVAL_TASKS[name]
  c = config.copy_and_resolve_references()
  with c.unlocked():
    for k, v in overrides.items():
      c.ops[k] = v
  return c, op


def settings(config) -> dict:
  """The solver settings the numbers depend on (written into results.json / results.md)."""
  from ge_jax import experiment
  s = config.solve
  out = dict(steps=s.steps, restarts=s.restarts, n_init=s.n_init, prior=s.prior, schedule=s.schedule,
             output=s.get('output', 'best'), seed=s.seed, ops_seed=config.ops.seed)
  for m in ('gan', 'ge', 'csgm'):
    out[f'lr_{m}'] = float(experiment.method_setting(s, 'lr', m))
    out[f'lam_{m}'] = float(experiment.method_setting(s, 'lam', m))
  return out


def _psnr_trace(nets, params, z_trace: np.ndarray, clean: np.ndarray) -> np.ndarray:
  """Batch-mean PSNR of G(z) at each recorded step; z_trace (N, T, d) -> (T,)."""
  import jax
  from ge_jax import metrics
  g = jax.jit(lambda p, z: nets.G(p, z))
  x = metrics.to_unit(clean)
  out = []
  for t in range(z_trace.shape[1]):
    xs = np.concatenate([np.asarray(g(params['generator'], z_trace[i:i + 256, t]))
                         for i in range(0, len(z_trace), 256)])
    out.append(float(np.mean(np.asarray(metrics.psnr(metrics.to_unit(xs), x)))))
  return np.asarray(out)


def run_task(config, params, name: str, clean: np.ndarray, indices: np.ndarray, methods, *,
             record_every: int, scratch: str | None, progress: bool) -> dict:
  """Restores the images for one evaluation task; returns its scores (+ convergence curves)."""
  from ge_jax import experiment
  from ge_jax.models import Nets
  c, op = task_config(config, name)
  rec = record_every if 0 < record_every <= c.solve.steps else 0
  out = experiment.restore(c, params, task=op, clean=clean, indices=indices, methods=methods,
                           progress=progress, record_every=rec)
  scores = experiment.score(out)
  scores['task'] = name
  curves = {}
  if rec:
    nets = Nets(c)
    for m in ('ge', 'gan'):
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
  from ge_jax import experiment, metrics, operators, solver
  from ge_jax.models import Nets
  c, op_name = task_config(config, name)
  nets = Nets(c)
  op = operators.make(op_name, c.ops, nets.image_shape)
  key = jax.random.key(c.ops.seed)
  y = np.stack([np.asarray(operators.corrupt(op, jax.random.fold_in(key, int(i)), x[None])[0][0])
                for i, x in zip(indices, clean)])
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


# --- writing -------------------------------------------------------------------------------------


def _fmt(e: dict | None, key: str, digits: int, bold: bool) -> str:
  if not e or f'{key}_mean' not in e:
    return 'n/a'
  s = f'{e[f"{key}_mean"]:.{digits}f} ± {e[f"{key}_se"]:.{digits}f}'
  return f'**{s}**' if bold else s


def _best(methods: dict, key: str) -> str | None:
  scored = {m: methods[m][f'{key}_mean'] for m in ('ae', 'gan', 'ge') if f'{key}_mean' in methods.get(m, {})}
  return max(scored, key=scored.get) if scored else None


def markdown_table(tasks: list[dict], key: str, digits: int) -> list[str]:
  """One row per task, one column per method (blind winner in bold), GE vs the others."""
  head = ['task', 'input', 'AE only', 'GAN only', 'GE', 'CSGM (A known)', 'GE − AE', 'GE − GAN', 'GE − CSGM']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for t in tasks:
    ms = t['methods']
    best = _best(ms, key)
    cells = [t['task'], _fmt(ms.get('corrupted'), key, digits, False)]
    cells += [_fmt(ms.get(m), key, digits, m == best) for m in ('ae', 'gan', 'ge', 'csgm')]
    ge = ms.get('ge', {}).get(f'{key}_mean')
    for m in ('ae', 'gan', 'csgm'):
      other = ms.get(m, {}).get(f'{key}_mean')
      cells.append(f'{ge - other:+.{digits}f}' if ge is not None and other is not None else 'n/a')
    lines.append('| ' + ' | '.join(cells) + ' |')
  return lines


def variants_table(outdir: str) -> list[str]:
  """Mean PSNR per task of every tuning run saved under <outdir>/variants/*/results.json."""
  runs = []
  for path in sorted(glob.glob(os.path.join(outdir, 'variants', '*', 'results.json'))):
    with open(path) as f:
      runs.append((os.path.basename(os.path.dirname(path)), json.load(f)))
  if not runs:
    return []
  lines = ['| variant | split, n | what it changes | task | AE | GAN | GE | CSGM |', '|---|---|---|---|---|---|---|---|']
  for name, r in runs:
    for t in r['tasks']:
      get = lambda m: (f'{t["methods"][m]["psnr_mean"]:.2f}' if 'psnr_mean' in t['methods'].get(m, {}) else 'n/a')
      lines.append(f'| {name} | {r["split"]}, {r["n_images"]} | {r.get("note", "")} | {t["task"]} | '
                   f'{get("ae")} | {get("gan")} | {get("ge")} | {get("csgm")} |')
  return lines


def write_markdown(path: str, result: dict, outdir: str) -> None:
  tasks = result['tasks']
  wins = [t['task'] for t in tasks if _best(t['methods'], 'psnr') == 'ge']
  losses = [t['task'] for t in tasks if _best(t['methods'], 'psnr') not in (None, 'ge')]
  lines = [f'# GE on {result["config"]}: {result["split"]} split, {result["n_images"]} images',
           '',
           f'Command: `{result["command"]}`',
           '',
           f'Checkpoints: `{result["workdir"]}`; data: {result["data"]}. Wall time {result["wall_seconds"]:.0f} s '
           f'(solve {result["solve_seconds"]:.0f} s, compile {result["compile_seconds"]:.0f} s) on '
           f'{result["devices"]}.',
           '',
           '## PSNR (dB), mean ± standard error; best blind method (AE, GAN, GE) in bold', '']
  lines += markdown_table(tasks, 'psnr', 2)
  lines += ['', '## SSIM, mean ± standard error; best blind method in bold', '']
  lines += markdown_table(tasks, 'ssim', 3)
  psnr = lambda t, m: t['methods'].get(m, {}).get('psnr_mean')
  beats = lambda m: [t['task'] for t in tasks if psnr(t, 'ge') is not None and psnr(t, m) is not None
                     and psnr(t, 'ge') > psnr(t, m)]
  n_with = lambda m: sum(psnr(t, m) is not None and psnr(t, 'ge') is not None for t in tasks)
  lines += ['', f'GE has the best blind PSNR on {len(wins)} of {len(tasks)} tasks'
            + (f'; not on: {", ".join(losses)}.' if losses else '.')
            + f' GE beats GAN-only on {len(beats("gan"))} of {n_with("gan")} tasks'
            + (f' ({", ".join(beats("gan"))})' if beats('gan') else '')
            + f', AE-only on {len(beats("ae"))} of {n_with("ae")}'
            + f' and CSGM (operator known) on {len(beats("csgm"))} of {n_with("csgm")}'
            + (f' ({", ".join(beats("csgm"))})' if beats('csgm') else '') + '.',
            '', 'CSGM knows the operator A (it minimises ||A(G(z)) - y||^2): a reference, not a blind method. '
            'For compress only the code E(x) is given: GAN-only has no image to match and CSGM would be '
            'GE itself.', '', '## Settings', '', '| setting | value |', '|---|---|']
  lines += [f'| {k} | {v} |' for k, v in result['settings'].items()]
  if result.get('note'):
    lines += ['', f'Variant: {result["note"]}']
  fig = [f for f in ('convergence.png', 'lambda_sweep.png') if os.path.exists(os.path.join(outdir, f))]
  grids = [t['task'] for t in tasks if os.path.exists(os.path.join(outdir, f'grid_{t["task"]}.png'))]
  if fig or grids:
    lines += ['', '## Figures', '']
    lines += [f'![{f}]({f})' for f in fig]
    lines += [f'- {g}: [grid_{g}.png](grid_{g}.png)' for g in grids]
  note_path = os.path.join(outdir, 'NOTE.md')  # a hand-written analysis kept beside the numbers
  if os.path.exists(note_path):
    with open(note_path) as f:
      lines += ['', f.read().strip()]
  var = variants_table(outdir)
  if var:
    lines += ['', '## Variants tried (tuning runs on the validation split; mean PSNR, dB)', ''] + var
  with open(path + '.tmp', 'w') as f:
    f.write('\n'.join(lines) + '\n')
  os.replace(path + '.tmp', path)


def plot_convergence(path: str, tasks: list[dict]) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  tasks = [t for t in tasks if t.get('curves')]
  if not tasks:
    return
  fig, axes = plt.subplots(len(tasks), 2, figsize=(9, 2.1 * len(tasks)), squeeze=False)
  colors = dict(ge='tab:red', gan='tab:blue')
  for row, t in zip(axes, tasks):
    for m, cur in t['curves'].items():
      obj = np.asarray(cur['objective'])
      row[0].plot(np.arange(len(obj)), obj / obj[0], color=colors[m], label=LABELS[m])
      row[1].plot(cur['psnr_steps'], cur['psnr'], color=colors[m], label=LABELS[m])
    row[0].set_yscale('log')
    row[0].set_ylabel(t['task'], fontsize=8)
    row[1].set_ylabel('PSNR (dB)', fontsize=8)
  axes[0, 0].set_title('objective / objective at step 0 (batch mean)', fontsize=9)
  axes[0, 1].set_title('PSNR of G(z) vs clean (batch mean)', fontsize=9)
  axes[0, 1].legend(fontsize=7)
  for ax in axes[-1]:
    ax.set_xlabel('solver step')
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def plot_sweep(path: str, sweep: dict) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.5))
  lams = np.asarray(sweep['lams'], float)
  x = np.where(lams > 0, lams, lams[lams > 0].min() / 10 if (lams > 0).any() else 1e-4)
  for m, e in sweep['methods'].items():
    ax.errorbar(x, e['psnr_mean'], yerr=e['psnr_se'], marker='o', capsize=3, label=LABELS[m])
  ax.set_xscale('log')
  ax.set_xlabel('lam (leftmost point: lam = 0)')
  ax.set_ylabel('PSNR (dB)')
  ax.set_title(f'lambda sweep, {sweep["task"]}, {sweep["n_images"]} validation images', fontsize=9)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def _strip(scores: dict) -> dict:
  """Scores for results.json: no per-image lists (they stay in the workdir's metrics.json)."""
  out = {k: v for k, v in scores.items() if not k.startswith('_') and k != 'indices'}
  out['methods'] = {m: {k: v for k, v in e.items() if k != 'per_image'} for m, e in scores['methods'].items()}
  return out


def _write_json(path: str, obj: dict) -> None:
  with open(path + '.tmp', 'w') as f:
    json.dump(obj, f, indent=1)
  os.replace(path + '.tmp', path)


def evaluate(config, workdir: str, outdir: str, *, split: str = 'test', n: int | None = None,
             tasks: list[str] | None = None, methods=('ae', 'gan', 'ge', 'csgm'), figures: bool = True,
             record_every: int = 10, sweep_task: str = '', sweep_lams=(), sweep_n: int = 100,
             progress: bool = False, command: str = '', note: str = '') -> dict:
  """Runs the evaluation and writes results.md / results.json (+ figures) to `outdir`."""
  import jax
  from ge_jax import data, pretrain
  from ge_jax.errors import UserError
  t0 = time.time()
  tasks = list(tasks or EVAL_TASKS)
  for name in tasks:
    task_config(config, name)  # validate names early
  ds = data.load(config.data)
  images = ds.test if split == 'test' else ds.val
  n = len(images) if n is None else n
  if not 1 <= n <= len(images):
    raise UserError(f'--n={n} but the {split} split has {len(images)} images; pick 1..{len(images)}.')
  clean, indices = images[:n], np.arange(n)
  params = pretrain.load_trained(config, workdir)
  print(f'evaluating {workdir} on {n} {split} images of {ds.source}: {len(tasks)} task(s) x {list(methods)}',
        flush=True)
  os.makedirs(outdir, exist_ok=True)
  scratch = os.path.join(workdir, 'eval', os.path.basename(os.path.normpath(outdir)) + f'_{split}') if figures else None
  results, solve_s, compile_s = [], 0.0, 0.0
  for name in tasks:
    ts = time.time()
    s = run_task(config, params, name, clean, indices, methods, record_every=record_every if figures else 0,
                 scratch=scratch, progress=progress)
    solve_s += s['solve_seconds']
    compile_s += s['compile_seconds']
    if figures and s.get('_grid'):
      shutil.copyfile(s['_grid'], os.path.join(outdir, f'grid_{name}.png'))
    results.append(_strip(s))
    psnr = {m: round(e['psnr_mean'], 2) for m, e in s['methods'].items() if 'psnr_mean' in e}
    _write_json(os.path.join(outdir, 'results.partial.json'), dict(config=config.name, split=split, n_images=n,
                                                                   settings=settings(config), tasks=results))
    print(f'[{time.strftime("%H:%M:%S")}] {name}: PSNR {psnr} ({time.time() - ts:.0f} s)', flush=True)
  sweep = None
  if figures and sweep_task:
    n_sw = min(sweep_n, len(ds.val))
    sweep = lambda_sweep(config, params, sweep_task, ds.val[:n_sw], np.arange(n_sw),
                         [float(v) for v in sweep_lams], progress)
    plot_sweep(os.path.join(outdir, 'lambda_sweep.png'), sweep)
  if figures:
    plot_convergence(os.path.join(outdir, 'convergence.png'), results)
  result = dict(config=config.name, workdir=workdir, split=split, n_images=n, data=ds.source,
                command=command, note=note, settings=settings(config), tasks=results, lambda_sweep=sweep,
                devices=f'{jax.device_count()} x {jax.devices()[0].device_kind}',
                wall_seconds=round(time.time() - t0, 1), solve_seconds=round(solve_s, 1),
                compile_seconds=round(compile_s, 1))
  _write_json(os.path.join(outdir, 'results.json'), result)
  os.remove(os.path.join(outdir, 'results.partial.json'))
  write_markdown(os.path.join(outdir, 'results.md'), result, outdir)
  return result


@cli.exit_on_user_error
def main(argv):
  f = flags.FLAGS
  config = f.config
  workdir = cli.start(argv, config, f.workdir)
  from ge_jax.errors import UserError
  outdir = f.outdir or os.path.join('results', config.name)
  cli.check_outdir(outdir, f.overwrite, 'results.json', carry=('variants',))
  try:
    lams = [float(v) for v in f.sweep_lams]
  except ValueError:
    raise UserError(f'--sweep_lams={",".join(f.sweep_lams)} must be numbers.') from None
  command = 'python -m ge_jax.evaluate ' + ' '.join(a for a in sys.argv[1:])
  with cli.output_folder(outdir, f.overwrite, 'results.json', carry=('variants',)) as stage:  # replaced whole
    r = evaluate(config, workdir, stage, split=f.split, n=f.n, tasks=f.tasks, methods=f.methods,
                 figures=f.figures, record_every=f.record_every, sweep_task=f.sweep_task, sweep_lams=lams,
                 sweep_n=f.sweep_n, progress=f.progress, command=command, note=config.get('note', ''))
  print(open(os.path.join(outdir, 'results.md')).read())
  print(f'wrote {outdir}/results.md, results.json ({r["wall_seconds"]:.0f} s)')


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
