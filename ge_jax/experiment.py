"""One restoration experiment: corrupt a batch, restore it with every method, score and save it.

Methods (the latent ones through the same solver, same random starts):
  ae         Dec(E(y))                                   the autoencoder alone
  gan        argmin_z ||G(z) - y||^2 + lam prior(z)      the GAN alone (pixel-space latent search)
  ge         argmin_z ||E(G(z)) - E(y)||^2 + lam prior   the Generative Encoder (the paper: MAP)
  ge_sample  z ~ exp(-||E(G(z)) - E(y)||^2 / (2 lam)) N(z; 0, I), Langevin: a posterior sample of
             the same model (config.solve.ge_sample), realistic where the MAP is an average
  ge_pix     z ~ exp(-(||E(G(z)) - E(y)||^2 + lam / s2 ||G(z) - y||^2) / (2 lam)) N(z; 0, I): the
             posterior sample given the code AND the observed pixels (an extension, still blind:
             y is taken as the image with error variance s2 = config.solve.ge_pix.pixel_var);
             with output 'mean' (the mean of the chains' samples: the posterior mean's estimate) its
             first chain's sample comes with it as row `ge_pix_one` (a posterior sample, at no cost)
  csgm       argmin_z ||A(G(z)) - y||^2 + lam prior      operator known (Bora et al.)
  ge_op      argmin_z ||E(A(G(z))) - E(y)||^2 + lam prior operator known, inside the encoder (2019 preprint)
  classical  scikit-image with the known kernel / mask (ge_jax.classical), tuned on validation
  g_random   G(z), z ~ N(0, I), the input ignored: a reference, not a restoration. G's own realism
             scored at the same N against the same clean images as the methods (an FD is biased
             upwards at small N, so G's FD on a 10,000-sample set is not a fair bar for 200 restorations)

Used by solve.py, the evaluation and the notebook.
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

from ge_jax import classical, fileio, metrics, models, operators, perception, solver, tasks, viz
from ge_jax.errors import UserError
from ge_jax.methods import GE_FORMS, METHODS, OBJECTIVE, ROWS, SAMPLED, SHORT_LABELS
from ge_jax.models import Nets

ROW_LABELS = dict(clean='clean', corrupted='corrupted') | SHORT_LABELS
DOMAIN_METRICS = ('auto', 'rock', 'none')            # config.eval.domain_metrics
_G_RANDOM_STREAM = 2_000_003  # fold_in tag of g_random's latents, apart from the solver's draws


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


def method_setting(solve_cfg, name: str, method: str):
  """config.solve.<name>_<method> when the config has it (lam_ge, lam_gan, lam_csgm), else config.solve.<name>."""
  value = solve_cfg.get(f'{name}_{method}', None) if hasattr(solve_cfg, 'get') else None
  if value is None:
    value = solve_cfg.get(name, None) if hasattr(solve_cfg, 'get') else getattr(solve_cfg, name, None)
  if value is None:
    raise UserError(f'config.solve.{name}_{method} is not set; give it a value (see configs/mnist.py).')
  return value


def method_solve(solve_cfg, method: str, record_every: int = 0,
                 code_only: bool = False) -> tuple[solver.SolverSpec, float, float]:
  """(spec, lr, lam) of a latent method: config.solve with lam_<method>; ge_sample and ge_pix from
  config.solve.ge_sample, ge_pix's own lam (else ge_sample's) and its pixel weight lam / s2 from
  config.solve.ge_pix; GE's MAP on a code-only task (compression) with config.solve.compress's
  steps, restarts and lam where set."""
  spec = solver.SolverSpec.from_config(solve_cfg, OBJECTIVE[method])
  if method in SAMPLED:
    s = solve_cfg.ge_sample
    restarts, output = sampler_output(solve_cfg, method)
    spec = dataclasses.replace(spec, sampler='langevin', prior='l2', steps=s.steps, restarts=restarts,
                               n_init=s.n_init, output=output, schedule='constant',
                               lam_count=s.get('lam_count', None), temperature=s.get('temperature', 1.0))
    lr, lam = s.lr, s.lam
    if method == 'ge_pix':
      # Its own lam where set: the two chains were tuned apart (configs/mnist.py), and a smaller code
      # variance that sharpens the code-only sample does not carry over to the chain with pixels.
      lam = _ge_pix_setting(solve_cfg, 'lam', float(lam), "the code error's variance, as ge_sample's lam")
      s2, cap = pixel_var(solve_cfg), max_pixel_step(solve_cfg)
      spec = dataclasses.replace(spec, pixel_weight=float(lam) / s2,
                                 temperature=_ge_pix_setting(solve_cfg, 'temperature', 1.0,
                                                             'the Langevin temperature, 1 = the posterior'))
      # The chain's step on the pixel term is lr / (2 s2): a small s2 makes that term stiff, and a
      # step past the cap makes the chain unstable (docs/FIDELITY.md, section 5), so lr is capped.
      lr = min(float(lr), 2.0 * s2 * cap)
  else:
    lr, lam = method_setting(solve_cfg, 'lr', method), method_setting(solve_cfg, 'lam', method)
    if code_only and method == 'ge':
      # The code is given exactly: no corruption for the MAP to overfit, so it runs to convergence
      # rather than the image tasks' early-stopped budget (docs/FIDELITY.md, section 2).
      spec = dataclasses.replace(spec, steps=_compress_setting(solve_cfg, 'steps', spec.steps),
                                 restarts=_compress_setting(solve_cfg, 'restarts', spec.restarts))
      lam = _compress_setting(solve_cfg, 'lam', lam)
  return dataclasses.replace(spec, record_every=min(record_every, spec.steps)), lr, lam


# ge_pix's settings for configs that do not set them (e.g. saved before the method existed):
# pixel_var as chosen on validation for the corruption-trained AE and the VAE (configs/mnist_aug.py,
# configs/mnist_vae.py); the largest step on the pixel term, lr / (2 pixel_var): on MNIST
# (validation) 0.05 was stable and 0.167 was not.
DEFAULT_PIXEL_VAR = 0.3
DEFAULT_MAX_PIXEL_STEP = 0.05


def _compress_setting(solve_cfg, name: str, default):
  """config.solve.compress.<name> for GE's MAP on a code-only task; unset (no block, or None): default."""
  block = solve_cfg.get('compress', None) or {}
  value = block.get(name, None)
  if value is None:
    return default
  if name == 'lam':
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float('inf'):
      raise UserError(f'config.solve.compress.lam={value!r} must be a number >= 0 (the prior weight on a code-only task).')
    return float(value)
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise UserError(f'config.solve.compress.{name}={value!r} must be an integer >= 1 (GE\'s {name} on a code-only task).')
  return value


def _ge_pix_setting(solve_cfg, name: str, default: float, what: str) -> float:
  block = solve_cfg.get('ge_pix', None)
  value = None if block is None else block.get(name, None)
  value = default if value is None else value  # unset (absent or None): the default
  if not (isinstance(value, (int, float)) and 0 < value < float('inf')):
    raise UserError(f'config.solve.ge_pix.{name}={value!r} must be a number > 0 ({what}).')
  return float(value)


def sampler_output(solve_cfg, method: str) -> tuple[int, str]:
  """A sampled method's (chains per image, output): config.solve.<method>'s, each else
  config.solve.ge_sample's (a config saved before ge_pix existed has no block of its own)."""
  block, s = solve_cfg.get(method, None) or {}, solve_cfg.ge_sample
  restarts, output = block.get('restarts', s.restarts), block.get('output', s.output)
  if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
    raise UserError(f'config.solve.{method}.restarts={restarts!r} must be an integer >= 1 (chains per image).')
  if output not in solver.OUTPUTS:
    raise UserError(f'config.solve.{method}.output={output!r} is not one of {", ".join(map(repr, solver.OUTPUTS))}.')
  solver.check_mean_output(output, restarts, f'solve.{method}', 'chains')
  return restarts, output


def pixel_var(solve_cfg) -> float:
  """ge_pix's pixel error variance s2 (config.solve.ge_pix.pixel_var, else DEFAULT_PIXEL_VAR)."""
  return _ge_pix_setting(solve_cfg, 'pixel_var', DEFAULT_PIXEL_VAR, "the variance of a pixel's error on [-1, 1]")


def max_pixel_step(solve_cfg) -> float:
  """ge_pix's cap on lr / (2 s2) (config.solve.ge_pix.max_pixel_step, else DEFAULT_MAX_PIXEL_STEP)."""
  return _ge_pix_setting(solve_cfg, 'max_pixel_step', DEFAULT_MAX_PIXEL_STEP, 'the largest Langevin step on the pixel term')


def classical_setting(op_name: str, ops_cfg) -> tuple[str | None, Any]:
  """(method, parameter) tuned on validation for the evaluation task these ops make, else defaults."""
  ops = dict(ops_cfg.items()) if hasattr(ops_cfg, 'items') else dict(ops_cfg)
  # The most specific task these ops make: 'deblur-noisy' (blur_noise_sigma 0.1) before 'deblur'.
  matches = [(len(spec.overrides), name) for name, spec in tasks.EVAL_TASKS.items()
             if spec.operator == op_name and all(ops.get(k) == v for k, v in spec.overrides)
             and name in classical.MNIST_VALIDATION]
  if not matches:
    return None, None
  method, param, _ = classical.MNIST_VALIDATION[max(matches)[1]]
  return method, param


def restore(config, params, *, task: str, clean: np.ndarray | None = None, corrupted: np.ndarray | None = None,
            indices: np.ndarray | None = None, methods=METHODS, progress: bool = True,
            record_every: int = 0, place=None, plan=None) -> Outcome:
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
    record_every: keep z every k solver steps (for convergence curves), 0 = off.
    place: sharding hook passed to the solver (see parallel.py).
    plan: the solver's ExecutionPlan (default: solver.ExecutionPlan.auto()).
  """
  nets = Nets(config)
  unknown = [m for m in methods if m not in METHODS]
  if unknown:
    raise UserError(f'unknown method(s) {unknown}; choose from {", ".join(METHODS)}.')
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

  op_params: Any = {}
  if task != 'none':
    corrupted, op_params = operators.corrupt_images(op, jax.random.key(config.ops.seed), clean, indices)

  scfg = config.solve
  bs = min(int(scfg.batch_size), n)
  key = jax.random.key(scfg.seed)
  recon, objective, traces, z_traces, diverged, notes = {}, {}, {}, {}, {}, {}
  t0 = time.time()
  with _compile_timer() as compile_s:
    if op.code_only:  # compression: only m = E(x) is known
      codes = solver.encode_all(nets, params, clean, bs)
      corrupted = None
    else:
      codes = (solver.encode_all(nets, params, corrupted, bs)
               if {*GE_FORMS, 'ge_op', 'ae'} & set(methods) else None)
    if 'ae' in methods:
      recon['ae'] = solver.decode_all(nets, params, codes, bs)
    for method in [m for m in methods if m not in ('ae', 'g_random')]:
      if method == 'gan' and op.code_only:
        notes['gan'] = 'not applicable: compression gives only the code E(x), no image to match'
        continue
      if method == 'ge_pix' and op.code_only:
        notes['ge_pix'] = 'identical to GE sample for compression: no image is observed, only its code'
        continue
      if method in ('csgm', 'ge_op', 'classical') and task == 'none':
        notes[method] = 'not applicable: the operator is unknown for already-corrupted input'
        continue
      if method in ('csgm', 'ge_op') and op.code_only:
        notes[method] = 'identical to GE for compression (the operator is E itself)'
        continue
      if method == 'classical':
        if not classical.has_classical(task):
          notes[method] = f'no classical restoration for {task!r}'
          continue
        name, param = classical_setting(task, config.ops)
        recon[method] = classical.restore(task, corrupted, op_params, config.ops, param, name)
        continue
      spec, lr, lam = method_solve(scfg, method, record_every, code_only=op.code_only)
      if method == 'csgm' and scfg.get('likelihood', 'gaussian') == 'censored':
        spec = dataclasses.replace(spec, censor_sigma=op.noise_sigma)  # 0 for tasks without Gaussian noise
      target = codes if method in (*GE_FORMS, 'ge_op') else corrupted
      known = method in solver.FORWARD_OBJECTIVES
      side = op_params if known else ({'observed': corrupted} if method == 'ge_pix' else None)
      res = solver.solve_all(
          nets, spec, params, target, key, lr=lr, lam=lam, batch_size=bs,
          op_params=side, indices=indices,
          forward=op.forward if known else None, progress=progress, place=place, plan=plan)
      recon[method], objective[method], traces[method] = res.x, res.objective, res.loss_trace
      if method == 'ge_pix' and res.x_one is not None:  # the mean's first chain: one posterior sample
        recon['ge_pix_one'] = res.x_one
        diverged['ge_pix_one'] = [int(i) for i in indices[~np.isfinite(res.x_one.reshape(n, -1)).all(axis=1)]]
      if res.z_trace is not None:
        z_traces[method] = res.z_trace
      diverged[method] = [int(i) for i in indices[res.diverged]]
    if 'g_random' in methods:  # last: a reference row, listed after the methods
      recon['g_random'] = g_random(nets, params, key, indices, bs)
  wall = time.time() - t0
  return Outcome(task=task, description=op.description, indices=indices, clean=clean, corrupted=corrupted,
                 recon=recon, objective=objective, loss_trace=traces, diverged=diverged, notes=notes,
                 compile_seconds=round(compile_s[0], 2), solve_seconds=round(wall - compile_s[0], 2),
                 z_trace=z_traces)


def g_random(nets, params, key, indices: np.ndarray, batch_size: int) -> np.ndarray:
  """G(z_i), z_i ~ N(0, I) drawn from (key, image index i): one random sample of G per image."""
  stream = jax.random.fold_in(key, _G_RANDOM_STREAM)
  z = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(stream, i), (nets.latent_dim,)))(
      np.asarray(indices, np.int32))
  return models.apply_batched(nets.G, params['generator'], z, batch_size)


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
  from ge_jax import rock_metrics
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
  if extractors and out.clean is not None:
    ps = perception.perception_scores(rows, out.clean, labels, extractors)
    result['extractors'] = ps['extractors']
    for name, per_ext in ps['methods'].items():
      result['methods'][name]['perception'] = per_ext
  return result


# The rock errors (rock_metrics.score_entry) as solve.py's table shows them: key, column head.
ROCK_COLUMNS = (('porosity_error', 'poro err'), ('s2_error', 'S2 err'), ('specific_surface_error', 'surf err'))


def table(scores: dict) -> str:
  """A plain-text table of the scores (what solve.py prints)."""
  ext = next(iter(scores.get('extractors', {})), None)  # the first (the classifier where there is one)
  rock = any('porosity_error_mean' in e for e in scores['methods'].values())
  head = f'{"method":<10} {"PSNR (dB)":>16} {"SSIM":>16}'
  if rock:
    head += ''.join(f' {label:>9}' for _, label in ROCK_COLUMNS)
  # Accuracy only where labels and the classifier exist (else the column would stay empty).
  acc = ext and any('accuracy' in e.get('perception', {}).get(ext, {}) for e in scores['methods'].values())
  if ext:
    head += f' {"FD (" + ext + ")":>22} {"KID x 1e3":>16}' + (f' {"accuracy":>9}' if acc else '')
  lines = [f'task: {scores["task"]} ({scores["description"]}), {scores["n_images"]} images', head]
  for name, e in scores['methods'].items():
    if 'psnr_mean' in e:
      line = (f'{name:<10} {e["psnr_mean"]:>9.2f} +- {e["psnr_se"]:<4.2f} '
              f'{e["ssim_mean"]:>9.3f} +- {e["ssim_se"]:<5.3f}')
      if rock:  # means only: the columns stay narrow (metrics.json has the standard errors)
        line += ''.join(f' {e[k + "_mean"]:>9.4f}' if k + '_mean' in e else f' {"n/a":>9}' for k, _ in ROCK_COLUMNS)
      p = e.get('perception', {}).get(ext, {})
      if 'fd' in p:
        line += (f' {p["fd"]:>13.1f} +- {p["fd_se"]:<5.1f} {1e3 * p["kid"]:>9.2f} +- {1e3 * p["kid_se"]:<4.2f}'
                 + (f' {p["accuracy"]:>9.3f}' if 'accuracy' in p else ''))
      lines.append(line)
    else:
      lines.append(f'{name:<10} {"(no clean images: not scored)":>33}')
    if e.get('diverged'):
      lines.append(f'{"":<10} diverged images: {e["diverged"][:20]}')
  for name, note in scores.get('notes', {}).items():
    lines.append(f'{name:<10} {note}')
  lines.append(f'solve {scores["solve_seconds"]:.1f} s + compile {scores["compile_seconds"]:.1f} s')
  return '\n'.join(lines)


def save(out: Outcome, outdir: str, scores: dict, max_cols: int = 16) -> dict[str, str]:
  """Writes reconstructions.npz, grid.png and metrics.json into `outdir`; returns their paths."""
  os.makedirs(outdir, exist_ok=True)
  paths = dict(npz=os.path.join(outdir, 'reconstructions.npz'), grid=os.path.join(outdir, 'grid.png'),
               metrics=os.path.join(outdir, 'metrics.json'))
  arrays = {k: v for k, v in dict(clean=out.clean, corrupted=out.corrupted).items() if v is not None}
  arrays.update(out.recon)
  fileio.save_npz(paths['npz'], indices=out.indices, **arrays)
  order = ['clean', 'corrupted', *ROWS]
  rows = [(k, arrays[k]) for k in order if k in arrays]
  viz.save_rows(paths['grid'], [np.nan_to_num(r, nan=-1.0) for _, r in rows],
                [ROW_LABELS[k] for k, _ in rows], max_cols=max_cols)
  fileio.write_json(paths['metrics'], scores)
  return paths
