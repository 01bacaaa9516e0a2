"""Reporting an evaluation: results.md (tables, the reading of them, settings, figures) and the plots.

Pure writers of what `ge_jax.evaluate` measured (its result dict); nothing here solves anything.
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np

from ge_jax import fileio, viz

LABELS = dict(corrupted='input', ae='AE only', gan='GAN only', ge='GE', csgm='CSGM (A known)')



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
  fileio.write_text(path, '\n'.join(lines) + '\n')


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
  """Scores for results.json: no per-image lists (they stay in the workdir's metrics.json)."""
  out = {k: v for k, v in scores.items() if not k.startswith('_') and k != 'indices'}
  out['methods'] = {m: {k: v for k, v in e.items() if k != 'per_image'} for m, e in scores['methods'].items()}
  return out


def write_results(outdir: str, result: dict) -> None:
  """results.json and results.md of a finished evaluation."""
  fileio.write_json(os.path.join(outdir, 'results.json'), result)
  write_markdown(os.path.join(outdir, 'results.md'), result, outdir)
