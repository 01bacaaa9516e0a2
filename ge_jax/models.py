"""Flax Linen networks of the Generative Encoder: G, D, E and Dec, and `Nets`, their pure functions.

DCGAN-style, no batch statistics anywhere (G and E are pure, deterministic functions of their
parameters at solve time). Sizes come from the config (`ModelSpec`):

  image_size = base_size * 2**n_up     (28 = 7 * 2**2, 64 = 4 * 2**4)

Use them through `Nets(config)`: G(params, z), E(params, x), Dec(params, m), D(params, x); and
`apply_batched(nets.E, params['autoencoder'], x, batch_size)` for many images in padded chunks.
The convolutions' CPU forms live in ge_jax/cpu_conv.py (conv_impl 'auto' picks them on CPU only).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ge_jax import batching, cpu_conv
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


# --- layers ------------------------------------------------------------------------------------

CONV_IMPLS = ('xla',) + cpu_conv.IMPLS  # the same maps and parameters, computed differently


def resolve_conv_impl(impl: str, backend: str | None = None) -> str:
  """config.model.conv_impl as run: 'auto' is 'stride1' on CPU (ge_jax/cpu_conv.py), XLA's own elsewhere."""
  if impl == 'auto':
    return 'stride1' if (backend or jax.default_backend()) == 'cpu' else 'xla'
  if impl not in CONV_IMPLS:
    raise UserError(f"config.model.conv_impl={impl!r} is not one of 'auto', {', '.join(map(repr, CONV_IMPLS))}.")
  return impl


# Nearest-neighbour x2, then a 3x3 'SAME' conv: output pixel (2i + p, 2j + q) sees input rows
# i + floor((p + a) / 2) for the kernel's row offsets a = -1, 0, 1, i.e. taps a that land on the same
# input pixel add up. _PHASE_TAPS[p][d, a] = 1 where tap a lands on input offset d - 1 for phase p.
_PHASE_TAPS = np.array([[[1, 0, 0], [0, 1, 1], [0, 0, 0]],    # p = 0: offsets -1 <- a=-1; 0 <- a=0, 1
                        [[0, 0, 0], [1, 1, 0], [0, 0, 1]]],   # p = 1: offsets 0 <- a=-1, 0; +1 <- a=1
                       np.float32)


def nearest_x2_as_subpixel(kern: Array, bias: Array) -> tuple[Array, Array]:
  """A 3x3 kernel (3, 3, Cin, F) applied after nearest x2 -> the sub-pixel kernel (3, 3, Cin, 4F)
  and bias (4F,) of the same map (channel (p * 2 + q) * F + f, as Conv's depth_to_space). Exact,
  borders included: the zero padding of the upsampled image is the input's zero padding."""
  m = jnp.asarray(_PHASE_TAPS, kern.dtype)
  k4 = jnp.einsum('pda,qeb,abcf->decpqf', m, m, kern)  # (3, 3, Cin, 2, 2, F)
  return k4.reshape(kern.shape[:3] + (4 * kern.shape[3],)), jnp.tile(bias, 4)


class Conv(nn.Module):
  """k x k convolution, 'SAME' padding, HWIO kernel, bias; impl 'auto' or in CONV_IMPLS (identical maps).

  depth_to_space: the output's 4 * F channels become a x2 larger image of F channels (channel
  (p * 2 + q) * F + f goes to pixel (2h + p, 2w + q), channel f): a sub-pixel upsampling.
  nearest_x2 (3x3 kernels): the conv of the nearest-neighbour x2 upsampled input, `features`
  channels, computed as the equivalent sub-pixel conv (`nearest_x2_as_subpixel`): the parameters of
  the plain conv, the speed of the sub-pixel one.
  """
  features: int
  kernel: int
  stride: int = 1
  impl: str = 'xla'
  depth_to_space: bool = False
  nearest_x2: bool = False

  @nn.compact
  def __call__(self, x):
    cin = x.shape[-1]
    kern = self.param('kernel', nn.initializers.lecun_normal(), (self.kernel, self.kernel, cin, self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    to_space, out = self.depth_to_space, self.features
    if self.nearest_x2:
      if self.kernel != 3 or self.stride != 1 or self.depth_to_space:
        raise ValueError('nearest_x2 takes a 3x3 stride-1 conv without depth_to_space.')
      kern, bias = nearest_x2_as_subpixel(kern, bias)
      to_space, out = True, 4 * self.features
    impl = resolve_conv_impl(self.impl)
    if to_space and cpu_conv.upsample_fused(impl, out // 4):
      return cpu_conv.upsample(x, kern, bias)
    if impl == 'xla':
      y = cpu_conv.xla_conv(x, kern, self.stride) + bias
    else:
      y = cpu_conv.conv(x, kern, self.stride, impl) + bias
    if not to_space:
      return y
    b, h, w, _ = y.shape
    f = out // 4
    y = y.reshape(b, h, w, 2, 2, f).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * h, 2 * w, f)


class Upsample(nn.Module):
  """x2 learned upsampling; mode 'subpixel' or 'resize'.

  subpixel: the sub-pixel form of a 4x4 stride-2 transposed convolution. A 3x3 convolution to
  4*features channels followed by depth-to-space: every output pixel of a stride-2 transposed conv
  sees a 2x2 input neighbourhood, which a 3x3 window contains, so this is the same family of maps
  as DCGAN's ConvTranspose(4, 2), computed without zero-dilated inputs. Its four sub-pixel phases
  have their own weights, which a GAN can leave unequal: a checkerboard (Odena et al., 2016).
  resize: nearest-neighbour x2, then a 3x3 convolution to `features` (Odena et al.'s fix): one
  set of weights for every output pixel, so no phase pattern. Computed as the equal sub-pixel
  conv (Conv's nearest_x2), at the sub-pixel form's speed.
  """
  features: int
  impl: str = 'xla'
  mode: str = 'subpixel'

  @nn.compact
  def __call__(self, x):
    if self.mode == 'resize':
      return Conv(self.features, 3, 1, self.impl, nearest_x2=True, name='conv')(x)
    return Conv(4 * self.features, 3, 1, self.impl, depth_to_space=True, name='conv')(x)


def _down_stack(x, image_size: int, width: int, base_size: int, impl: str, flatten: bool = True) -> Array:
  """Encoder's and Discriminator's trunk: stride-2 4x4 convs + leaky ReLU from the image down to
  base_size (widths w, 2w, 4w, ...), flattened to (B, features) unless `flatten` is False.

  Called inside a compact method: its convs 'conv0', 'conv1', ... are the caller's parameters.
  """
  n = num_upsamplings(image_size, base_size)
  h = x
  for i, w in enumerate(reversed(_widths(width, n))):
    h = _leaky(Conv(w, 4, 2, impl, name=f'conv{i}')(h))
  return h.reshape(h.shape[0], -1) if flatten else h


# --- networks ----------------------------------------------------------------------------------


class Generator(nn.Module):
  """z (B, latent_dim) -> image (B, S, S, C) in [-1, 1].

  spatial_input: z is a base_size x base_size map, flattened (the spatial-code AE's decoder): a 3x3
  conv instead of the dense layer takes it to the first width.
  """
  image_size: int
  channels: int
  width: int
  base_size: int
  impl: str = 'xla'
  norm: str = 'none'  # none | pixel
  final: str = 'subpixel'  # subpixel | conv
  upsample: str = 'subpixel'  # subpixel | resize (Upsample's mode, every x2 stage)
  spatial_input: bool = False

  @nn.compact
  def __call__(self, z):
    n = num_upsamplings(self.image_size, self.base_size)
    widths = _widths(self.width, n)  # fc output, then each hidden upsampling's output
    norm = _pixel_norm if self.norm == 'pixel' else (lambda h: h)
    if self.spatial_input:
      h = Conv(widths[0], 3, 1, self.impl, name='fc')(z.reshape(z.shape[0], self.base_size, self.base_size, -1))
    else:
      h = nn.Dense(self.base_size * self.base_size * widths[0], name='fc')(z)
    h = norm(_leaky(h).reshape(z.shape[0], self.base_size, self.base_size, widths[0]))
    if self.final == 'conv':  # every x2 stage hidden, then a 3x3 conv to the image channels
      for i, w in enumerate(widths):
        h = norm(_leaky(Upsample(w, self.impl, self.upsample, name=f'up{i}')(h)))
      return jnp.tanh(Conv(self.channels, 3, 1, self.impl, name='out')(h))
    for i, w in enumerate(widths[1:]):
      h = norm(_leaky(Upsample(w, self.impl, self.upsample, name=f'up{i}')(h)))
    h = Upsample(self.channels, self.impl, self.upsample, name='out')(h)  # last x2 straight to image channels
    return jnp.tanh(h)


class Discriminator(nn.Module):
  """image -> real/fake logit (B,)."""
  image_size: int
  width: int
  base_size: int
  impl: str = 'xla'

  @nn.compact
  def __call__(self, x):
    h = _down_stack(x, self.image_size, self.width, self.base_size, self.impl)
    return nn.Dense(1, name='fc')(h)[:, 0]


class Encoder(nn.Module):
  """image -> code (B, code_dim). For a VAE also returns the log-variance.

  code_size 0: the trunk down to base_size, then a dense layer (a global code). code_size > 0: the
  trunk down to code_size x code_size, then a 3x3 conv to code_dim / code_size**2 channels, flattened
  (a spatial code: each value describes its own neighbourhood, as textures such as rock need).
  """
  image_size: int
  code_dim: int
  width: int
  base_size: int
  variational: bool = False
  impl: str = 'xla'
  code_size: int = 0

  @nn.compact
  def __call__(self, x):
    if self.code_size:
      h = _down_stack(x, self.image_size, self.width, self.code_size, self.impl, flatten=False)
      head = lambda name: Conv(self.code_dim // self.code_size**2, 3, 1, self.impl, name=name)(h).reshape(
          h.shape[0], self.code_dim)
    else:
      h = _down_stack(x, self.image_size, self.width, self.base_size, self.impl)
      head = lambda name: nn.Dense(self.code_dim, name=name)(h)
    mean = head('mean')
    if not self.variational:
      return mean, None
    return mean, head('logvar')


class Decoder(nn.Module):
  """code (B, code_dim) -> image in [-1, 1]: `body`, a Generator of the code (parameters under 'body')."""
  body: Generator

  def __call__(self, m):
    return self.body(m)


class AutoEncoder(nn.Module):
  """Encoder + Decoder in one parameter tree {'encoder': ..., 'decoder': ...}."""
  image_size: int
  channels: int
  code_dim: int
  width: int
  base_size: int
  variational: bool = False
  impl: str = 'xla'
  code_size: int = 0  # 0: a global code; > 0: a code_size x code_size map (Encoder)

  def setup(self):
    self.encoder = Encoder(self.image_size, self.code_dim, self.width, self.base_size, self.variational,
                           self.impl, self.code_size)
    # G's default output stage (the last x2 straight to the image channels, no pixel norm), whatever
    # config.model.g_final and g_norm say for G itself.
    self.decoder = Decoder(Generator(self.image_size, self.channels, self.width, self.code_size or self.base_size,
                                     self.impl, spatial_input=bool(self.code_size)))

  def __call__(self, x):
    mean, logvar = self.encoder(x)
    return self.decoder(mean), mean, logvar

  def encode(self, x):
    return self.encoder(x)

  def decode(self, m):
    return self.decoder(m)


# --- construction from a config and pure functions ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """What defines the networks (config.data sizes, config.model, config.ae's shape) and nothing else.

  Equal specs build the same functions, so `Nets` of equal specs are equal and share compiled code.
  conv_impl is resolved ('auto' -> the backend's choice): it decides how, not what, is computed.
  """
  image_size: int
  channels: int
  latent_dim: int
  g_width: int
  d_width: int
  base_size: int
  g_norm: str
  g_final: str
  g_upsample: str
  code_dim: int
  ae_width: int
  variational: bool
  conv_impl: str
  ae_code_size: int = 0

  @classmethod
  def from_config(cls, config) -> 'ModelSpec':
    d, m, ae = config.data, config.model, config.ae
    if ae.kind not in ('ae', 'vae'):
      raise UserError(f"config.ae.kind={ae.kind!r} is not one of 'ae', 'vae'.")
    if m.g_final not in ('subpixel', 'conv'):
      raise UserError(f"config.model.g_final={m.g_final!r} is not one of 'subpixel', 'conv'.")
    g_upsample = m.get('g_upsample', 'subpixel')
    if g_upsample not in ('subpixel', 'resize'):
      raise UserError(f"config.model.g_upsample={g_upsample!r} is not one of 'subpixel', 'resize'.")
    if m.g_norm not in ('none', 'pixel'):
      raise UserError(f"config.model.g_norm={m.g_norm!r} is not one of 'none', 'pixel'.")
    impl = resolve_conv_impl(m.conv_impl)
    num_upsamplings(d.image_size, m.base_size)
    code_size = int(ae.get('code_size', 0))
    if code_size:
      if code_size >= d.image_size or d.image_size % code_size or num_upsamplings(d.image_size, code_size) < 1:
        raise UserError(f'config.ae.code_size={code_size}: a spatial code needs image_size={d.image_size} = '
                        'code_size * 2**k, k >= 1 (or 0 for a global code).')
      if ae.code_dim % code_size**2:
        raise UserError(f'config.ae.code_dim={ae.code_dim} is not a multiple of code_size**2={code_size**2}: '
                        f'a {code_size}x{code_size} code holds code_dim / code_size**2 channels.')
    return cls(image_size=d.image_size, channels=d.channels, latent_dim=m.latent_dim, g_width=m.g_width,
               d_width=m.d_width, base_size=m.base_size, g_norm=m.g_norm, g_final=m.g_final,
               g_upsample=g_upsample,
               code_dim=ae.code_dim, ae_width=ae.width, variational=ae.kind == 'vae', conv_impl=impl,
               ae_code_size=code_size)

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return (self.image_size, self.image_size, self.channels)


def _spec(config_or_spec) -> ModelSpec:
  return config_or_spec if isinstance(config_or_spec, ModelSpec) else ModelSpec.from_config(config_or_spec)


def build(config) -> dict[str, nn.Module]:
  """The three modules of a config (or ModelSpec): {'generator', 'discriminator', 'autoencoder'}."""
  s = _spec(config)
  return dict(
      generator=Generator(s.image_size, s.channels, s.g_width, s.base_size, s.conv_impl, s.g_norm, s.g_final,
                          s.g_upsample),
      discriminator=Discriminator(s.image_size, s.d_width, s.base_size, s.conv_impl),
      autoencoder=AutoEncoder(s.image_size, s.channels, s.code_dim, s.ae_width, s.base_size, s.variational,
                              s.conv_impl, s.ae_code_size),
  )


def init_params(config, key: Array) -> dict[str, Any]:
  """Fresh parameters {'generator', 'discriminator', 'autoencoder'} for a config (or ModelSpec)."""
  s = _spec(config)
  nets = build(s)
  kg, kd, ka = jax.random.split(key, 3)
  image = jnp.zeros((1,) + s.image_shape)
  return dict(
      generator=nets['generator'].init(kg, jnp.zeros((1, s.latent_dim)))['params'],
      discriminator=nets['discriminator'].init(kd, image)['params'],
      autoencoder=nets['autoencoder'].init(ka, image)['params'],
  )


class Nets:
  """Pure functions of a config's networks: G(params, z), E(params, x), Dec(params, m), D(params, x).

  `params` is the network's own parameter tree ('generator' params for G, 'autoencoder' params for
  E and Dec). E returns the code (the VAE's mean: deterministic, as the paper prescribes).
  Equal (and hashing alike) when their `ModelSpec`s are: compiled solvers and `apply_batched`'s
  compiled functions, cached per Nets, serve every Nets of the same model settings.
  """

  def __init__(self, config):
    self.spec = _spec(config)
    nets = build(self.spec)
    self._g, self._d, self._ae = nets['generator'], nets['discriminator'], nets['autoencoder']
    self.latent_dim = self.spec.latent_dim
    self.code_dim = self.spec.code_dim
    self.image_shape = self.spec.image_shape

  def __eq__(self, other):
    return type(other) is type(self) and other.spec == self.spec

  def __hash__(self):
    return hash(self.spec)

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

  def reconstruct(self, params, x):
    """Dec(E(x)): the autoencoder alone (params: the 'autoencoder' tree)."""
    return self.Dec(params, self.E(params, x))


def apply_batched(fn: Callable[[Any, Array], Array], params: Any, x, batch_size: int) -> np.ndarray:
  """fn(params, rows) over the rows of x (N, ...), in padded chunks of batch_size: numpy (N, ...).

  One compilation per (fn, chunk shape), kept for the process: fn is a pure function of
  (params, batch), e.g. `nets.G`, `nets.E`, `nets.Dec`, `nets.reconstruct` (a method counts by its
  Nets' value, so a new Nets of the same settings reuses the compiled code).
  """
  if isinstance(fn, types.MethodType):
    jitted = _jit_method(fn.__func__, fn.__self__)
  else:
    jitted = _jit_method(fn, None)
  return batching.map_batched(jitted, params, x, batch_size)


@functools.lru_cache(maxsize=64)
def _jit_method(func: Callable, owner: Any) -> Callable:
  return jax.jit(func if owner is None else functools.partial(func, owner))
