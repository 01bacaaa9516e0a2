"""Eager PyTorch peer of ge-jax's networks and GE solver, for benchmarks only.

The same networks as `ge_jax.models` (read from the same config, so the architecture flags
`g_final` and `g_norm` are followed), loaded with the *same* weights converted from the Flax
parameters, and the same solver steps (Adam on z, objective ||E(G(z)) - m||^2 + lam ||z||^2 per
image and restart, best iterate by objective), in two forms:

  * `solve_per_image`: the original code's way, one image at a time (its R restarts as one small
    batch), eager;
  * `solve_batched`: the whole batch of images x restarts as one tensor; Adam is per element and
    every objective is a per-row sum, so the rows stay independent.

PyTorch is an optional, benchmark-only dependency (benchmarks/requirements.txt).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8  # as ge_jax.solver


def _same_padding(size: int, k: int, stride: int) -> tuple[int, tuple[int, int]]:
  """Output size and (low, high) padding of XLA's 'SAME' (28 -> 14 with k=4, s=2 pads (1, 1))."""
  out = -(-size // stride)
  total = max((out - 1) * stride + k - size, 0)
  return out, (total // 2, total - total // 2)


def _widths(width: int, n: int) -> list[int]:
  return [width * 2**(n - 1 - i) for i in range(n)]


def _num_up(image_size: int, base_size: int) -> int:
  n = round(math.log2(image_size / base_size))
  assert base_size * 2**n == image_size, (image_size, base_size)
  return n


def _leaky(x):
  return F.leaky_relu(x, 0.2)


def _pixel_norm(x, eps=1e-8):
  return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + eps)


class SameConv(nn.Module):
  """k x k conv with XLA's 'SAME' padding on a known input size (NCHW)."""

  def __init__(self, cin: int, cout: int, k: int, stride: int, size: int):
    super().__init__()
    self.out_size, (lo, hi) = _same_padding(size, k, stride)
    self.pad = None if lo == hi else (lo, hi, lo, hi)
    self.conv = nn.Conv2d(cin, cout, k, stride, padding=lo if lo == hi else 0)

  def forward(self, x):
    if self.pad is not None:
      x = F.pad(x, self.pad)
    return self.conv(x)


class Upsample(nn.Module):
  """subpixel: 3x3 conv to 4F channels + depth-to-space (weights permuted so that PixelShuffle
  applies); resize: nearest-neighbour x2 + 3x3 conv to F channels."""

  def __init__(self, cin: int, features: int, size: int, mode: str = 'subpixel'):
    super().__init__()
    self.mode = mode
    if mode == 'resize':
      self.conv = SameConv(cin, features, 3, 1, 2 * size)
    else:
      self.conv = SameConv(cin, 4 * features, 3, 1, size)
      self.shuffle = nn.PixelShuffle(2)

  def forward(self, x):
    if self.mode == 'resize':
      return self.conv(F.interpolate(x, scale_factor=2, mode='nearest'))
    return self.shuffle(self.conv(x))


class Generator(nn.Module):
  """Mirror of ge_jax.models.Generator (NCHW)."""

  def __init__(self, image_size, channels, width, base_size, latent_dim, norm='none', final='subpixel',
               upsample='subpixel'):
    super().__init__()
    n = _num_up(image_size, base_size)
    widths = _widths(width, n)
    self.base, self.w0, self.final = base_size, widths[0], final
    self.norm = _pixel_norm if norm == 'pixel' else (lambda h: h)
    self.fc = nn.Linear(latent_dim, base_size * base_size * widths[0])
    ups, cin, size = [], widths[0], base_size
    hidden = widths if final == 'conv' else widths[1:]
    for w in hidden:
      ups.append(Upsample(cin, w, size, upsample))
      cin, size = w, size * 2
    self.ups = nn.ModuleList(ups)
    if final == 'conv':
      self.out = SameConv(cin, channels, 3, 1, size)
    else:
      self.out = Upsample(cin, channels, size, upsample)

  def forward(self, z):
    h = self.fc(z).view(z.shape[0], self.w0, self.base, self.base)
    h = self.norm(_leaky(h))
    for up in self.ups:
      h = self.norm(_leaky(up(h)))
    return torch.tanh(self.out(h))


class _Downs(nn.Module):

  def __init__(self, image_size, channels, width, base_size):
    super().__init__()
    n = _num_up(image_size, base_size)
    convs, cin, size = [], channels, image_size
    for w in reversed(_widths(width, n)):
      convs.append(SameConv(cin, w, 4, 2, size))
      cin, size = w, convs[-1].out_size
    self.convs = nn.ModuleList(convs)
    self.flat = cin * size * size

  def forward(self, x):
    for c in self.convs:
      x = _leaky(c(x))
    return x.flatten(1)  # (c, h, w) order: the dense weights are permuted to match


class Encoder(nn.Module):
  """Mirror of ge_jax.models.Encoder: the code (the VAE's mean)."""

  def __init__(self, image_size, channels, width, base_size, code_dim):
    super().__init__()
    self.body = _Downs(image_size, channels, width, base_size)
    self.mean = nn.Linear(self.body.flat, code_dim)

  def forward(self, x):
    return self.mean(self.body(x))


class Discriminator(nn.Module):
  """Mirror of ge_jax.models.Discriminator: a logit per image."""

  def __init__(self, image_size, channels, width, base_size):
    super().__init__()
    self.body = _Downs(image_size, channels, width, base_size)
    self.fc = nn.Linear(self.body.flat, 1)

  def forward(self, x):
    return self.fc(self.body(x))[:, 0]


# --- weights from Flax --------------------------------------------------------------------------


def _t(a) -> torch.Tensor:
  return torch.from_numpy(np.array(a, np.float32, copy=True, order='C'))


def _load_conv(conv: SameConv, p, out_perm=None):
  w = np.asarray(p['kernel']).transpose(3, 2, 0, 1)  # HWIO -> OIHW
  b = np.asarray(p['bias'])
  if out_perm is not None:
    w, b = w[out_perm], b[out_perm]
  conv.conv.weight.data.copy_(_t(w))
  conv.conv.bias.data.copy_(_t(b))


def _load_upsample(up: Upsample, p):
  """Flax channel (p*2 + q) * F + f -> PixelShuffle's channel f * 4 + (p*2 + q)."""
  if up.mode == 'resize':
    _load_conv(up.conv, p['conv'])
    return
  f = np.asarray(p['conv']['kernel']).shape[-1] // 4
  perm = [(t % 4) * f + t // 4 for t in range(4 * f)]
  _load_conv(up.conv, p['conv'], perm)


def _load_dense_in_chw(lin: nn.Linear, p, h: int, w: int, c: int):
  """A Dense whose input Flax flattens as (h, w, c), fed here (c, h, w)."""
  k = np.asarray(p['kernel']).reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
  lin.weight.data.copy_(_t(k.T))
  lin.bias.data.copy_(_t(p['bias']))


def _load_downs(body: _Downs, p, image_size):
  size = image_size
  for i, c in enumerate(body.convs):
    _load_conv(c, p[f'conv{i}'])
    size = c.out_size
  return size


def build(config, params, device: str = 'cpu', trainable: bool = False) -> dict[str, nn.Module]:
  """{'G', 'E', 'D', 'Dec'} of a ge-jax config with the Flax params' weights.

  Args:
    config: the ge-jax ConfigDict (data, model, ae fields are read).
    params: {'generator', 'autoencoder', 'discriminator'} Flax params (any missing net is skipped).
    device: torch device.
    trainable: False: eval mode, no parameter gradients (the solver only needs d/dz).
  """
  d, m = config.data, config.model
  s, ch = d.image_size, d.channels
  if 'autoencoder' in params and config.ae.get('code_size', 0):
    raise ValueError('the PyTorch peer has only the global-code AE (config.ae.code_size=0)')
  nets = {}
  if 'generator' in params:
    g = Generator(s, ch, m.g_width, m.base_size, m.latent_dim, m.g_norm, m.g_final,
                  m.get('g_upsample', 'subpixel'))
    _load_generator(g, params['generator'], m.base_size, m.g_final)
    nets['G'] = g
  if 'autoencoder' in params:
    e = Encoder(s, ch, config.ae.width, m.base_size, config.ae.code_dim)
    p = params['autoencoder']['encoder']
    size = _load_downs(e.body, p, s)
    _load_dense_in_chw(e.mean, p['mean'], size, size, e.body.convs[-1].conv.out_channels)
    nets['E'] = e
    dec = Generator(s, ch, config.ae.width, m.base_size, config.ae.code_dim)  # models.Decoder: defaults
    _load_generator(dec, params['autoencoder']['decoder']['body'], m.base_size, 'subpixel')
    nets['Dec'] = dec
  if 'discriminator' in params:
    dn = Discriminator(s, ch, m.d_width, m.base_size)
    p = params['discriminator']
    size = _load_downs(dn.body, p, s)
    _load_dense_in_chw(dn.fc, p['fc'], size, size, dn.body.convs[-1].conv.out_channels)
    nets['D'] = dn
  for net in nets.values():
    net.to(device).train(trainable)
    for q in net.parameters():
      q.requires_grad_(trainable)
  return nets


def _load_generator(g: Generator, p, b0: int, final: str):
  k = np.asarray(p['fc']['kernel'])  # (d, base*base*w0) as (h, w, c) -> (c, h, w)
  w0 = g.w0
  g.fc.weight.data.copy_(_t(k.reshape(-1, b0, b0, w0).transpose(3, 1, 2, 0).reshape(w0 * b0 * b0, -1)))
  g.fc.bias.data.copy_(_t(np.asarray(p['fc']['bias']).reshape(b0, b0, w0).transpose(2, 0, 1).reshape(-1)))
  for i, up in enumerate(g.ups):
    _load_upsample(up, p[f'up{i}'])
  if final == 'conv':
    _load_conv(g.out, p['out'])
  else:
    _load_upsample(g.out, p['out'])


def to_nchw(x_nhwc) -> torch.Tensor:
  return _t(x_nhwc).permute(0, 3, 1, 2).contiguous()


def check_conversion(config, params, nets: dict[str, nn.Module], n: int = 4, seed: int = 0) -> dict[str, float]:
  """Max |Flax - torch| of G(z) and E(x) (and D(x)) on a few inputs; should be < 1e-4."""
  import jax
  from ge_jax import models
  jnets = models.Nets(config)
  z = np.asarray(jax.random.normal(jax.random.key(seed), (n, config.model.latent_dim)))
  x = np.asarray(jnets.G(params['generator'], z))
  dev = next(nets['G'].parameters()).device
  with torch.no_grad():
    xt = nets['G'](_t(z).to(dev)).cpu().numpy().transpose(0, 2, 3, 1)
    errs = {'G': float(np.abs(xt - x).max())}
    xin = to_nchw(x).to(dev)
    if 'E' in nets:
      errs['E'] = float(np.abs(nets['E'](xin).cpu().numpy() - np.asarray(jnets.E(params['autoencoder'], x))).max())
    if 'Dec' in nets:
      m = np.asarray(jnets.E(params['autoencoder'], x))
      dec = nets['Dec'](_t(m).to(dev)).cpu().numpy().transpose(0, 2, 3, 1)
      errs['Dec'] = float(np.abs(dec - np.asarray(jnets.Dec(params['autoencoder'], m))).max())
    if 'D' in nets:
      errs['D'] = float(np.abs(nets['D'](xin).cpu().numpy() - np.asarray(jnets.D(params['discriminator'], x))).max())
  return errs


# --- the GE solve ------------------------------------------------------------------------------


def _solve_rows(G, E, m, z0, lr: float, lam: float, steps: int):
  """K Adam steps on rows z (N, d), objective ||E(G(z)) - m||^2 + lam ||z||^2 per row.

  Returns (best z, best objective) per row, the best over the iterates before each step and the
  last one, as ge_jax.solver keeps them.
  """
  z = z0.clone().requires_grad_(True)
  opt = torch.optim.Adam([z], lr=lr, betas=(ADAM_B1, ADAM_B2), eps=ADAM_EPS)
  best_obj = torch.full((z.shape[0],), math.inf, device=z.device)
  best_z = z0.clone()

  def objective(z):
    return torch.sum((E(G(z)) - m)**2, dim=1) + lam * torch.sum(z * z, dim=1)

  for _ in range(steps):
    opt.zero_grad(set_to_none=True)
    obj = objective(z)
    obj.sum().backward()
    with torch.no_grad():
      better = obj < best_obj
      best_obj = torch.where(better, obj, best_obj)
      best_z = torch.where(better[:, None], z, best_z)
    opt.step()
  with torch.no_grad():
    obj = objective(z)
    better = obj < best_obj
    return torch.where(better[:, None], z, best_z), torch.where(better, obj, best_obj)


def _best_restart(z, obj, b: int, r: int):
  obj = obj.view(b, r)
  idx = torch.argmin(obj, dim=1)
  return z.view(b, r, -1)[torch.arange(b), idx], obj[torch.arange(b), idx]


def solve_batched(nets, m, z0, *, lr: float, lam: float, steps: int):
  """All images x restarts as one tensor. m (B, code), z0 (B, R, d) -> (z*, objective) per image."""
  b, r, d = z0.shape
  rows_m = m.repeat_interleave(r, dim=0)
  z, obj = _solve_rows(nets['G'], nets['E'], rows_m, z0.reshape(b * r, d), lr, lam, steps)
  return _best_restart(z, obj, b, r)


def solve_per_image(nets, m, z0, *, lr: float, lam: float, steps: int, restarts_batched: bool = False):
  """The original's way: a Python loop over images, each solved on its own with one z at a time.

  The original code optimises a single z (a batch of one); R restarts are R such runs. With
  `restarts_batched` an image's R restarts form one small batch instead (kinder to PyTorch).
  """
  zs, objs = [], []
  for i in range(z0.shape[0]):
    if restarts_batched:
      z, obj = solve_batched(nets, m[i:i + 1], z0[i:i + 1], lr=lr, lam=lam, steps=steps)
    else:
      runs = [_solve_rows(nets['G'], nets['E'], m[i:i + 1], z0[i, r:r + 1], lr, lam, steps)
              for r in range(z0.shape[1])]
      z, obj = _best_restart(torch.cat([a for a, _ in runs]), torch.cat([b for _, b in runs]), 1, len(runs))
    zs.append(z)
    objs.append(obj)
  return torch.cat(zs), torch.cat(objs)


def solve_per_image_restarts_batched(nets, m, z0, *, lr: float, lam: float, steps: int):
  return solve_per_image(nets, m, z0, lr=lr, lam=lam, steps=steps, restarts_batched=True)


def set_fp32_precision(full: bool) -> str:
  """PyTorch's float32 convolutions and matmuls on a GPU: full float32 (`full`) or TF32, its default
  for cuDNN convolutions. The peer must compute as JAX does: the solver runs at 'highest' (full
  float32) on GPUs, training at JAX's default (TF32 there). Returns the setting's name for the rows."""
  torch.backends.cudnn.allow_tf32 = not full
  torch.backends.cuda.matmul.allow_tf32 = not full
  return 'float32' if full else 'tf32'


def sync(device) -> None:
  if str(device).startswith('cuda'):
    torch.cuda.synchronize()


def time_solve(fn, nets, m, z0, *, lr, lam, steps, device) -> tuple[float, Any]:
  """Seconds of one call (after the caller's warm-up) and its result."""
  sync(device)
  t0 = time.perf_counter()
  out = fn(nets, m, z0, lr=lr, lam=lam, steps=steps)
  sync(device)
  return time.perf_counter() - t0, out


# --- training steps (train_throughput.py) -------------------------------------------------------


class GanStep:
  """ge_jax.pretrain.make_gan_step in eager PyTorch: non-saturating loss, lazy R1, EMA of G."""

  def __init__(self, nets, gan_cfg, latent_dim: int):
    import copy
    self.g, self.d = nets['G'], nets['D']
    self.g_ema = copy.deepcopy(self.g).requires_grad_(False)
    betas = (float(gan_cfg.b1), float(gan_cfg.b2))
    self.opt_g = torch.optim.Adam(self.g.parameters(), lr=float(gan_cfg.lr), betas=betas)
    self.opt_d = torch.optim.Adam(self.d.parameters(), lr=float(gan_cfg.lr), betas=betas)
    self.r1_weight, self.r1_every, self.ema = float(gan_cfg.r1_weight), int(gan_cfg.r1_every), float(gan_cfg.ema_decay)
    self.latent_dim, self.step = latent_dim, 0

  def __call__(self, real):
    n = real.shape[0]
    with_r1 = self.step % self.r1_every == 0
    real = real.requires_grad_(with_r1)
    fake = self.g(torch.randn(n, self.latent_dim, device=real.device)).detach()
    logits_real = self.d(real)
    loss = F.softplus(-logits_real).mean() + F.softplus(self.d(fake)).mean()
    if with_r1:
      (grad,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
      loss = loss + 0.5 * self.r1_weight * self.r1_every * grad.pow(2).sum((1, 2, 3)).mean()
    self.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    self.opt_d.step()
    g_loss = F.softplus(-self.d(self.g(torch.randn(n, self.latent_dim, device=real.device)))).mean()
    self.opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    self.opt_g.step()
    decay = min(self.ema, (1.0 + self.step) / (10.0 + self.step))
    with torch.no_grad():
      for e, p in zip(self.g_ema.parameters(), self.g.parameters()):
        e.mul_(decay).add_(p, alpha=1 - decay)
    self.step += 1
    return g_loss


class AeStep:
  """ge_jax.pretrain.make_ae_step (plain AE, no augmentation) in eager PyTorch: real + samples of G."""

  def __init__(self, nets, g_frozen, ae_cfg, n_gen: int, latent_dim: int):
    self.e, self.dec, self.g = nets['E'], nets['Dec'], g_frozen
    self.opt = torch.optim.Adam(list(self.e.parameters()) + list(self.dec.parameters()), lr=float(ae_cfg.lr))
    self.n_gen, self.latent_dim = n_gen, latent_dim

  def __call__(self, real):
    x = real
    if self.n_gen:
      with torch.no_grad():
        fake = self.g(torch.randn(self.n_gen, self.latent_dim, device=real.device))
      x = torch.cat([real, fake])
    loss = F.mse_loss(self.dec(self.e(x)), x)
    self.opt.zero_grad(set_to_none=True)
    loss.backward()
    self.opt.step()
    return loss
