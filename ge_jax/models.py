"""Flax Linen networks of the Generative Encoder: G, D, E and Dec.

DCGAN-style, no batch statistics anywhere (G and E are pure, deterministic functions of their
parameters at solve time). Sizes come from the config:

  image_size = base_size * 2**n_up     (28 = 7 * 2**2, 64 = 4 * 2**4)

Use them through the pure helpers at the bottom: `generate(params, z)`, `encode(params, x)`, ...
"""

from __future__ import annotations

import functools
import math
from typing import Any

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
# Three implementations of the same maps (same parameters, outputs equal to float rounding):
#   'xla'      lax.conv_general_dilated with strides, differentiated by JAX as usual.
#   'matmul'   im2col: one matrix product per layer.
#   'stride1'  (the fastest on CPU) XLA's own convolutions forward, but every input gradient as a
#              stride-1, undilated convolution (custom VJPs: the flipped kernel; stride 2 through
#              space-to-depth). JAX's own gradient of a strided conv is an lhs-dilated conv, which
#              XLA's CPU backend runs on a slow generic path, while it hands plain NHWC convs with
#              more than 16 channels on one side to its fast library (YNNPACK). Narrow outputs
#              (fewer out than in, and <= 16 channels or k*k*out <= 16) use a matrix product to
#              the k*k taps and a shift-and-add; Upsample's depth-to-space is a stack of two convs.
#              Reverse mode only (no jvp rule): use 'xla' for forward-mode autodiff.

CONV_IMPLS = ('stride1', 'xla', 'matmul')
_DN = ('NHWC', 'HWIO', 'NHWC')
_LIBRARY_MIN_CHANNELS = 17  # XLA:CPU sends a conv to YNNPACK only if max(C_in, C_out) > 16


def _same_padding(size: int, k: int, stride: int) -> tuple[int, tuple[int, int]]:
  """Output size and (low, high) padding of a 'SAME' convolution, as XLA computes them."""
  out = -(-size // stride)
  total = max((out - 1) * stride + k - size, 0)
  return out, (total // 2, total - total // 2)


def _patches(x: Array, k: int, stride: int) -> Array:
  """im2col for 'SAME' padding: (B, H, W, C) -> (B, H/stride, W/stride, k*k*C), order (kh, kw, c)."""
  _, h, w, _ = x.shape
  out_h, pad_h = _same_padding(h, k, stride)
  out_w, pad_w = _same_padding(w, k, stride)
  x = jnp.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
  cols = [
      x[:, i:i + (out_h - 1) * stride + 1:stride, j:j + (out_w - 1) * stride + 1:stride, :]
      for i in range(k) for j in range(k)
  ]
  return jnp.concatenate(cols, axis=-1)


def _conv_s1_plain(x: Array, kern: Array, pads) -> Array:
  """Stride-1 convolution, explicit ((lo, hi), (lo, hi)) padding, in the form XLA:CPU runs fastest."""
  _, h, w, cin = x.shape
  kh, kw, _, cout = kern.shape
  (lo_h, hi_h), (lo_w, hi_w) = pads
  out_h, out_w = h + lo_h + hi_h - kh + 1, w + lo_w + hi_w - kw + 1
  if cout < cin and (max(cin, cout) < _LIBRARY_MIN_CHANNELS or kh * kw * cout <= 16):
    # Narrow output (e.g. to or from one image channel): a matmul to every tap's contribution,
    # then shift-and-add the k*k taps.
    taps = x @ kern.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout)
    taps = jnp.pad(taps, ((0, 0), (lo_h, hi_h), (lo_w, hi_w), (0, 0)))
    out = [taps[:, i:i + out_h, j:j + out_w, (i * kw + j) * cout:(i * kw + j + 1) * cout]
           for i in range(kh) for j in range(kw)]
    return functools.reduce(jnp.add, out)
  if out_h > h or out_w > w:  # the library wants output <= input: pad explicitly (the barrier
    # stops XLA from folding the pad back into the convolution's window)
    x = jax.lax.optimization_barrier(jnp.pad(x, ((0, 0), (lo_h, hi_h), (lo_w, hi_w), (0, 0))))
    pads = ((0, 0), (0, 0))
  return jax.lax.conv_general_dilated(x, kern, (1, 1), pads, dimension_numbers=_DN)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_s1(x: Array, kern: Array, pads) -> Array:
  """Stride-1 conv whose input gradient is again a stride-1 conv (flipped, transposed kernel)."""
  return _conv_s1_plain(x, kern, pads)


def _conv_s1_fwd(x, kern, pads):
  return _conv_s1_plain(x, kern, pads), (x, kern)


def _conv_s1_bwd(pads, res, g):
  x, kern = res
  kh, kw = kern.shape[:2]
  (lo_h, hi_h), (lo_w, hi_w) = pads
  flipped = jnp.flip(kern, (0, 1)).transpose(0, 1, 3, 2)
  # Custom again, so that second derivatives (the GAN's R1 penalty) take these paths too.
  dx = _conv_s1(g, flipped, ((kh - 1 - lo_h, kh - 1 - hi_h), (kw - 1 - lo_w, kw - 1 - hi_w)))
  return dx, _kernel_grad(x, g, kern.shape, pads)


def _kernel_grad(x: Array, g: Array, kshape, pads) -> Array:
  """d loss / d kernel of a stride-1 conv (training only; the solver's graph drops it).

  XLA's own form is fine for 'SAME' and 'VALID' convolutions but pathological on CPU for the
  'full'-padded ones (output larger than input) that second derivatives produce (150 ms instead
  of 4 in the R1 penalty); those use im2col and one matrix product.
  """
  if g.shape[1] <= x.shape[1] and g.shape[2] <= x.shape[2]:
    _, vjp = jax.vjp(lambda k: jax.lax.conv_general_dilated(x, k, (1, 1), pads, dimension_numbers=_DN),
                     jnp.zeros(kshape, x.dtype))
    return vjp(g)[0]
  kh, kw, cin, cout = kshape
  xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  oh, ow = g.shape[1], g.shape[2]
  cols = jnp.concatenate([xp[:, i:i + oh, j:j + ow] for i in range(kh) for j in range(kw)], axis=-1)
  return jnp.einsum('nk,no->ko', cols.reshape(-1, kh * kw * cin), g.reshape(-1, cout)).reshape(kshape)


_conv_s1.defvjp(_conv_s1_fwd, _conv_s1_bwd)


def _conv_stride1(x: Array, kern: Array, stride: int) -> Array:
  """'SAME' k x k convolution, stride 1 or 2, with stride-1 gradients ('stride1' impl)."""
  _, h, w, _ = x.shape
  k = kern.shape[0]
  _, pad_h = _same_padding(h, k, stride)
  _, pad_w = _same_padding(w, k, stride)
  if stride == 1:
    return _conv_s1(x, kern, (pad_h, pad_w))
  if stride != 2 or k % 2:
    return jax.lax.conv_general_dilated(x, kern, (stride, stride), 'SAME', dimension_numbers=_DN)
  return _conv_s2(x, kern, (pad_h, pad_w))


def _space_to_depth_conv(x: Array, kern: Array, pads) -> Array:
  """A k x k stride-2 conv as a (k/2) x (k/2) stride-1 'VALID' conv on 2x2 blocks (k even)."""
  b, _, _, cin = x.shape
  k, cout = kern.shape[0], kern.shape[-1]
  x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))  # even sizes: 2 * out + k - 2
  hh, ww = x.shape[1] // 2, x.shape[2] // 2
  x = x.reshape(b, hh, 2, ww, 2, cin).transpose(0, 1, 3, 2, 4, 5).reshape(b, hh, ww, 4 * cin)
  kk = k // 2
  kern = kern.reshape(kk, 2, kk, 2, cin, cout).transpose(0, 2, 1, 3, 4, 5).reshape(kk, kk, 4 * cin, cout)
  return _conv_s1(x, kern, ((0, 0), (0, 0)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_s2(x: Array, kern: Array, pads) -> Array:
  """Stride-2 conv (XLA's own, the library runs it); input gradient through space-to-depth."""
  return jax.lax.conv_general_dilated(x, kern, (2, 2), pads, dimension_numbers=_DN)


def _conv_s2_fwd(x, kern, pads):
  return _conv_s2(x, kern, pads), (x, kern)


def _conv_s2_bwd(pads, res, g):
  x, kern = res
  _, vjp_x = jax.vjp(lambda x: _space_to_depth_conv(x, kern, pads), x)
  _, vjp_k = jax.vjp(lambda k: jax.lax.conv_general_dilated(x, k, (2, 2), pads, dimension_numbers=_DN), kern)
  return vjp_x(g)[0], vjp_k(g)[0]


_conv_s2.defvjp(_conv_s2_fwd, _conv_s2_bwd)


class Conv(nn.Module):
  """k x k convolution, 'SAME' padding, HWIO kernel; impl in CONV_IMPLS (identical maps)."""
  features: int
  kernel: int
  stride: int = 1
  impl: str = 'xla'

  @nn.compact
  def __call__(self, x):
    cin = x.shape[-1]
    kern = self.param('kernel', nn.initializers.lecun_normal(), (self.kernel, self.kernel, cin, self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    if self.impl == 'stride1':
      y = _conv_stride1(x, kern, self.stride)
    elif self.impl == 'matmul':
      cols = _patches(x, self.kernel, self.stride)
      y = cols @ kern.reshape(-1, self.features)
    else:
      y = jax.lax.conv_general_dilated(x, kern, (self.stride, self.stride), 'SAME', dimension_numbers=_DN)
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
    if self.impl == 'stride1' and self.features >= 8:  # same parameters, no transpose
      return _RowPhaseConv(self.features, name='conv')(x)
    y = Conv(4 * self.features, 3, 1, self.impl, name='conv')(x)
    y = y.reshape(b, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * h, 2 * w, self.features)


class _RowPhaseConv(nn.Module):
  """Upsample's conv and depth-to-space as one conv per output row phase p ('stride1' impl).

  Conv's parameters (output channel (p * 2 + q) * F + f): the convolution to the 2F channels of
  phase p gives rows 2h + p in the layout (b, h, [q, f]), so stacking both phases on a new axis
  after h is the depth-to-space, without the transpose that XLA's CPU backend runs slowly.
  """
  features: int

  @nn.compact
  def __call__(self, x):
    b, h, w, cin = x.shape
    f = self.features
    kern = self.param('kernel', nn.initializers.lecun_normal(), (3, 3, cin, 4 * f))
    bias = self.param('bias', nn.initializers.zeros_init(), (4 * f,))
    rows = [_conv_stride1(x, kern[..., p * 2 * f:(p + 1) * 2 * f], 1) + bias[p * 2 * f:(p + 1) * 2 * f]
            for p in range(2)]
    return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, f)


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
  if m.conv_impl not in CONV_IMPLS:
    raise UserError(f"config.model.conv_impl={m.conv_impl!r} is not one of {', '.join(map(repr, CONV_IMPLS))}.")
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
