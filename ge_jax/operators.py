"""Corruption operators P(x) = noise(A(x)) on NHWC images in [-1, 1].

Like `deepinv.physics`, an `Operator` keeps the deterministic forward map A separate from its noise
model, so CSGM-style solvers can backpropagate through A with the same per-image parameters (masks)
that produced the observation:

  op = operators.make('inpaint', config.ops, (28, 28, 1))
  y, params = operators.corrupt(op, key, x)        # y = op.noise(k2, op.forward(x, params))
  loss = jnp.mean((op.forward(g_z, params) - y)**2)

Everything is a pure JAX function (jit, vmap, grad). Kernels and static masks are built with numpy
in `make()`; everything random is drawn from the keys given. Per-image randomness uses
`fold_in(key, i)` for image i, so an image's mask and noise depend only on (key, i), never on how
many batch-mates it has (padding a last batch changes nothing for the real images).

Design choices:
  * blur padding: 'reflect' (mirror about the edge pixel, numpy/PyTorch meaning), so constant
    images are unchanged and borders do not darken;
  * superres: downsample by `superres_factor`, then upsample back to full size by nearest-neighbour
    replication (each low-res pixel becomes a factor x factor block), so A stays a simple linear
    map and the encoder sees a full-size image;
  * inpaint: forward(x, params) = mask * x + (1 - mask) * fill, mask (N, H, W, 1) with 1 = observed,
    fill = `ops.inpaint_fill` if the config has it, else 0.0 (mid-grey);
  * noise clips to [-1, 1]; for noiseless tasks it is that clip only (the identity on images in
    range; it also removes the small overshoot of bicubic downsampling).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ge_jax.errors import UserError

Array = jax.Array

TASKS = ('none', 'denoise', 'speckle', 'saltpepper', 'deblur', 'motionblur', 'inpaint', 'superres',
         'compress')
INPAINT_MODES = ('center', 'pixels', 'blocks')
SUPERRES_FILTERS = ('box', 'bicubic', 'gaussian')
DEFAULT_FILL = 0.0  # inpaint fill when config.ops has no `inpaint_fill`: mid-grey on [-1, 1]


@dataclasses.dataclass(frozen=True)
class Operator:
  """A corruption operator: y = noise(key, forward(x, params)).

  Attributes:
    name: the task name (one of TASKS).
    forward: A(x, params), (N, H, W, C) -> (N, H, W, C); deterministic, differentiable in x.
    noise: (key, y) -> noisy y clipped to [-1, 1]; only the clip for noiseless tasks.
    sample_params: (key, n) -> per-image params pytree with leading axis n ({} when none).
    code_only: True for 'compress': the solver only gets E(x), not an image.
    description: human-readable, with parameter values.
    noise_sigma: std of the additive Gaussian noise before the clip (0: no such noise); what an
      operator-aware solver needs for the censored likelihood of the clipped values.
  """
  name: str
  forward: Callable[[Array, Any], Array]
  noise: Callable[[Array, Array], Array]
  sample_params: Callable[[Array, int], Any]
  code_only: bool = False
  description: str = ''
  noise_sigma: float = 0.0


def corrupt(op: Operator, key: Array, x: Array) -> tuple[Array, Any]:
  """Corrupts a batch: returns (y, params) with y = op.noise(k2, op.forward(x, params))."""
  k_params, k_noise = jax.random.split(key)
  params = op.sample_params(k_params, x.shape[0])
  return op.noise(k_noise, op.forward(x, params)), params


def corrupt_images(op: Operator, key: Array, x, indices=None) -> tuple[np.ndarray, Any]:
  """Corrupts each image on its own: image j gets the key fold_in(key, indices[j]).

  The one way to corrupt a set of images for solving and evaluation: an image's observation
  depends only on (key, its global index), never on its batch-mates or on how the set is split.
  One jitted vmap over the images; returns (y, params) as numpy, params with a leading image axis.
  """
  x = np.asarray(x)
  indices = np.arange(len(x)) if indices is None else np.asarray(indices)
  if indices.shape != (len(x),):
    raise UserError(f'got {len(x)} images but {indices.shape} indices; give one index per image.')
  y, params = _corrupt_each(op, key, x, indices)
  return np.asarray(y), jax.tree.map(np.asarray, params)


@functools.partial(jax.jit, static_argnums=0)
def _corrupt_each(op: Operator, key: Array, x: Array, indices: Array) -> tuple[Array, Any]:
  def one(i, xi):
    y, params = corrupt(op, jax.random.fold_in(key, i), xi[None])
    return y[0], jax.tree.map(lambda a: a[0], params)
  return jax.vmap(one)(indices, x)


# --- helpers ------------------------------------------------------------------------------------


def _per_image(fn: Callable[[Array], Any], key: Array, n: int) -> Any:
  """vmaps fn over the keys fold_in(key, i), i < n (image i depends only on key and i)."""
  keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(n))
  return jax.vmap(fn)(keys)


def _clip(y: Array) -> Array:
  return jnp.clip(y, -1.0, 1.0)


def _no_noise(key: Array, y: Array) -> Array:
  del key
  return _clip(y)


def _no_params(key: Array, n: int) -> dict:
  del key, n
  return {}


def _identity(x: Array, params: Any) -> Array:
  del params
  return x


def _cfg(ops_cfg: Any, key: str, default: Any = None) -> Any:
  """Reads config.ops.<key> from a ConfigDict or a mapping; missing and no default -> UserError."""
  if isinstance(ops_cfg, Mapping) or hasattr(ops_cfg, 'get'):
    value = ops_cfg.get(key, default)
  else:
    value = getattr(ops_cfg, key, default)
  if value is None:
    raise UserError(f'config.ops.{key} is missing; set it (see configs/mnist.py for defaults).')
  return value


def _number(ops_cfg: Any, key: str, lo: float | None = None, hi: float | None = None,
            what: str = '', default: Any = None) -> float:
  """A real config value, checked to lie in [lo, hi] (bounds optional)."""
  value = _cfg(ops_cfg, key, default)
  if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
      or not math.isfinite(value):
    raise UserError(f'config.ops.{key} must be a finite number, got {value!r}.')
  if (lo is not None and value < lo) or (hi is not None and value > hi):
    raise UserError(f'config.ops.{key} must be {what}, got {value!r}.')
  return float(value)


def _integer(ops_cfg: Any, key: str, lo: int, hi: int, what: str) -> int:
  """An integer config value in [lo, hi]."""
  value = _cfg(ops_cfg, key)
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
    raise UserError(f'config.ops.{key} must be {what}, got {value!r}.')
  return int(value)


def _choice(ops_cfg: Any, key: str, choices: tuple[str, ...]) -> str:
  value = _cfg(ops_cfg, key)
  if value not in choices:
    raise UserError(f'config.ops.{key} must be one of {", ".join(choices)}; got {value!r}.')
  return value


def _gaussian_1d(size: int, sigma: float, center: float | None = None) -> np.ndarray:
  """Normalised 1-D Gaussian taps at positions 0..size-1 around `center` (default: the middle)."""
  center = (size - 1) / 2 if center is None else center
  if sigma == 0:
    taps = (np.abs(np.arange(size) - center) < 0.5).astype(np.float64)
  else:
    taps = np.exp(-0.5 * ((np.arange(size) - center) / sigma)**2)
  return taps / taps.sum()


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
  """size x size Gaussian kernel (float32, sums to 1); sigma 0 gives a delta."""
  g = _gaussian_1d(size, sigma)
  return np.outer(g, g).astype(np.float32)


def motion_kernel(length: float, angle: float) -> np.ndarray:
  """Line kernel of `length` pixels at `angle` degrees (counter-clockwise from horizontal).

  Antialiased by coverage: a segment of that length centred on the middle pixel is sampled densely
  and each pixel gets the share of the segment that falls inside it (a box-pixel rasteriser), on
  the smallest odd K x K grid that holds it; the kernel sums to 1. Horizontal or vertical lines of
  odd integer length give an exact box; length 1 gives the identity.
  """
  theta = math.radians(angle)
  extent = (length / 2) * max(abs(math.cos(theta)), abs(math.sin(theta)))
  half = max(0, math.ceil(extent - 0.5 - 1e-6))
  size = 2 * half + 1
  m = 256 * max(1, math.ceil(length))  # sub-segment midpoints
  t = (np.arange(m) + 0.5) / m * length - length / 2
  cols = np.clip(np.round(half + t * math.cos(theta)), 0, size - 1).astype(int)
  rows = np.clip(np.round(half - t * math.sin(theta)), 0, size - 1).astype(int)  # rows go down
  kernel = np.zeros((size, size), np.float64)
  np.add.at(kernel, (rows, cols), 1.0)
  return (kernel / kernel.sum()).astype(np.float32)


def _depthwise(x: Array, kernel: np.ndarray, stride: int = 1, pad: int | None = None) -> Array:
  """Per-channel correlation of NHWC x with a 2-D kernel after reflect padding.

  pad=None pads for 'SAME' output (odd kernels); otherwise `pad` pixels on every side.
  """
  kh, kw = kernel.shape
  c = x.shape[-1]
  if pad is None:
    widths = ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)
  else:
    widths = (pad, pad), (pad, pad)
  x = jnp.pad(x, ((0, 0), *widths, (0, 0)), mode='reflect')
  w = jnp.asarray(np.tile(kernel[:, :, None, None], (1, 1, 1, c)), x.dtype)  # HWIO, I = 1
  return jax.lax.conv_general_dilated(
      x, w, window_strides=(stride, stride), padding='VALID',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=c,
      precision=jax.lax.Precision.HIGHEST)


def _normals(key: Array, y: Array) -> Array:
  """Standard normal noise shaped like y, drawn per image from `key` (see `_per_image`)."""
  return _per_image(lambda k: jax.random.normal(k, y.shape[1:], y.dtype), key, y.shape[0])


def _gaussian_noise(sigma: float) -> Callable[[Array, Array], Array]:
  """(key, y) -> y + sigma * N(0, 1) per image, clipped to [-1, 1] (the identity's clip for sigma 0)."""
  if sigma == 0:
    return _no_noise

  def noise(key: Array, y: Array) -> Array:
    n = _normals(key, y)
    return _clip(y + sigma * n)
  return noise


def _blur_op(name: str, kernel: np.ndarray, description: str, ops_cfg: Any) -> Operator:
  """A known blur; `ops.blur_noise_sigma` > 0 adds Gaussian noise after it, as a camera does."""
  sigma = _number(ops_cfg, 'blur_noise_sigma', lo=0, what='>= 0', default=0.0)

  def forward(x: Array, params: Any) -> Array:
    del params
    return _depthwise(x, kernel)
  if sigma:
    description += f', then Gaussian noise sigma {sigma:g} (on [-1, 1]), clipped to [-1, 1]'
  return Operator(name, forward, _gaussian_noise(sigma), _no_params, description=description,
                  noise_sigma=float(sigma))


# --- tasks --------------------------------------------------------------------------------------


def _denoise(ops_cfg: Any, shape: tuple[int, int, int]) -> Operator:
  del shape
  sigma = _number(ops_cfg, 'denoise_sigma', lo=0, what='>= 0')
  return Operator('denoise', _identity, _gaussian_noise(sigma), _no_params,
                  description=f'additive Gaussian noise, sigma {sigma:g} (on [-1, 1]), clipped to [-1, 1]',
                  noise_sigma=float(sigma))


def _speckle(ops_cfg: Any, shape: tuple[int, int, int]) -> Operator:
  del shape
  sigma = _number(ops_cfg, 'speckle_sigma', lo=0, what='>= 0')

  def noise(key: Array, y: Array) -> Array:
    n = _normals(key, y)
    u = (y + 1) / 2
    return _clip(2 * (u * (1 + sigma * n)) - 1)
  return Operator('speckle', _identity, noise, _no_params,
                  description=f'speckle noise u * (1 + {sigma:g} n) on [0, 1], clipped to [0, 1]')


def _saltpepper(ops_cfg: Any, shape: tuple[int, int, int]) -> Operator:
  del shape
  p = _number(ops_cfg, 'saltpepper_p', lo=0, hi=1, what='a fraction in [0, 1]')

  def noise(key: Array, y: Array) -> Array:
    def one(k):
      k_hit, k_val = jax.random.split(k)
      hit = jax.random.uniform(k_hit, y.shape[1:3] + (1,)) < p  # whole pixel, all channels
      val = jnp.where(jax.random.bernoulli(k_val, 0.5, y.shape[1:3] + (1,)), 1.0, -1.0)
      return hit, val
    hit, val = _per_image(one, key, y.shape[0])
    return _clip(jnp.where(hit, val.astype(y.dtype), y))
  return Operator('saltpepper', _identity, noise, _no_params,
                  description=f'salt-and-pepper noise, {p:g} of pixels set to -1 or +1')


def _deblur(ops_cfg: Any, shape: tuple[int, int, int]) -> Operator:
  h, w, _ = shape
  size = _integer(ops_cfg, 'blur_size', 1, 2 * min(h, w) - 1,
                  f'an odd integer between 1 and {2 * min(h, w) - 1}')
  if size % 2 == 0:
    raise UserError(f'config.ops.blur_size must be odd (a centred kernel), got {size}.')
  sigma = _number(ops_cfg, 'blur_sigma', lo=0, what='>= 0')
  return _blur_op('deblur', gaussian_kernel(size, sigma),
                  f'Gaussian blur {size}x{size}, sigma {sigma:g}, reflect padding', ops_cfg)


def _motionblur(ops_cfg: Any, shape: tuple[int, int, int]) -> Operator:
  h, w, _ = shape
  length = _number(ops_cfg, 'motion_length', lo=1, hi=min(h, w),
                   what=f'a length in pixels between 1 and {min(h, w)}')
  angle = _number(ops_cfg, 'motion_angle')
  kernel = motion_kernel(length, angle)
  return _blur_op('motionblur', kernel,
                  f'motion blur, length {length:g} px at {angle:g} degrees '
                  f'({kernel.shape[0]}x{kernel.shape[1]} kernel), reflect padding', ops_cfg)


def _inpaint(ops_cfg: Any, shape: tuple[int, int, int]) -> Operator:
  h, w, _ = shape
  mode = _choice(ops_cfg, 'inpaint_mode', INPAINT_MODES)
  fill = _number(ops_cfg, 'inpaint_fill', lo=-1, hi=1, what='in [-1, 1]', default=DEFAULT_FILL)

  if mode == 'center':
    side = _integer(ops_cfg, 'inpaint_size', 0, min(h, w), f'an integer in [0, {min(h, w)}]')
    mask = np.ones((h, w, 1), np.float32)
    top, left = (h - side) // 2, (w - side) // 2
    mask[top:top + side, left:left + side] = 0.0
    mask = jnp.asarray(mask)

    def sample_params(key: Array, n: int) -> dict:
      del key
      return {'mask': jnp.broadcast_to(mask, (n, h, w, 1))}
    desc = f'inpainting: centre {side}x{side} square missing'
  else:
    frac = _number(ops_cfg, 'inpaint_fraction', lo=0, hi=1, what='a fraction in [0, 1]')
    if mode == 'pixels':
      def one(k: Array) -> Array:
        return (jax.random.uniform(k, (h, w, 1)) >= frac).astype(jnp.float32)
      desc = f'inpainting: random pixels missing, fraction {frac:g}'
    else:
      block = _integer(ops_cfg, 'inpaint_block', 1, min(h, w), f'an integer in [1, {min(h, w)}]')
      gh, gw = -(-h // block) + 1, -(-w // block) + 1

      def one(k: Array) -> Array:
        # A grid of block x block cells at a random offset; each cell is missing with prob frac.
        k_cells, k_off = jax.random.split(k)
        cells = (jax.random.uniform(k_cells, (gh, gw)) >= frac).astype(jnp.float32)
        full = jnp.repeat(jnp.repeat(cells, block, axis=0), block, axis=1)
        off = jax.random.randint(k_off, (2,), 0, block)
        return jax.lax.dynamic_slice(full, (off[0], off[1]), (h, w))[..., None]
      desc = f'inpainting: random {block}x{block} blocks missing, fraction {frac:g}'

    def sample_params(key: Array, n: int) -> dict:
      return {'mask': _per_image(one, key, n)}

  def forward(x: Array, params: dict) -> Array:
    m = params['mask'].astype(x.dtype)
    return m * x + (1 - m) * fill
  return Operator('inpaint', forward, _no_noise, sample_params,
                  description=f'{desc}, fill {fill:g}')


def _superres(ops_cfg: Any, shape: tuple[int, int, int]) -> Operator:
  h, w, _ = shape
  f = _integer(ops_cfg, 'superres_factor', 1, min(h, w), f'an integer in [1, {min(h, w)}]')
  if h % f or w % f:
    raise UserError(f'config.ops.superres_factor={f} must divide the image size {h}x{w}.')
  filt = _choice(ops_cfg, 'superres_filter', SUPERRES_FILTERS)

  if filt == 'box':
    def down(x: Array) -> Array:
      n, _, _, c = x.shape
      return x.reshape(n, h // f, f, w // f, f, c).mean(axis=(2, 4))
    detail = 'box (block mean)'
  elif filt == 'gaussian':
    # Gaussian anti-alias filter, sigma = factor / 2, centred on each f x f block, stride f.
    sigma = f / 2
    m = math.ceil(3 * sigma) if f > 1 else 0
    g = _gaussian_1d(f + 2 * m, sigma)
    kernel = np.outer(g, g).astype(np.float32)

    def down(x: Array) -> Array:
      return _depthwise(x, kernel, stride=f, pad=m)
    size = kernel.shape[0]
    detail = f'Gaussian filter sigma {sigma:g} ({size}x{size}), reflect padding'
  else:
    def down(x: Array) -> Array:
      n, _, _, c = x.shape
      return jax.image.resize(x, (n, h // f, w // f, c), 'cubic', antialias=True)
    detail = 'antialiased bicubic (Keys cubic)'

  def forward(x: Array, params: Any) -> Array:
    del params
    low = down(x)
    return jnp.repeat(jnp.repeat(low, f, axis=1), f, axis=2)
  return Operator('superres', forward, _no_noise, _no_params,
                  description=f'downsampling x{f}, {detail}; nearest upsampling back to {h}x{w}')


def _compress(ops_cfg: Any, shape: tuple[int, int, int]) -> Operator:
  del ops_cfg, shape
  return Operator('compress', _identity, _no_noise, _no_params, code_only=True,
                  description='compression: only the code E(x) is given')


def _none(ops_cfg: Any, shape: tuple[int, int, int]) -> Operator:
  del ops_cfg, shape
  return Operator('none', _identity, _no_noise, _no_params, description='no corruption')


_BUILDERS = {
    'none': _none, 'denoise': _denoise, 'speckle': _speckle, 'saltpepper': _saltpepper,
    'deblur': _deblur, 'motionblur': _motionblur, 'inpaint': _inpaint, 'superres': _superres,
    'compress': _compress,
}
assert set(_BUILDERS) == set(TASKS)


class _Reads(Mapping):
  """config.ops as a mapping that remembers which keys were read."""

  def __init__(self, ops_cfg):
    self._cfg, self.read = ops_cfg, set()

  def __getitem__(self, key):
    self.read.add(key)
    return self._cfg[key]

  def get(self, key, default=None):
    self.read.add(key)
    return self._cfg.get(key, default) if hasattr(self._cfg, 'get') else getattr(self._cfg, key, default)

  def __iter__(self):
    return iter(self._cfg.keys() if hasattr(self._cfg, 'keys') else ())

  def __len__(self):
    return len(list(iter(self)))


def keys_read(task: str, ops_cfg: Any, image_shape: tuple[int, int, int]) -> frozenset[str]:
  """The config.ops keys the operator of `task` reads (its parameters), plus 'seed' for a task
  that corrupts (task 'none' reads none): what a setting must be among to have an effect."""
  reads = _Reads(ops_cfg)
  make(task, reads, image_shape)
  return frozenset(reads.read | ({'seed'} if task != 'none' else set()))


def make(task: str, ops_cfg: Any, image_shape: tuple[int, int, int]) -> Operator:
  """Builds the operator of `task` from config.ops, for images of shape (H, W, C).

  Only the parameters of the chosen task are read and checked; a bad one raises UserError naming
  its config key.
  """
  if task not in _BUILDERS:
    raise UserError(f'Unknown task {task!r}; valid tasks: {", ".join(TASKS)}.')
  if len(image_shape) != 3 or not all(isinstance(d, (int, np.integer)) and d > 0
                                      for d in image_shape):
    raise UserError(f'image_shape must be (H, W, C) with positive integers, got {image_shape!r}.')
  return _BUILDERS[task](ops_cfg, tuple(int(d) for d in image_shape))
