"""Pictures of how G's latent space, E's code space and the image space relate.

  python -m ge_jax.latent_pictures --config=configs/mnist.py --workdir=runs/mnist --outdir=results/mnist

writes to --outdir (`make_pictures`):
  latent_pca.png            left: a 2-D PCA (fitted on the codes of real test images) of E-codes of
                            real test images (coloured by label), of G samples E(G(z)), of corrupted
                            inputs E(y) and of GE's solutions E(G(z*)), with clean -> corrupted -> GE
                            links for a few images, and a z-interpolation traced through E;
                            right: PCA of G's latent space: prior draws z ~ N(0, I) and GE's z*.
  latent_interpolation.png  rows: G(z_t) along a straight line z_0 -> z_1 (data space through G),
                            Dec(E(G(z_t))) (the same path seen through the AE), and Dec of the straight
                            line between the two endpoint codes (interpolating in E's space instead).
  latent_stats.json         the numbers behind the pictures (code distances, norms of z*).
"""

from __future__ import annotations

import os

import jax
import numpy as np

from ge_jax import batching, fileio, operators, solver, tasks, viz
from ge_jax import methods as method_table
from ge_jax.models import Nets


def _pca(fit: np.ndarray, k: int = 2):
  """(project, explained variance ratios): a PCA fitted on `fit` (N, D)."""
  mu = fit.mean(0)
  _, s, vt = np.linalg.svd(fit - mu, full_matrices=False)
  var = s**2 / np.sum(s**2)
  return (lambda a: (np.asarray(a) - mu) @ vt[:k].T), var[:k]


def make_pictures(config, params, clean: np.ndarray, labels: np.ndarray | None, outdir: str, *,
                  n_ge: int = 64, task: str = 'denoise-0.3', steps: int = 10, progress: bool = False) -> dict:
  """Writes latent_pca.png, latent_interpolation.png and latent_stats.json; returns the stats."""
  # matplotlib here: its backend is chosen only when a figure is written (a notebook keeps its own).
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  os.makedirs(outdir, exist_ok=True)
  nets = Nets(config)
  n = len(clean)
  bs = min(256, n)
  key = jax.random.key(int(config.seed) + 4242)
  z_prior = np.asarray(jax.random.normal(key, (n, nets.latent_dim)))
  g = jax.jit(nets.G)
  samples = batching.map_batched(g, params['generator'], z_prior, bs)
  m_real = solver.encode_all(nets, params, clean, bs)
  m_gen = solver.encode_all(nets, params, samples, bs)

  n_ge = min(n_ge, n)
  y, z_ge, ge_x = solve_ge(config, params, clean[:n_ge], task, progress)
  m_ge = solver.encode_all(nets, params, ge_x, bs)
  m_y = solver.encode_all(nets, params, y, bs)

  # z interpolation between two prior draws: through G (data space), then E (code space).
  t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
  z_line = (1 - t) * z_prior[0] + t * z_prior[1]
  x_line = np.asarray(g(params['generator'], z_line))
  m_line = solver.encode_all(nets, params, x_line, len(x_line))
  recon_line = solver.decode_all(nets, params, m_line, len(m_line))
  code_line = solver.decode_all(nets, params, (1 - t) * m_line[0] + t * m_line[-1], len(t))
  viz.save_rows(os.path.join(outdir, 'latent_interpolation.png'), [x_line, recon_line, code_line],
                ['G(z_t)', 'Dec(E(G(z_t)))', 'Dec(code line)'], max_cols=steps)

  project, var = _pca(m_real)
  fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
  ax = axes[0]
  pr = project(m_real)
  sc = ax.scatter(pr[:, 0], pr[:, 1], c=labels if labels is not None else 'tab:gray', cmap='tab10', s=6,
                  alpha=0.5, label='E(x), real test images')
  if labels is not None:
    fig.colorbar(sc, ax=ax, label='digit')
  pg = project(m_gen)
  ax.scatter(pg[:, 0], pg[:, 1], marker='x', s=8, c='k', alpha=0.35, label='E(G(z)), G samples')
  py, pge, pc = project(m_y), project(m_ge), project(m_real[:n_ge])
  ax.scatter(py[:, 0], py[:, 1], marker='v', s=16, c='tab:orange', label=f'E(y), corrupted ({task})')
  ax.scatter(pge[:, 0], pge[:, 1], marker='*', s=30, c='tab:red', label='E(G(z*)), GE solutions')
  for i in range(min(12, n_ge)):
    ax.plot([pc[i, 0], py[i, 0], pge[i, 0]], [pc[i, 1], py[i, 1], pge[i, 1]], c='tab:red', lw=0.6, alpha=0.7)
  pl = project(m_line)
  ax.plot(pl[:, 0], pl[:, 1], '-o', c='tab:green', ms=3, lw=1.5, label='E(G(z_t)), z_0 -> z_1 line')
  ax.set_title(f'E code space, PCA of real codes ({100 * var.sum():.0f}% of variance)', fontsize=10)
  ax.set_xlabel('PC 1')
  ax.set_ylabel('PC 2')
  ax.legend(fontsize=7, loc='best')
  ax = axes[1]
  project_z, var_z = _pca(np.concatenate([z_prior, z_ge]))
  a, b = project_z(z_prior), project_z(z_ge)
  ax.scatter(a[:, 0], a[:, 1], s=6, c='tab:gray', alpha=0.5, label='z ~ N(0, I)')
  ax.scatter(b[:, 0], b[:, 1], marker='*', s=30, c='tab:red', label='GE solutions z*')
  zl = project_z(z_line)
  ax.plot(zl[:, 0], zl[:, 1], '-o', c='tab:green', ms=3, label='z_0 -> z_1 line')
  ax.set_title(f'G latent space, PCA ({100 * var_z.sum():.0f}% of variance)', fontsize=10)
  ax.legend(fontsize=7)
  fig.tight_layout()
  viz.save_figure(os.path.join(outdir, 'latent_pca.png'), fig, dpi=80)

  dist = lambda a, b: float(np.mean(np.linalg.norm(a - b, axis=1)))
  stats = dict(task=task, n_real=n, n_ge=n_ge, code_dim=int(m_real.shape[1]), latent_dim=int(nets.latent_dim),
               pca_code_variance=[float(v) for v in var], pca_z_variance=[float(v) for v in var_z],
               mean_code_norm_real=float(np.mean(np.linalg.norm(m_real, axis=1))),
               mean_code_dist_clean_to_corrupted=dist(m_real[:n_ge], m_y),
               mean_code_dist_clean_to_ge=dist(m_real[:n_ge], m_ge),
               mean_code_dist_corrupted_to_ge=dist(m_y, m_ge),
               mean_z_norm_prior=float(np.mean(np.linalg.norm(z_prior, axis=1))),
               mean_z_norm_ge=float(np.mean(np.linalg.norm(z_ge, axis=1))))
  fileio.write_json(os.path.join(outdir, 'latent_stats.json'), stats)
  return stats


def solve_ge(config, params, clean: np.ndarray, task: str, progress: bool = False):
  """(observation y, z*, G(z*)) of GE on evaluation task `task` (y = clean for 'compress'), with the
  settings a run of that task resolves (methods.TABLE's GE)."""
  c, op_name = tasks.task_config(config, task)
  nets = Nets(c)
  op = operators.make(op_name, c.ops, nets.image_shape)
  idx = np.arange(len(clean))
  y = clean if op.code_only else operators.corrupt_images(op, jax.random.key(c.ops.seed), clean, idx)[0]
  bs = min(int(c.solve.batch_size), len(clean))
  ge = method_table.BY_NAME[method_table.PAPER]
  s = ge.settings(c, method_table.Task.of(op_name, op, c.ops))
  res = solver.solve_all(nets, s.spec, params, solver.encode_all(nets, params, y, bs), jax.random.key(c.solve.seed),
                         lr=s.lr, lam=s.lam, batch_size=bs, indices=idx, progress=progress)
  return y, res.z, res.x
