"""Flax Linen networks of the Generative Encoder: G, D, E and Dec.

DCGAN-style, no batch statistics anywhere (G and E are pure, deterministic functions of their
parameters at solve time). Sizes come from the config:

  image_size = base_size * 2**n_up     (28 = 7 * 2**2, 64 = 4 * 2**4)

Use them through the pure helpers at the bottom: `generate(params, z)`, `encode(params, x)`, ...
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ge_jax.errors import UserError

Array = jax.Array


def num_upsamplings(image_size: int, base_size: int) -> int:
  """Number of stride-2 stages between base_size and image_size (must be a power of two ratio)."""
  ratio = image_size / base_size
  n = round(math.log2(ratio)) if ratio >= 1 else -1
  if n < 1 or base_size * 2**n != image_size:
    raise UserError(
        f'image_size={image_size} is not base_size={base_size} times a power of two (>= 2); '
        'set config.model.base_size so that image_size = base_size * 2**k (e.g. 7 for 28, 4 for 64).')
  return n


def _widths(width: int, n: int) -> list[int]:
  """Channel widths from the smallest spatial size to the largest: [w*2^(n-1), ..., w]."""
  return [width * 2**(n - 1 - i) for i in range(n)]


def _leaky(x):
  return nn.leaky_relu(x, 0.2)


def _pixel_norm(x, eps=1e-8):
  """ProGAN's per-pixel feature normalisation: per image, no batch statistics."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


# --- convolutions -------------------------------------------------------------------------------
# 'xla' uses lax convolutions; 'matmul' computes the same maps (same parameters) as one big matrix
# product per layer (im2col), which XLA's CPU backend runs much faster for these small channel counts.


def _patches(x: Array, k: int, stride: int) -> Array:
  """im2col for 'SAME' padding: (B, H, W, C) -> (B, H/stride, W/stride, k*k*C), order (kh, kw, c)."""
  b, h, w, c = x.shape
  out_h, out_w = -(-h // stride), -(-w // stride)
  pad_h = max((out_h - 1) * stride + k - h, 0)
  pad_w = max((out_w - 1) * stride + k - w, 0)
  x = jnp.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
  cols = [
      x[:, i:i + (out_h - 1) * stride + 1:stride, j:j + (out_w - 1) * stride + 1:stride, :]
      for i in range(k) for j in range(k)
  ]
  return jnp.concatenate(cols, axis=-1)


class Conv(nn.Module):
  """k x k convolution, 'SAME' padding, HWIO kernel; impl='xla' or 'matmul' (identical maps)."""
  features: int
  kernel: int
  stride: int = 1
  impl: str = 'xla'

  @nn.compact
  def __call__(self, x):
    cin = x.shape[-1]
    kern = self.param('kernel', nn.initializers.lecun_normal(), (self.kernel, self.kernel, cin, self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    if self.impl == 'matmul':
      cols = _patches(x, self.kernel, self.stride)
      y = cols @ kern.reshape(-1, self.features)
    else:
      y = jax.lax.conv_general_dilated(
          x, kern, (self.stride, self.stride), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y + bias


class Upsample(nn.Module):
  """x2 learned upsampling, the sub-pixel form of a 4x4 stride-2 transposed convolution.

  A 3x3 convolution to 4*features channels followed by depth-to-space: every output pixel of a
  stride-2 transposed conv sees a 2x2 input neighbourhood, which a 3x3 window contains, so this is
  the same family of maps as DCGAN's ConvTranspose(4, 2), computed without zero-dilated inputs.
  """
  features: int
  impl: str = 'xla'

  @nn.compact
  def __call__(self, x):
    b, h, w, _ = x.shape
    y = Conv(4 * self.features, 3, 1, self.impl, name='conv')(x)
    y = y.reshape(b, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * h, 2 * w, self.features)


# --- networks ----------------------------------------------------------------------------------


class Generator(nn.Module):
  """z (B, latent_dim) -> image (B, S, S, C) in [-1, 1]."""
  image_size: int
  channels: int
  width: int
  base_size: int
  impl: str = 'xla'
  norm: str = 'none'  # none | pixel
  final: str = 'subpixel'  # subpixel | conv

  @nn.compact
  def __call__(self, z):
    n = num_upsamplings(self.image_size, self.base_size)
    widths = _widths(self.width, n)  # fc output, then each hidden upsampling's output
    norm = _pixel_norm if self.norm == 'pixel' else (lambda h: h)
    h = nn.Dense(self.base_size * self.base_size * widths[0], name='fc')(z)
    h = norm(_leaky(h).reshape(z.shape[0], self.base_size, self.base_size, widths[0]))
    if self.final == 'conv':  # every x2 stage hidden, then a 3x3 conv to the image channels
      for i, w in enumerate(widths):
        h = norm(_leaky(Upsample(w, self.impl, name=f'up{i}')(h)))
      return jnp.tanh(Conv(self.channels, 3, 1, self.impl, name='out')(h))
    for i, w in enumerate(widths[1:]):
      h = norm(_leaky(Upsample(w, self.impl, name=f'up{i}')(h)))
    h = Upsample(self.channels, self.impl, name='out')(h)  # last x2 straight to image channels
    return jnp.tanh(h)


class Discriminator(nn.Module):
  """image -> real/fake logit (B,)."""
  image_size: int
  width: int
  base_size: int
  impl: str = 'xla'

  @nn.compact
  def __call__(self, x):
    n = num_upsamplings(self.image_size, self.base_size)
    h = x
    for i, w in enumerate(reversed(_widths(self.width, n))):
      h = _leaky(Conv(w, 4, 2, self.impl, name=f'conv{i}')(h))
    h = h.reshape(h.shape[0], -1)
    return nn.Dense(1, name='fc')(h)[:, 0]


class Encoder(nn.Module):
  """image -> code (B, code_dim). For a VAE also returns the log-variance."""
  image_size: int
  code_dim: int
  width: int
  base_size: int
  variational: bool = False
  impl: str = 'xla'

  @nn.compact
  def __call__(self, x):
    n = num_upsamplings(self.image_size, self.base_size)
    h = x
    for i, w in enumerate(reversed(_widths(self.width, n))):
      h = _leaky(Conv(w, 4, 2, self.impl, name=f'conv{i}')(h))
    h = h.reshape(h.shape[0], -1)
    mean = nn.Dense(self.code_dim, name='mean')(h)
    if not self.variational:
      return mean, None
    return mean, nn.Dense(self.code_dim, name='logvar')(h)


class Decoder(nn.Module):
  """code (B, code_dim) -> image in [-1, 1]; the same shape of network as G."""
  image_size: int
  channels: int
  width: int
  base_size: int
  impl: str = 'xla'

  @nn.compact
  def __call__(self, m):
    return Generator(self.image_size, self.channels, self.width, self.base_size, self.impl, name='body')(m)


class AutoEncoder(nn.Module):
  """Encoder + Decoder in one parameter tree {'encoder': ..., 'decoder': ...}."""
  image_size: int
  channels: int
  code_dim: int
  width: int
  base_size: int
  variational: bool = False
  impl: str = 'xla'

  def setup(self):
    self.encoder = Encoder(self.image_size, self.code_dim, self.width, self.base_size, self.variational,
                           self.impl)
    self.decoder = Decoder(self.image_size, self.channels, self.width, self.base_size, self.impl)

  def __call__(self, x):
    mean, logvar = self.encoder(x)
    return self.decoder(mean), mean, logvar

  def encode(self, x):
    return self.encoder(x)

  def decode(self, m):
    return self.decoder(m)


# --- construction from a config and pure functions ---------------------------------------------


def build(config) -> dict[str, nn.Module]:
  """The three modules of a config: {'generator', 'discriminator', 'autoencoder'}."""
  d, m = config.data, config.model
  if config.ae.kind not in ('ae', 'vae'):
    raise UserError(f"config.ae.kind={config.ae.kind!r} is not one of 'ae', 'vae'.")
  if m.g_final not in ('subpixel', 'conv'):
    raise UserError(f"config.model.g_final={m.g_final!r} is not one of 'subpixel', 'conv'.")
  if m.g_norm not in ('none', 'pixel'):
    raise UserError(f"config.model.g_norm={m.g_norm!r} is not one of 'none', 'pixel'.")
  if m.conv_impl not in ('xla', 'matmul'):
    raise UserError(f"config.model.conv_impl={m.conv_impl!r} is not one of 'xla', 'matmul'.")
  num_upsamplings(d.image_size, m.base_size)
  return dict(
      generator=Generator(d.image_size, d.channels, m.g_width, m.base_size, m.conv_impl, m.g_norm, m.g_final),
      discriminator=Discriminator(d.image_size, m.d_width, m.base_size, m.conv_impl),
      autoencoder=AutoEncoder(d.image_size, d.channels, config.ae.code_dim, config.ae.width, m.base_size,
                              config.ae.kind == 'vae', m.conv_impl),
  )


def init_params(config, key: Array) -> dict[str, Any]:
  """Fresh parameters {'generator', 'discriminator', 'autoencoder'} for a config."""
  nets = build(config)
  kg, kd, ka = jax.random.split(key, 3)
  s, c = config.data.image_size, config.data.channels
  return dict(
      generator=nets['generator'].init(kg, jnp.zeros((1, config.model.latent_dim)))['params'],
      discriminator=nets['discriminator'].init(kd, jnp.zeros((1, s, s, c)))['params'],
      autoencoder=nets['autoencoder'].init(ka, jnp.zeros((1, s, s, c)))['params'],
  )


class Nets:
  """Pure functions of a config's networks: G(params, z), E(params, x), Dec(params, m), D(params, x).

  `params` is the network's own parameter tree ('generator' params for G, 'autoencoder' params for
  E and Dec). E returns the code (the VAE's mean: deterministic, as the paper prescribes).
  """

  def __init__(self, config):
    self.config = config
    nets = build(config)
    self._g, self._d, self._ae = nets['generator'], nets['discriminator'], nets['autoencoder']
    self.latent_dim = config.model.latent_dim
    self.code_dim = config.ae.code_dim
    self.image_shape = (config.data.image_size, config.data.image_size, config.data.channels)

  def G(self, params, z):
    return self._g.apply({'params': params}, z)

  def D(self, params, x):
    return self._d.apply({'params': params}, x)

  def E(self, params, x):
    return self._ae.apply({'params': params}, x, method=AutoEncoder.encode)[0]

  def E_stats(self, params, x):
    """(mean, logvar) of the encoder; logvar is None for a plain AE."""
    return self._ae.apply({'params': params}, x, method=AutoEncoder.encode)

  def Dec(self, params, m):
    return self._ae.apply({'params': params}, m, method=AutoEncoder.decode)
