"""The perception-distortion figure (after Blau & Michaeli, CVPR 2018): one per task.

PSNR on x (distortion; right is better), FD or KID on y (perception; down is better), one point
per method, or per method and solver budget when given (a method's budgets joined by a line).
The Pareto front (`perception.pareto_front`: no other point has both higher-or-equal PSNR and
lower-or-equal FD) is drawn as a dashed staircase and its points are ringed.

  front = pd_plot.perception_distortion_figure(
      'pd_deblur.png', {'ae': (21.3, 27.0), 'ge': {'100 steps': (19.9, 463.0), '1000 steps': (20.4, 300.0)}},
      errors={'ae': (0.2, 3.1)}, title='deblur', ylabel='FD (classifier features)')

Matplotlib's object API with the Agg canvas: no global backend state, works headless.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from ge_jax import fileio
from ge_jax.errors import UserError
from ge_jax.perception import pareto_front

Point = tuple[float, float]


def flatten(points: Mapping[str, Point | Mapping[str, Point]]) -> dict[str, Point]:
  """{method: point} or {method: {budget: point}} -> {'method' or 'method@budget': point}."""
  out = {}
  for method, p in points.items():
    if isinstance(p, Mapping):
      for budget, q in p.items():
        out[f'{method}@{budget}'] = (float(q[0]), float(q[1]))
    else:
      if len(p) != 2:
        raise UserError(f'point of {method!r} must be (psnr, fd), got {p!r}.')
      out[method] = (float(p[0]), float(p[1]))
  return out


def points_from_scores(psnr: Mapping[str, tuple[float, float]], perception: dict, extractor: str,
                       key: str = 'fd') -> tuple[dict[str, Point], dict[str, Point]]:
  """(points, errors) for the figure from {method: (psnr_mean, psnr_se)} and a
  `perception.perception_scores` result: key 'fd' or 'kid' of the named extractor."""
  pts, errs = {}, {}
  for method, (p, p_se) in psnr.items():
    e = perception.get('methods', {}).get(method, {}).get(extractor, {})
    if key in e:
      pts[method] = (float(p), float(e[key]))
      errs[method] = (float(p_se), float(e.get(f'{key}_se', float('nan'))))
  return pts, errs


def front_line(task: str, points: Mapping[str, Point | Mapping[str, Point]], what: str = 'FD') -> str:
  """One sentence naming the methods on the task's perception-distortion front."""
  front = pareto_front(flatten(points))
  return f'{task}: on the PSNR / {what} Pareto front: {", ".join(front) if front else "none"}'


def perception_distortion_figure(path: str, points: Mapping[str, Point | Mapping[str, Point]], *,
                                 errors: Mapping[str, Point | Mapping[str, Point]] | None = None,
                                 title: str = '', xlabel: str = 'PSNR (dB), higher is better',
                                 ylabel: str = 'FD, lower is better', log_y: bool = False,
                                 labels: Mapping[str, str] | None = None) -> list[str]:
  """Writes the figure to `path` (PNG, atomically); returns the points on the Pareto front.

  Args:
    points: {method: (psnr, fd)} or {method: {budget: (psnr, fd)}} (budgets in the order given).
    errors: the same layout with (psnr_se, fd_se), drawn as error bars (optional, any subset).
    labels: display names of methods (default: the keys).
    log_y: a log y axis (FDs of different methods often span orders of magnitude).
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  flat = flatten(points)
  if not flat:
    raise UserError('a perception-distortion figure needs at least one (psnr, fd) point.')
  errs = flatten(errors) if errors else {}
  front = pareto_front(flat)
  labels = dict(labels or {})

  fig = Figure(figsize=(6.4, 4.8), dpi=110)
  FigureCanvasAgg(fig)
  ax = fig.add_subplot()
  colours = {m: f'C{i % 10}' for i, m in enumerate(points)}
  for method, p in points.items():
    name = labels.get(method, method)
    keys = [f'{method}@{b}' for b in p] if isinstance(p, Mapping) else [method]
    xs = np.array([flat[k][0] for k in keys])
    ys = np.array([flat[k][1] for k in keys])
    ax.plot(xs, ys, '-o' if len(keys) > 1 else 'o', color=colours[method], label=name, ms=6, lw=1.2)
    for k, x, y in zip(keys, xs, ys):
      if k in errs and all(math.isfinite(v) for v in (x, y, *errs[k])):
        ax.errorbar(x, y, xerr=errs[k][0], yerr=errs[k][1], color=colours[method], lw=0.8, capsize=2)
      text = name if len(keys) == 1 else f'{name} {k.split("@", 1)[1]}'
      if math.isfinite(x) and math.isfinite(y):
        ax.annotate(text, (x, y), textcoords='offset points', xytext=(5, 4), fontsize=8)
  if front:
    # The edge of the region the front dominates (upper left of each front point): a staircase.
    fx, fy = zip(*sorted(flat[k] for k in front))
    ax.step(fx, fy, where='pre', ls='--', color='0.4', lw=1, label='Pareto front')
    ax.scatter(fx, fy, s=150, facecolors='none', edgecolors='0.2', lw=1)
  if log_y and all(v[1] > 0 for v in flat.values() if math.isfinite(v[1])):
    ax.set_yscale('log')
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title + (f'\nfront: {", ".join(front)}' if front else ''), fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc='best')
  fig.tight_layout()
  with fileio.atomic_path(path) as tmp:
    fig.savefig(tmp, format='png')
  return front
