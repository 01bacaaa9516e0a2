"""Pre-training: the GAN first, then the autoencoder on real images and samples of G (the method).

Pure, jit-compiled train steps (`make_gan_step`, `make_ae_step`) and one host loop that drives
either phase with checkpoints, a progress bar, a JSONL loss log and sample pictures. Everything
random is a function of (seed, step), so a resumed run continues exactly as an uninterrupted one.
A phase that diverges (`_divergence`: a NaN, Inf or absurdly large loss, or a NaN/Inf in the state)
stops with one sentence before the diverged state is logged or saved, and the AE refuses a G other
than the one it was trained on (`ge_jax.pairing`).
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tensorboardX import SummaryWriter
from tqdm.auto import tqdm

from ge_jax import (batching, checkpoint, data as data_lib, fileio, interrupts, metrics, operators, pairing, parallel,
                    split_record, viz)
from ge_jax.errors import Interrupted, UserError
from ge_jax.load import load_trained  # noqa: F401  (kept for callers of pretrain.load_trained)
from ge_jax.models import Nets
from ge_jax.train_state import ae_optimizer, gan_optimizers, init_ae_state, init_gan_state

Array = jax.Array
PHASES = ('gan', 'ae')
# Divergence (see `_divergence`): every number a train step logs (losses; D's mean probabilities) stays
# far below this in a working run (a logistic loss of 1e4 means a logit of -1e4; the AE's MSE on
# [-1, 1] images is at most 4), while an absurd learning rate sends them to 1e5..1e23 or NaN.
LOSS_LIMIT = 1e4


# --- pure train steps ----------------------------------------------------------------------------


def _ema_decay(decay: float, step: Array) -> Array:
  """EMA decay with a warm-up, so short runs are not dominated by the initial weights."""
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def make_gan_step(nets: Nets, gan_cfg) -> Callable:
  """(state, real_batch, key) -> (state, metrics). Non-saturating loss + R1 penalty, EMA of G."""
  tx_g, tx_d = gan_optimizers(gan_cfg)
  r1_weight, ema = float(gan_cfg.r1_weight), float(gan_cfg.ema_decay)
  r1_every = int(gan_cfg.r1_every)
  if r1_every < 1:
    raise UserError(f'config.gan.r1_every={r1_every} must be >= 1.')

  def d_loss(d, g, real, z, with_r1):
    fake = nets.G(g, z)
    logits_real, logits_fake = nets.D(d, real), nets.D(d, fake)
    adv = jax.nn.softplus(-logits_real).mean() + jax.nn.softplus(logits_fake).mean()

    def r1_penalty():
      grad_real = jax.grad(lambda x: nets.D(d, x).sum())(real)
      return jnp.sum(grad_real**2, axis=(1, 2, 3)).mean()

    # Lazy R1 (StyleGAN2): every r1_every steps, scaled up by r1_every to keep its average weight.
    r1 = jax.lax.cond(with_r1, r1_penalty, lambda: jnp.zeros((), adv.dtype))
    return adv + 0.5 * r1_weight * r1_every * r1, dict(d_loss=adv, d_real=jax.nn.sigmoid(logits_real).mean(),
                                            d_fake=jax.nn.sigmoid(logits_fake).mean())

  def g_loss(g, d, z):
    return jax.nn.softplus(-nets.D(d, nets.G(g, z))).mean()

  def step(state, real, key):
    key = jax.random.fold_in(key, state['step'])
    kd, kg = jax.random.split(key)
    n = real.shape[0]
    zd = jax.random.normal(kd, (n, nets.latent_dim))
    with_r1 = state['step'] % r1_every == 0
    (_, logs), gd = jax.value_and_grad(d_loss, has_aux=True)(state['d'], state['g'], real, zd, with_r1)
    upd, opt_d = tx_d.update(gd, state['opt_d'], state['d'])
    d = optax.apply_updates(state['d'], upd)
    zg = jax.random.normal(kg, (n, nets.latent_dim))
    gl, gg = jax.value_and_grad(g_loss)(state['g'], d, zg)
    upd, opt_g = tx_g.update(gg, state['opt_g'], state['g'])
    g = optax.apply_updates(state['g'], upd)
    decay = _ema_decay(ema, state['step'].astype(jnp.float32))
    g_ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, state['g_ema'], g)
    new = dict(step=state['step'] + 1, g=g, d=d, g_ema=g_ema, opt_g=opt_g, opt_d=opt_d)
    return new, dict(logs, g_loss=gl)

  return step


def generated_count(ae_cfg) -> int:
  """How many images of each AE batch are samples of G (config.ae.generated_fraction)."""
  frac = float(ae_cfg.generated_fraction)
  if not 0.0 <= frac <= 1.0:
    raise UserError(f'config.ae.generated_fraction={frac} must be in [0, 1].')
  return int(round(frac * ae_cfg.batch_size))


def generated_scale(ae_cfg) -> tuple[float, float]:
  """(lo, hi) of config.ae.generated_scale: G's samples for the AE use z = s * N(0, I), s ~ U(lo, hi).

  (1, 1) is the method as published (z from the prior). A wider range, e.g. (0, 1.5), shows E the
  images of G at every norm of z that the solver passes through (the MAP under lam ||z||^2 pulls z
  towards the origin, where a prior draw never lands: |z| ~ sqrt(latent_dim)).
  """
  lo, hi = (float(v) for v in ae_cfg.get('generated_scale', (1.0, 1.0)))
  if not 0.0 <= lo <= hi:
    raise UserError(f'config.ae.generated_scale=({lo}, {hi}) must be two numbers with 0 <= lo <= hi.')
  return lo, hi


# Corruption augmentation (config.ae.augment): per task, the operator settings drawn from at random
# (each image of a batch gets one of all listed variants), so E learns E(P(x)) ~ E(x) for a family
# of operators, not only the evaluation's exact parameters.
AUGMENT_VARIANTS = {
    'denoise': [dict(denoise_sigma=s) for s in (0.1, 0.2, 0.3, 0.45, 0.6)],
    'speckle': [dict(speckle_sigma=s) for s in (0.2, 0.3, 0.5)],
    'saltpepper': [dict(saltpepper_p=p) for p in (0.05, 0.1, 0.2)],
    'deblur': [dict(blur_sigma=s) for s in (1.0, 1.5, 2.0)],
    'motionblur': [dict(motion_angle=a) for a in (0.0, 45.0, 90.0, 135.0)],
    'inpaint': ([dict(inpaint_mode='center', inpaint_size=s) for s in (8, 12, 14)]
                + [dict(inpaint_mode='pixels', inpaint_fraction=f) for f in (0.3, 0.5, 0.7)]),
    'superres': [dict(superres_factor=f) for f in (2, 4)],
}


def augment_operators(ae_cfg, ops_cfg, image_shape) -> list:
  """The operators of config.ae.augment ('' -> none, 'all' -> every task of AUGMENT_VARIANTS)."""
  spec = str(ae_cfg.get('augment', '') or '').strip()
  if not spec:
    return []
  names = list(AUGMENT_VARIANTS) if spec == 'all' else [t.strip() for t in spec.split(',') if t.strip()]
  bad = [t for t in names if t not in AUGMENT_VARIANTS]
  if bad:
    raise UserError(f'config.ae.augment={spec!r} names unknown task(s) {bad}; use a comma list of '
                    f'{", ".join(AUGMENT_VARIANTS)} or "all".')
  if ops_cfg is None:
    raise UserError('config.ae.augment needs the config.ops block (pass ops_cfg to make_ae_step).')
  ops = []
  for name in names:
    for override in AUGMENT_VARIANTS[name]:
      cfg = dict(ops_cfg.items()) if hasattr(ops_cfg, 'items') else dict(vars(ops_cfg))
      ops.append(operators.make(name, {**cfg, **override}, tuple(image_shape)))
  return ops


def _corrupt_mixed(ops: list, key: Array, x: Array) -> Array:
  """Each image of x corrupted by one operator of `ops`, picked at random per image."""
  k_pick, k_ops = jax.random.split(key)
  pick = jax.random.randint(k_pick, (x.shape[0],), 0, len(ops))
  ys = jnp.stack([operators.corrupt(op, jax.random.fold_in(k_ops, i), x)[0] for i, op in enumerate(ops)])
  return jnp.take_along_axis(ys, pick[None, :, None, None, None], axis=0)[0]


def make_ae_step(nets: Nets, ae_cfg, ops_cfg=None) -> Callable:
  """(state, real_batch, g_params, key) -> (state, metrics).

  The batch is `real_batch` plus `generated_count` samples of G (drawn inside, from g_params),
  so E learns the codes of G's images as well as of real ones, as the method prescribes.

  With `config.ae.augment` (a comma list of tasks, see AUGMENT_VARIANTS), every image x is also
  corrupted, y = P(x) with a random operator of the list, and the loss adds
    augment_weight * mean (E(y) - sg(E(x)))^2     (code consistency; sg = stop_gradient)
    + augment_recon * mean (Dec(E(y)) - x)^2      (reconstruct x from E(y): a denoising AE)
  so that E(P(x)) stays close to E(x), which GE's objective ||E(G(z)) - E(y)||^2 relies on.
  `ops_cfg` (config.ops) is needed only with augmentation.
  """
  tx = ae_optimizer(ae_cfg)
  n_gen = generated_count(ae_cfg)
  scale_lo, scale_hi = generated_scale(ae_cfg)
  variational = ae_cfg.kind == 'vae'
  kl_weight = float(ae_cfg.kl_weight)
  aug_ops = augment_operators(ae_cfg, ops_cfg, nets.image_shape)
  w_code = float(ae_cfg.get('augment_weight', 0.0))
  w_recon = float(ae_cfg.get('augment_recon', 1.0))

  def loss_fn(p, x, key, y):
    mean, logvar = nets.E_stats(p, x)
    m = mean
    if variational:
      m = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
    recon = nets.Dec(p, m)
    mse = jnp.mean((recon - x)**2)
    logs = dict(recon_mse=mse)
    loss = mse
    if variational:
      kl = 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1).mean()
      loss = loss + kl_weight * kl
      logs['kl'] = kl
    if y is not None:
      m_y = nets.E(p, y)
      ref = jax.lax.stop_gradient(mean)
      code = jnp.mean((m_y - ref)**2)
      loss = loss + w_code * code
      logs['aug_code'] = code
      if w_recon:
        aug_mse = jnp.mean((nets.Dec(p, m_y) - x)**2)
        loss = loss + w_recon * aug_mse
        logs['aug_recon_mse'] = aug_mse
    return loss, logs

  def step(state, real, g_params, key):
    key = jax.random.fold_in(key, state['step'])
    kz, kv = jax.random.split(key)
    x = real
    if n_gen:
      z = jax.random.normal(kz, (n_gen, nets.latent_dim))
      if (scale_lo, scale_hi) != (1.0, 1.0):
        z = z * jax.random.uniform(jax.random.fold_in(kz, 1), (n_gen, 1), minval=scale_lo, maxval=scale_hi)
      fake = jax.lax.stop_gradient(nets.G(g_params, z))
      x = jnp.concatenate([real, fake], axis=0)
    y = _corrupt_mixed(aug_ops, jax.random.fold_in(key, 7), x) if aug_ops else None
    (loss, logs), grads = jax.value_and_grad(loss_fn, has_aux=True)(state['ae'], x, kv, y)
    upd, opt = tx.update(grads, state['opt'], state['ae'])
    new = dict(step=state['step'] + 1, ae=optax.apply_updates(state['ae'], upd), opt=opt)
    return new, dict(logs, loss=loss)

  return step


# --- host side: batches, logs, the loop ----------------------------------------------------------


class EpochSampler:
  """Batch indices for step k: a fresh seeded permutation each epoch, a pure function of (seed, k)."""

  def __init__(self, n: int, batch: int, seed: int, stream: int):
    if n < batch:
      raise UserError(f'the training split has {n} images, fewer than one batch of {batch}; '
                      'lower the batch size or add images.')
    self.n, self.batch, self.seed, self.stream = n, batch, seed, stream
    self._epoch, self._perm = -1, None

  def __call__(self, step: int) -> np.ndarray:
    per_epoch = self.n // self.batch
    epoch, k = divmod(step, per_epoch)
    if epoch != self._epoch:
      self._epoch = epoch
      self._perm = np.random.default_rng([self.seed, self.stream, epoch]).permutation(self.n)
    return self._perm[k * self.batch:(k + 1) * self.batch]


@functools.lru_cache(maxsize=None)
def tensorboard(directory: str):
  """The TensorBoard event writer of a folder (one per folder and process), as Flax's examples keep.

  `tensorboard --logdir=<workdir>` then shows both phases' losses and sample pictures.
  """
  return SummaryWriter(directory)


class JsonlLog:
  """Append-only loss log; on resume, drops lines past the restored step (they will be redone) and lines
  that are not records (cut short by a crash, or not text: a note says so).

  Every record's numbers also go to TensorBoard (`<phase>/tensorboard/` beside the log).
  Only the primary process (process 0) touches the files; on the others it is a no-op.
  """

  def __init__(self, path: str, resume_step: int):
    self.path = path
    self.enabled = parallel.is_primary()
    if self.enabled and os.path.exists(path):
      keep, not_text = [], 0
      with open(path, 'rb') as f:
        for raw in f:
          try:
            line = raw.decode('utf-8')
          except UnicodeDecodeError:
            not_text += 1
            continue
          step = _safe_step(line) if line.strip() else None
          if step is not None and step <= resume_step:
            keep.append(line if line.endswith('\n') else line + '\n')
      if not_text:
        print(f'note: dropped {not_text} line(s) of {path} that are not UTF-8 text (not a loss record).')
      fileio.write_text(path, ''.join(keep))

  def write(self, record: dict) -> None:
    if not self.enabled:
      return
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')
      f.flush()
    tb = tensorboard(os.path.join(os.path.dirname(self.path), 'tensorboard'))
    for k, v in record.items():
      if k != 'step':
        tb.add_scalar(k, v, record['step'])
    tb.flush()


def _picture(phase_dir: str, name: str, step: int, images: np.ndarray, ncol: int | None = None) -> None:
  """Writes a sample grid as samples/step_<k>.png, <name>.png and a TensorBoard image (primary only)."""
  viz.save_grid(os.path.join(phase_dir, 'samples', f'step_{step:07d}.png'), images, ncol)
  viz.save_grid(os.path.join(phase_dir, f'{name}.png'), images, ncol)
  tb = tensorboard(os.path.join(phase_dir, 'tensorboard'))
  tb.add_image(name, viz.grid(images, ncol), step, dataformats='HWC')
  tb.flush()


def _safe_step(line: str):
  try:
    return int(json.loads(line)['step'])
  except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
    return None  # a line cut short by a crash, or not a record of ours


@jax.jit
def _all_finite(state) -> Array:
  """True when every floating-point array of a train state (parameters, EMA, optimizer moments) is finite."""
  leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.array(True)


def _divergence(state, logs: dict, done: int, *, name: str, phase_cfg, ckpts) -> str | None:
  """The one-sentence error of a diverged phase, or None while training is healthy.

  The rule, checked at every log step and before every checkpoint save (so it costs one small
  reduction where the loop syncs anyway, and a diverged state is never saved): a logged number
  (a loss) that is NaN, Inf or beyond LOSS_LIMIT in magnitude, or a NaN/Inf anywhere in the state.
  """
  bad = {k: v for k, v in logs.items() if not np.isfinite(v) or abs(v) > LOSS_LIMIT}
  if bad:
    what = ', '.join(f'{k} = {v:.3g}' for k, v in bad.items())
    if any(np.isfinite(v) for v in bad.values()):
      what += f' (beyond the bound {LOSS_LIMIT:.0e})'
  elif not bool(_all_finite(state)):
    what = 'its parameters or optimizer state hold NaN or Inf values'
  else:
    return None
  kept = ckpts.latest_step()
  again = (f'training then resumes from step {kept}, the newest checkpoint (saved before it), or use a new '
           '--workdir to start afresh' if kept else 'no checkpoint of this phase was saved')
  return (f'[{name}] training diverged at step {done}: {what}; lower config.{name}.lr '
          f'({float(phase_cfg.lr):g} now) and run again ({again}).')


def _run_phase(*, name: str, phase_cfg, config, workdir: str, state: dict, step_fn: Callable,
               batch_fn: Callable[[int], Any], on_picture: Callable[[dict, int], None], mesh,
               progress: bool) -> dict:
  """Drives one phase from its last checkpoint to phase_cfg.steps. Returns the final state.

  `batch_fn(step)` returns the step's batch already placed on the mesh (`_batches`); every process
  runs every step and checkpoint save (Orbax writes collectively); `on_picture` runs on every
  process too (it may compute on global arrays) and writes only on the primary one.
  """
  phase_dir = os.path.join(workdir, name)
  total = int(phase_cfg.steps)
  repl = parallel.replicated(mesh)
  state = jax.device_put(state, repl)
  # A first Ctrl-C is acted on between steps (a step donates its input state, so one cut short
  # leaves nothing to save): the last completed step is saved, then Interrupted is raised.
  # A full disk (any write: a checkpoint, the log, a picture) stops the phase with one sentence.
  ckpts, done = None, 0
  try:
    with fileio.QuietBackgroundDiskFull() as background, interrupts.deferred(), checkpoint.Checkpoints(
        os.path.join(phase_dir, 'checkpoints'), keep=int(phase_cfg.keep),
        shape_keys=checkpoint.PHASE_SHAPE_KEYS[name] + checkpoint.OPTIMIZER_KEYS[name]) as ckpts:
      restored, start = ckpts.restore(state, config, set_aside_damaged=True)
      if restored is not None:
        state = restored
        if start >= total:
          print(f'[{name}] already trained ({start}/{total} steps in {ckpts.directory}); skipping.')
          if interrupts.requested():
            raise Interrupted(f'[{name}] is trained ({ckpts.directory}); nothing else was started.')
          return state
        print(f'[{name}] resuming from step {start} of {total}.')
      else:
        start = 0
      log = JsonlLog(os.path.join(phase_dir, 'log.jsonl'), start)
      diverged = functools.partial(_divergence, name=name, phase_cfg=phase_cfg, ckpts=ckpts)
      t_last, step_last, logs = time.time(), start, {}
      bar = tqdm(total=total, initial=start, desc=name, disable=not (progress and parallel.is_primary()),
                 dynamic_ncols=True, mininterval=1.0)
      try:
        for step in range(start, total):
          if interrupts.requested():
            break
          state, logs = step_fn(state, batch_fn(step))
          done = step + 1
          is_log, is_ckpt = done % phase_cfg.log_every == 0 or done == total, done % phase_cfg.ckpt_every == 0
          if is_log or is_ckpt:  # checked before anything is logged or saved: no diverged state is kept
            background.check()  # a full disk met by a writer's thread (a checkpoint's, TensorBoard's)
            logs = {k: float(v) for k, v in jax.device_get(logs).items()}
            problem = diverged(state, logs, done)
            if problem:
              raise UserError(problem)
          if is_log:
            now = time.time()
            rate = (done - step_last) / max(now - t_last, 1e-9)
            t_last, step_last = now, done
            log.write(dict(step=done, steps_per_s=round(rate, 3), **logs))
            bar.set_postfix({k: f'{v:.3g}' for k, v in logs.items()} | {'it/s': f'{rate:.1f}'}, refresh=False)
          if is_ckpt or done == total:
            ckpts.save(done, state, config)
          if done % phase_cfg.sample_every == 0 or done == total:
            on_picture(state, done)
          bar.update(1)
      finally:
        bar.close()
      if interrupts.requested():
        done = int(state['step'])
        if done > (ckpts.latest_step() or 0):
          problem = diverged(state, {k: float(v) for k, v in jax.device_get(logs).items()}, done)
          if problem:
            raise UserError(problem)
          ckpts.save(done, state, config)
        ckpts.wait()
        raise Interrupted(f'[{name}] step {done} of {total} is saved in {ckpts.directory}; '
                          'the same command resumes from there.')
  except Exception as e:  # noqa: BLE001 - a full disk arrives as any library's error (Orbax's: ValueError)
    reason = fileio.disk_full(e)
    if reason is None or ckpts is None:
      raise
    raise UserError(f'[{name}] {ckpts.disk_full_message(reason, done)}') from None
  return state


def _sample_z(config, n: int = 64) -> np.ndarray:
  return np.asarray(jax.random.normal(jax.random.key(config.seed + 12345), (n, config.model.latent_dim)))


def train_gan(config, workdir: str, dataset: data_lib.Dataset, *, mesh=None, progress: bool = True) -> dict:
  """Trains (or resumes, or skips when done) the GAN phase. Returns its final state.

  Refused before any work when it would train G further in a workdir that holds a trained AE
  (`pairing.check_before_gan`): that AE would no longer belong to the new G; and when the workdir's
  networks were trained on another split of the data (`split_record.check_or_record`, which records
  the split when the phase starts from scratch).
  """
  pairing.check_before_gan(workdir, int(config.gan.steps))
  split_record.check_or_record(config, workdir, dataset, 'gan')
  nets = Nets(config)
  mesh = mesh or parallel.make_mesh()
  _check_batch(config.gan.batch_size, mesh, 'config.gan.batch_size')
  key = jax.random.key(config.seed)
  state = init_gan_state(nets, config, jax.random.fold_in(key, 0))
  step = jax.jit(make_gan_step(nets, config.gan), donate_argnums=0)
  train_key = jax.random.fold_in(key, 1)
  sampler = EpochSampler(len(dataset.train), config.gan.batch_size, config.seed, stream=0)
  z_fixed = _sample_z(config)
  sample = jax.jit(nets.G, out_shardings=parallel.replicated(mesh))

  def on_picture(state, done):
    img = np.asarray(sample(state['g_ema'], z_fixed))
    if not parallel.is_primary():
      return
    _picture(os.path.join(workdir, 'gan'), 'samples', done, img)

  return _run_phase(name='gan', phase_cfg=config.gan, config=config, workdir=workdir, state=state,
                    step_fn=lambda s, b: step(s, b, train_key),
                    batch_fn=_batches(dataset.train, sampler, config.gan.batch_size, mesh),
                    on_picture=on_picture, mesh=mesh, progress=progress)


def train_ae(config, workdir: str, dataset: data_lib.Dataset, g_params, *, gan_step: int | None = None,
             mesh=None, progress: bool = True) -> dict:
  """Trains (or resumes, or skips when done) the AE on real images + samples of G (`g_params`, G's EMA
  at GAN step `gan_step`).

  A fresh AE records that G in `<workdir>/ae/generator.json`; an AE already (partly) trained on
  another G is refused before any work (`pairing.check_or_record`), and so is a workdir whose networks
  were trained on another split of the data (`split_record.check_or_record`).
  """
  split_record.check_or_record(config, workdir, dataset, 'ae')
  pairing.check_or_record(workdir, gan_step, g_params)
  nets = Nets(config)
  mesh = mesh or parallel.make_mesh()
  n_real = config.ae.batch_size - generated_count(config.ae)
  _check_batch(n_real, mesh, 'the real part of config.ae.batch_size')
  key = jax.random.key(config.seed)
  state = init_ae_state(nets, config, jax.random.fold_in(key, 2))
  step = jax.jit(make_ae_step(nets, config.ae, config.ops), donate_argnums=0)
  train_key = jax.random.fold_in(key, 3)
  g_params = parallel.replicate(g_params, mesh)
  sampler = EpochSampler(len(dataset.train), n_real, config.seed, stream=1) if n_real else None
  shape = (0,) + tuple(dataset.train.shape[1:])
  out = parallel.replicated(mesh)
  show = np.concatenate([dataset.val[:32],
                         np.asarray(jax.jit(nets.G, out_shardings=out)(g_params, _sample_z(config, 32)))])
  recon = jax.jit(lambda p, x: nets.Dec(p, nets.E(p, x)), out_shardings=out)

  def on_picture(state, done):
    r = np.asarray(recon(state['ae'], show))
    if not parallel.is_primary():
      return
    pairs = np.stack([show, r], 1).reshape((-1,) + show.shape[1:])  # original, reconstruction, ...
    _picture(os.path.join(workdir, 'ae'), 'reconstructions', done, pairs, ncol=16)

  if sampler:
    batch_fn = _batches(dataset.train, sampler, n_real, mesh)
  else:
    empty = parallel.shard_batch(np.zeros(shape, np.float32), mesh)
    batch_fn = lambda k: empty
  return _run_phase(name='ae', phase_cfg=config.ae, config=config, workdir=workdir, state=state,
                    step_fn=lambda s, b: step(s, b, g_params, train_key), batch_fn=batch_fn,
                    on_picture=on_picture, mesh=mesh, progress=progress)


def evaluate_ae(config, ae_params, images: np.ndarray, batch_size: int = 500) -> dict:
  """Mean PSNR / SSIM (on [0, 1]) of Dec(E(x)) over `images`."""
  nets = Nets(config)
  recon = jax.jit(lambda p, x: nets.Dec(p, nets.E(p, x)))
  out = batching.map_batched(recon, ae_params, images, min(batch_size, len(images)))
  x, r = metrics.to_unit(images), metrics.to_unit(out)
  psnr, ssim = np.asarray(metrics.psnr(r, x)), np.asarray(metrics.ssim(r, x))
  summary = lambda v: {k: float(s) for k, s in metrics.summary(v).items()}
  return dict(n=len(images), psnr=summary(psnr), ssim=summary(ssim))


def _batches(images: np.ndarray, sampler: EpochSampler, batch: int, mesh) -> Callable[[int], Any]:
  """step -> that step's global batch on the mesh; each process reads only its own rows."""
  rows = parallel.local_rows(batch, mesh)
  return lambda k: parallel.shard_batch(images[sampler(k)[rows]], mesh, batch)


def _check_batch(batch: int, mesh, what: str) -> None:
  """A batch that does not split over the devices still trains (replicated), with a note."""
  n = parallel.num_devices(mesh)
  if batch % n and parallel.is_primary():
    print(f'note: {what}={batch} is not a multiple of the {n} devices, so every device computes the '
          f'whole batch (same result, no data-parallel speed-up); pick a multiple of {n} to split it.')


def train_and_evaluate(config, workdir: str, *, progress: bool = True, mesh=None) -> dict:
  """Both phases (GAN, then AE), resumable; writes `<workdir>/summary.json` and returns it."""
  t0 = time.time()
  pairing.check_before_gan(workdir, int(config.gan.steps))  # before any work (train_gan checks it too)
  dataset = data_lib.load(config.data)
  print(f'data: {dataset.source} (train {len(dataset.train)}, val {len(dataset.val)}, '
        f'test {len(dataset.test)}) - {dataset.reason}')
  os.makedirs(workdir, exist_ok=True)
  gan = train_gan(config, workdir, dataset, mesh=mesh, progress=progress)
  t_gan = time.time() - t0
  ae = train_ae(config, workdir, dataset, gan['g_ema'], gan_step=int(gan['step']), mesh=mesh, progress=progress)
  # Validation is the split to compare AE settings on; test is the number to report.
  ev_val = evaluate_ae(config, ae['ae'], dataset.val) if len(dataset.val) else None
  ev = evaluate_ae(config, ae['ae'], dataset.test)
  summary = dict(config=config.name, data=dataset.source, gan_steps=int(gan['step']), ae_steps=int(ae['step']),
                 ae_val=ev_val, ae_test=ev, seconds_this_run=round(time.time() - t0, 1),
                 seconds_gan_this_run=round(t_gan, 1))
  if parallel.is_primary():
    fileio.write_json(os.path.join(workdir, 'summary.json'), summary, indent=2)
  for split, e in (('validation', ev_val), ('held-out test', ev)):
    if e is not None:
      print(f'AE reconstruction on the {e["n"]} {split} images: PSNR {e["psnr"]["mean"]:.2f} '
            f'+- {e["psnr"]["se"]:.2f} dB, SSIM {e["ssim"]["mean"]:.3f}.')
  print(f'done in {time.time() - t0:.0f} s; checkpoints, samples and logs are in {workdir}')
  return summary
