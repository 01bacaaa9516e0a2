"""Reporting an evaluation: results.md (tables, the reading of them, settings, figures) and the plots.

Pure writers of what `ge_jax.evaluation` measured (its result dict); nothing here solves anything.
`python -m ge_jax.rerender OUTDIR` writes results.md again from its results.json.
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np

from ge_jax import fileio, pd_plot, viz
from ge_jax.errors import UserError
from ge_jax.methods import BASELINES, BLIND, BY_NAME, GE_FORMS, KNOWN, LABELS as METHOD_LABELS, PAPER, PEER, PIXELS
from ge_jax.methods import REFERENCE, ROWS
from ge_jax.perception import pareto_front

LABELS = dict(corrupted='input') | METHOD_LABELS


def _fmt(e: dict | None, key: str, digits: int, bold: bool) -> str:
  if not e or f'{key}_mean' not in e:
    return 'n/a'
  s = f'{e[f"{key}_mean"]:.{digits}f} ± {e[f"{key}_se"]:.{digits}f}'
  return f'**{s}**' if bold else s


def _best(methods: dict, key: str) -> str | None:
  scored = {m: methods[m][f'{key}_mean'] for m in BLIND if f'{key}_mean' in methods.get(m, {})}
  return max(scored, key=scored.get) if scored else None


def _methods(tasks: list[dict]) -> list[str]:
  """The methods present in any task, blind ones first, the reference last."""
  present = {m for t in tasks for m in t['methods']}
  return [m for m in ROWS if m in present]


def markdown_table(tasks: list[dict], key: str, digits: int) -> list[str]:
  """One row per task, one column per method (blind winner in bold), GE vs the others."""
  methods = _methods(tasks)
  head = ['task', 'input'] + [LABELS[m] for m in methods] + [f'{LABELS[PAPER]} − {BY_NAME[b].short}' for b in BASELINES]
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for t in tasks:
    ms = t['methods']
    best = _best(ms, key)
    cells = [t['task'], _fmt(ms.get('corrupted'), key, digits, False)]
    cells += [_fmt(ms.get(m), key, digits, m == best) for m in methods]
    ge = ms.get(PAPER, {}).get(f'{key}_mean')
    for m in BASELINES:
      other = ms.get(m, {}).get(f'{key}_mean')
      cells.append(f'{ge - other:+.{digits}f}' if ge is not None and other is not None else 'n/a')
    lines.append('| ' + ' | '.join(cells) + ' |')
  return lines


ROCK_ERRORS = ('porosity_error', 's2_error', 'specific_surface_error')  # rock_metrics.rock_errors


def has_rock(tasks: list[dict]) -> bool:
  return any(f'{ROCK_ERRORS[0]}_mean' in e for t in tasks for e in t['methods'].values())


def rock_table(tasks: list[dict]) -> list[str]:
  """Per task and method: porosity / S2 / specific-surface error (means over the images); in each
  of the three, the lowest of the blind methods in bold."""
  methods = ['corrupted'] + _methods(tasks)
  head = ['task'] + [LABELS[m] for m in methods]
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for t in tasks:
    ms = t['methods']
    best = {}
    for k in ROCK_ERRORS:
      errs = {m: ms[m][f'{k}_mean'] for m in BLIND if f'{k}_mean' in ms.get(m, {})}
      best[k] = min(errs, key=errs.get) if errs else None
    cells = [t['task']]
    for m in methods:
      e = ms.get(m, {})
      if f'{ROCK_ERRORS[0]}_mean' not in e:
        cells.append('n/a')
        continue
      nums = [f'{e[f"{k}_mean"]:.4f}' for k in ROCK_ERRORS]
      cells.append(' / '.join(f'**{v}**' if m == best[k] else v for k, v in zip(ROCK_ERRORS, nums)))
    lines.append('| ' + ' | '.join(cells) + ' |')
  return lines


def first_extractor(tasks: list[dict]) -> str | None:
  for t in tasks:
    if t.get('extractors'):
      return next(iter(t['extractors']))
  return None


def _perception(e: dict, ext: str) -> dict:
  return e.get('perception', {}).get(ext, {})


def perception_table(tasks: list[dict], ext: str) -> list[str]:
  """FD (lower is more realistic) and classifier accuracy per task and method; blind best FD in bold."""
  methods = ['corrupted'] + _methods(tasks)
  head = ['task'] + [LABELS[m] for m in methods]
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for t in tasks:
    ms = t['methods']
    fds = {m: _perception(ms[m], ext)['fd'] for m in BLIND if 'fd' in _perception(ms.get(m, {}), ext)}
    best = min(fds, key=fds.get) if fds else None
    cells = [t['task']]
    for m in methods:
      p = _perception(ms.get(m, {}), ext)
      if 'fd' not in p:
        cells.append('n/a')
        continue
      c = f'{p["fd"]:.1f} ± {p["fd_se"]:.1f}'
      c = f'**{c}**' if m == best else c
      if 'accuracy' in p:
        c += f' ({p["accuracy"]:.2f})'
      cells.append(c)
    lines.append('| ' + ' | '.join(cells) + ' |')
  return lines


def shift_table(rows: list[dict], ext: str) -> list[str]:
  methods = _methods(rows)
  head = ['shift', 'task'] + [LABELS[m] for m in methods] + ['GE on blind front']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for t in rows:
    cells = [t['shift'], t['task']]
    for m in methods:
      e = t['methods'].get(m, {})
      p = _perception(e, ext)
      cells.append(f'{e["psnr_mean"]:.2f} / {p.get("fd", float("nan")):.0f}'
                   + (f' / {p["accuracy"]:.2f}' if 'accuracy' in p else '') if 'psnr_mean' in e else 'n/a')
    front = pareto_front(pd_points(t, ext, BLIND)[0])
    cells.append(', '.join(LABELS[m] for m in front if m in GE_FORMS) or 'no')
    lines.append('| ' + ' | '.join(cells) + ' |')
  return lines


def pd_points(t: dict, ext: str, methods) -> tuple[dict, dict]:
  """{method: (psnr, fd)} and their standard errors for one task."""
  pts, errs = {}, {}
  for m in methods:
    e = t['methods'].get(m, {})
    p = _perception(e, ext)
    if 'psnr_mean' in e and 'fd' in p:
      pts[m] = (e['psnr_mean'], p['fd'])
      errs[m] = (e['psnr_se'], p['fd_se'])
  return pts, errs


def front_lines(tasks: list[dict], ext: str) -> list[str]:
  """Per task: the blind methods on the PSNR / FD front, and whether GE (any form) is on it; the count
  is also given for the paper's forms alone (MAP, sample) against the blind methods without GE+pixels' rows."""
  lines, on, on_plain = [], 0, 0
  plain = tuple(m for m in BLIND if m not in PIXELS)
  paper = set(GE_FORMS) - set(PIXELS)
  ran_pix = any(set(PIXELS) & set(t['methods']) for t in tasks)
  for t in tasks:
    blind, _ = pd_points(t, ext, BLIND)
    every, _ = pd_points(t, ext, BLIND + KNOWN)
    fb, fa = pareto_front(blind), pareto_front(every)
    ge_on = [m for m in GE_FORMS if m in fb]
    on += bool(ge_on)
    on_plain += bool(paper & set(pareto_front(pd_points(t, ext, plain)[0])))
    lines.append(f'- {t["task"]}: blind front {", ".join(LABELS[m] for m in fb) or "none"}; '
                 f'front of all methods {", ".join(LABELS[m] for m in fa) or "none"}'
                 + ('' if ge_on else ' (**GE not on the blind front**)'))
  head = f'GE (MAP or sample) is on the blind methods\' PSNR / FD front on {on_plain} of {len(tasks)} tasks'
  if ran_pix:
    head += f'; with the GE+pixels extension, GE (any form) on {on} of {len(tasks)}'
  lines.insert(0, head + '.')
  return lines


def realism_lines(tasks: list[dict], ext: str) -> list[str]:
  """Per task: GE's most realistic form against G's own random samples, both scored at the same N
  against the same clean images (the run's g_random row); [] when that row was not run."""
  rows, at_most, within = [], 0, 0
  for t in tasks:
    g = _perception(t['methods'].get(REFERENCE[0], {}), ext)
    ge = {m: p for m in GE_FORMS if 'fd' in (p := _perception(t['methods'].get(m, {}), ext))}
    if 'fd' not in g or not ge:
      continue
    m = min(ge, key=lambda k: ge[k]['fd'])
    fd, se = ge[m]['fd'], ge[m]['fd_se']
    ok, close = fd <= g['fd'], fd - se <= g['fd'] + g['fd_se']
    at_most += ok
    within += close and not ok
    verdict = 'at most' if ok else ('above, within one SE each' if close else '**above**')
    rows.append(f'- {t["task"]}: {LABELS[m]} {fd:.1f} ± {se:.1f} against G random {g["fd"]:.1f} ± '
                f'{g["fd_se"]:.1f}: {verdict}')
  if not rows:
    return []
  head = (f'GE\'s most realistic form has an FD at most that of G\'s own random samples (same N, same clean '
          f'images) on {at_most} of {len(rows)} tasks; above it but within one standard error each on {within} more.')
  return [head] + rows


def plot_pd(outdir: str, tasks: list[dict], ext: str) -> list[str]:
  """One perception-distortion figure per task, pd_<task>.png; returns the file names."""
  names = []
  for t in tasks:
    pts, errs = pd_points(t, ext, ('corrupted',) + ROWS)
    if len(pts) < 2:
      continue
    name = f'pd_{t["task"]}.png'
    pd_plot.perception_distortion_figure(os.path.join(outdir, name), pts, errors=errs, title=t['task'],
                                         ylabel=f'FD ({ext} features), lower is better', log_y=True,
                                         labels=LABELS)
    names.append(name)
  return names


def _variant_change(r: dict) -> str:
  """What a tuning run changed: its note, else the --config overrides of its command."""
  if r.get('note'):
    return r['note']
  words = [w for w in r.get('command', '').split() if w.startswith('--config.')]
  return ' '.join(w[len('--config.'):] for w in words) or 'as the config'


def variants_table(outdir: str) -> list[str]:
  """One row per tuning run under <outdir>/variants/*/results.json: both axes, never one alone.

  Per method the mean over the run's tasks of PSNR and of FD (first feature extractor), and on how
  many tasks GE (any form) is on the blind methods' PSNR / FD front.
  """
  runs = []
  for path in sorted(glob.glob(os.path.join(outdir, 'variants', '*', 'results.json'))):
    with open(path) as f:
      runs.append((os.path.basename(os.path.dirname(path)), json.load(f)))
  if not runs:
    return []
  shown = BLIND + (PEER,)
  lines = ['Mean over the run\'s tasks of PSNR (dB) / FD; "front": tasks where GE (any form) is on the blind '
           'PSNR / FD front.', '',
           '| variant | split, n | what it changes | tasks | ' + ' | '.join(LABELS[m] for m in shown) + ' | front |',
           '|---|---|---|---|' + '---|' * len(shown) + '---|']
  for name, r in runs:
    tasks = r.get('tasks', [])
    ext = first_extractor(tasks)
    cells = []
    for m in shown:
      entries = [t['methods'][m] for t in tasks if 'psnr_mean' in t['methods'].get(m, {})]
      ps = [e['psnr_mean'] for e in entries]
      fd = [_perception(e, ext)['fd'] for e in entries if ext and 'fd' in _perception(e, ext)]
      cell = f'{np.mean(ps):.2f}' if ps else 'n/a'
      cells.append(cell + (f' / {np.mean(fd):.0f}' if fd and len(fd) == len(ps) else ''))
    front = 'n/a'  # also where GE ran alone: with no AE-only or GAN-only beside it, no front to be on
    ran_ge = any(set(GE_FORMS) & set(t['methods']) for t in tasks)
    ran_rival = any((set(BLIND) - set(GE_FORMS)) & set(t['methods']) for t in tasks)
    if ext and ran_ge and ran_rival:
      on = sum(bool(set(GE_FORMS) & set(pareto_front(pd_points(t, ext, BLIND)[0]))) for t in tasks)
      front = f'{on}/{len(tasks)}'
    lines.append(f'| {name} | {r["split"]}, {r["n_images"]} | {_variant_change(r)} | {len(tasks)} | '
                 + ' | '.join(cells) + f' | {front} |')
  return lines


def write_markdown(path: str, result: dict, outdir: str) -> None:
  tasks = result['tasks']
  wins = [t['task'] for t in tasks if _best(t['methods'], 'psnr') == PAPER]
  losses = [t['task'] for t in tasks if _best(t['methods'], 'psnr') not in (None, PAPER)]
  lines = [f'# GE on {result["config"]}: {result["split"]} split, {result["n_images"]} images',
           '',
           f'Command: `{result["command"]}`',
           '',
           f'Checkpoints: `{result["workdir"]}`; data: {result["data"]}. Wall time {result["wall_seconds"]:.0f} s '
           f'(solve {result["solve_seconds"]:.0f} s, compile {result["compile_seconds"]:.0f} s) on '
           f'{result["devices"]}.',
           '']
  for u in result.get('updates') or ():  # tasks re-run later (python -m ge_jax.evaluate --update)
    lines += [f'Updated {u["date"]}: {", ".join(u["tasks"])} re-run by `{u["command"]}` ({u["wall_seconds"]:.0f} s '
              f'on {u["devices"]}); the rows of those tasks are from that run.', '']
  lines += ['## PSNR (dB), mean ± standard error; best blind method (AE, GAN, GE) in bold', '']
  lines += markdown_table(tasks, 'psnr', 2)
  lines += ['', '## SSIM, mean ± standard error; best blind method in bold', '']
  lines += markdown_table(tasks, 'ssim', 3)
  if has_rock(tasks):
    lines += ['', '## Rock metrics: porosity error / S2 error / specific-surface error, mean over the images '
              '(lower is better); best blind method in bold', '',
              'Pore = darker than the Otsu threshold of the clean slice, the restoration segmented with the '
              'same threshold; S2 error: RMS over r of the two-point correlation\'s difference; specific '
              'surface in 1 / pixel (ge_jax/rock_metrics.py).', '']
    lines += rock_table(tasks)
  ext = first_extractor(tasks)
  if ext:
    lines += ['', f'## Realism: Frechet distance to the clean images on {ext} features (lower is better), '
              '± bootstrap SE; (classifier accuracy) where labels exist; best blind method in bold', '']
    lines += perception_table(tasks, ext)
    lines += ['', '## Perception-distortion fronts (PSNR up, FD down; Blau & Michaeli 2018)', '']
    lines += front_lines(tasks, ext)
    realism = realism_lines(tasks, ext)
    if realism:
      lines += ['', '## GE against G\'s own realism', ''] + realism
    descr = tasks[0].get('extractors', {})
    lines += ['', 'Feature extractors: ' + '; '.join(f'{k}: {v}' for k, v in descr.items())]
  psnr = lambda t, m: t['methods'].get(m, {}).get('psnr_mean')
  beats = lambda m: [t['task'] for t in tasks if psnr(t, PAPER) is not None and psnr(t, m) is not None
                     and psnr(t, PAPER) > psnr(t, m)]
  n_with = lambda m: sum(psnr(t, m) is not None and psnr(t, PAPER) is not None for t in tasks)
  gan, ae = BASELINES[1], BASELINES[0]
  lines += ['', f'GE (MAP) has the best blind PSNR on {len(wins)} of {len(tasks)} tasks'
            + (f'; not on: {", ".join(losses)}.' if losses else '.')
            + f' GE beats GAN-only on {len(beats(gan))} of {n_with(gan)} tasks'
            + (f' ({", ".join(beats(gan))})' if beats(gan) else '')
            + f', AE-only on {len(beats(ae))} of {n_with(ae)}'
            + f' and CSGM (operator known) on {len(beats(PEER))} of {n_with(PEER)}'
            + (f' ({", ".join(beats(PEER))})' if beats(PEER) else '') + '.',
            '', 'CSGM, GE-op and the classical restorations know the operator A (its kernel, mask or '
            'factor): references, not blind methods. GE sample is the same model as GE, sampled by '
            'Langevin dynamics instead of minimised (ge_jax/solver.py). Where GE+pixels returns the mean of its '
            'chains\' samples (an estimate of the posterior mean), "GE+pixels, one chain" is its first chain\'s '
            'sample from the same run (a posterior sample). G random is G(z), z ~ N(0, I), the input '
            'ignored: the realism of G\'s own samples at this N, the bar for GE\'s realism (an FD is biased '
            'upwards at small N, so it is measured here at the same N, not on a large sample set). '
            'For compress only the code E(x) is given: GAN-only has no image to match and CSGM would be '
            'GE itself.', '', '## Settings', '', '| setting | value |', '|---|---|']
  lines += [f'| {k} | {v} |' for k, v in result['settings'].items()]
  if result.get('note'):
    lines += ['', f'Variant: {result["note"]}']
  if result.get('shift_suite') and ext:
    lines += ['', '## Off the training distribution: the shift suite (ge_jax/shift.py)', '',
              f'{result["shift_suite"][0]["n_images"]} test images, shifted, then corrupted; scored against the '
              f'shifted clean images. Cells: PSNR (dB) / FD ({ext}) / accuracy; the classifier itself is off its '
              'training distribution here, so accuracies are relative.', '']
    lines += shift_table(result['shift_suite'], ext)
  fig = [f for f in ('convergence.png', 'lambda_sweep.png') if os.path.exists(os.path.join(outdir, f))]
  fig += [f'pd_{t["task"]}.png' for t in tasks if os.path.exists(os.path.join(outdir, f'pd_{t["task"]}.png'))]
  grids = [t['task'] for t in tasks if os.path.exists(os.path.join(outdir, f'grid_{t["task"]}.png'))]
  if fig or grids:
    lines += ['', '## Figures', '']
    lines += [f'![{f}]({f})' for f in fig]
    lines += [f'- {g}: [grid_{g}.png](grid_{g}.png)' for g in grids]
  note_path = os.path.join(outdir, 'NOTE.md')  # a hand-written analysis kept beside the numbers
  if os.path.isfile(note_path):  # (a folder of that name is not a note; bytes that are no UTF-8 shown as such)
    with open(note_path, encoding='utf-8', errors='replace') as f:
      lines += ['', f.read().strip()]
  var = variants_table(outdir)
  if var:
    lines += ['', '## Variants tried (tuning runs on the validation split)', ''] + var
  fileio.write_text(path, '\n'.join(lines) + '\n')


def plot_convergence(path: str, tasks: list[dict]) -> None:
  # matplotlib here, not at the top: its backend is chosen only when a figure is written, so that
  # importing the report leaves a notebook's own plotting alone.
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  tasks = [t for t in tasks if t.get('curves')]
  if not tasks:
    return
  fig, axes = plt.subplots(len(tasks), 2, figsize=(9, 2.1 * len(tasks)), squeeze=False)
  for row, t in zip(axes, tasks):
    for m, cur in t['curves'].items():
      obj = np.asarray(cur['objective'])
      row[0].plot(np.arange(len(obj)), obj / obj[0], color=BY_NAME[m].color, label=LABELS[m])
      row[1].plot(cur['psnr_steps'], cur['psnr'], color=BY_NAME[m].color, label=LABELS[m])
    row[0].set_yscale('log')
    row[0].set_ylabel(t['task'], fontsize=8)
    row[1].set_ylabel('PSNR (dB)', fontsize=8)
  axes[0, 0].set_title('objective / objective at step 0 (batch mean)', fontsize=9)
  axes[0, 1].set_title('PSNR of G(z) vs clean (batch mean)', fontsize=9)
  axes[0, 1].legend(fontsize=7)
  for ax in axes[-1]:
    ax.set_xlabel('solver step')
  fig.tight_layout()
  viz.save_figure(path, fig, dpi=80)


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
  viz.save_figure(path, fig, dpi=90)


def without_per_image(scores: dict) -> dict:
  """Scores for results.json: no per-image lists (solve.py's metrics.json has them)."""
  out = {k: v for k, v in scores.items() if not k.startswith('_') and k != 'indices'}
  def strip(e):
    e = {k: v for k, v in e.items() if k != 'per_image'}
    if 'perception' in e:
      e['perception'] = {x: {k: v for k, v in p.items() if k != 'feature_distance'} for x, p in e['perception'].items()}
    return e
  out['methods'] = {m: strip(e) for m, e in scores['methods'].items()}
  return out


def write_results(outdir: str, result: dict) -> None:
  """results.json and results.md of a finished evaluation."""
  fileio.write_json(os.path.join(outdir, 'results.json'), result)
  ext = first_extractor(result['tasks'])
  if ext and result.get('figures', True):
    plot_pd(outdir, result['tasks'], ext)
  write_markdown(os.path.join(outdir, 'results.md'), result, outdir)


def rerender(outdir: str) -> str:
  """Writes <outdir>/results.md again from its results.json (after adding variants/ or editing NOTE.md)."""
  path = os.path.join(outdir, 'results.json')
  if not os.path.isfile(path):
    raise UserError(f'{outdir} has no results.json; run `python -m ge_jax.evaluate --outdir={outdir}` first.')
  with open(path) as f:
    result = json.load(f)
  out = os.path.join(outdir, 'results.md')
  write_markdown(out, result, outdir)
  return out
