"""Classical restorations: what a user would pick instead of a learned prior (scikit-image / scipy).

Reference rows for the evaluation tables, on the same inputs as the learned methods (the
observation y of `operators.corrupt` and, where the method needs it, the operator's known
kernel or per-image mask):

  operator     method            parameter   what it does
  denoise      tv                weight      denoise_tv_chambolle (Chambolle 2004)
  speckle      tv                weight      the same on the multiplicative noise
  saltpepper   median, tv        size/weight median filter of size x size pixels; TV as the alternative
  deblur       richardson_lucy   num_iter    Richardson-Lucy with the known Gaussian kernel
               wiener            balance     Wiener-Hunt deconvolution with the known kernel
  motionblur   richardson_lucy,  as deblur   with the known motion kernel
               wiener
  inpaint      biharmonic        (none)      inpaint_biharmonic with the known mask
  superres     interpolate       order       spline upsampling of the low-res image (3: bicubic)
  compress     (nothing: only the code E(x) is given, there is no image to restore)

Images are NHWC in [-1, 1] on the way in and out; the methods run on [0, 1] (skimage's range).
The blur methods mirror-pad the image by the kernel size first (the operator's own 'reflect'
boundary) and crop after, so the deconvolution does not invent dark borders.

Each method has one parameter, tuned on the VALIDATION split by mean PSNR (`tune`): these are
distortion-side references, so the criterion they are tuned for is the distortion one.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

import jax
import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import fftconvolve
from skimage.restoration import denoise_tv_chambolle, inpaint_biharmonic, wiener
from skimage.transform import resize

from ge_jax import metrics, operators
from ge_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Method:
  """A classical restoration with one parameter.

  Attributes:
    name: the method's key.
    param_name: what its parameter is ('' when it has none).
    grid: the default tuning grid (one value, None, when it has no parameter).
    run: (y (N, H, W, C) in [0, 1], op_params, ctx, param) -> (N, H, W, C) in [0, 1].
  """
  name: str
  param_name: str
  grid: tuple
  run: Callable[[np.ndarray, Any, dict, Any], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Setting:
  """A tuned choice: the method, its parameter and the validation PSNR it reached (dB)."""
  method: str
  param: Any
  psnr: float


# --- the methods (per image; skimage has no batch axis) ------------------------------------------


def _each(fn, y: np.ndarray) -> np.ndarray:
  return np.stack([fn(img) for img in y])


def _tv(y, op_params, ctx, weight):
  del op_params, ctx
  return _each(lambda img: denoise_tv_chambolle(img, weight=float(weight), channel_axis=-1), y)


def _median(y, op_params, ctx, size):
  del op_params, ctx
  size = int(size)
  return median_filter(y, size=(1, size, size, 1), mode='reflect')  # per image and channel


def _padded(fn, y: np.ndarray, pad: int) -> np.ndarray:
  """fn on each channel of each image, mirror-padded by `pad` pixels, then cropped back."""
  h, w = y.shape[1:3]
  out = np.empty_like(y)
  for i in range(y.shape[0]):
    for c in range(y.shape[3]):
      big = np.pad(y[i, :, :, c], pad, mode='reflect')
      out[i, :, :, c] = fn(big)[pad:pad + h, pad:pad + w]
  return out


def _psf(ctx) -> np.ndarray:
  # The operator correlates with its kernel; skimage convolves: flip it, so both mean the same map.
  return np.asarray(ctx['kernel'], np.float64)[::-1, ::-1]


def _pad_batch(y: np.ndarray, pad: int) -> np.ndarray:
  """(N, H, W, C) -> (N * C, H + 2 pad, W + 2 pad): mirror-padded planes, one per image and channel."""
  y = np.pad(y, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode='reflect')
  return np.moveaxis(y, 3, 1).reshape(-1, y.shape[1], y.shape[2])


def _unpad_batch(planes: np.ndarray, shape: tuple, pad: int) -> np.ndarray:
  n, h, w, c = shape
  planes = planes.reshape(n, c, h + 2 * pad, w + 2 * pad)[:, :, pad:pad + h, pad:pad + w]
  return np.moveaxis(planes, 1, 3)


def richardson_lucy_batch(planes: np.ndarray, psf: np.ndarray, num_iter: int) -> np.ndarray:
  """skimage.restoration.richardson_lucy (0.26, clip=True) on a stack of 2-D planes at once.

  The same iteration, im *= conv(y / (conv(im, psf) + 1e-12), flip(psf)) from im = 0.5, then a
  clip to [-1, 1]; the 'same'-size convolutions run over the whole stack with FFTs, about 2x
  faster than skimage's loop over images. Noise-free blur keeps improving with more iterations
  (validation PSNR still rises at 300), so the grid's top value is a cost limit, not an optimum.
  """
  psf = np.asarray(psf, np.float64)[None]
  mirror = psf[:, ::-1, ::-1]
  y = np.asarray(planes, np.float64)
  im = np.full(y.shape, 0.5)
  for _ in range(int(num_iter)):
    conv = fftconvolve(im, psf, mode='same', axes=(1, 2)) + 1e-12
    im *= fftconvolve(y / conv, mirror, mode='same', axes=(1, 2))
  return np.clip(im, -1, 1)


def _richardson_lucy(y, op_params, ctx, num_iter):
  del op_params
  psf = _psf(ctx)
  pad = max(psf.shape)
  return _unpad_batch(richardson_lucy_batch(_pad_batch(y, pad), psf, num_iter), y.shape, pad)


def _wiener(y, op_params, ctx, balance):
  del op_params
  psf = _psf(ctx)
  return _padded(lambda img: wiener(img, psf, float(balance), clip=True), y, max(psf.shape))


def _biharmonic(y, op_params, ctx, param):
  del ctx, param
  missing = np.asarray(op_params['mask'])[..., 0] < 0.5          # operator: 1 = observed
  return np.stack([inpaint_biharmonic(img, m, channel_axis=-1) if m.any() else img
                   for img, m in zip(y, missing)])


def _interpolate(y, op_params, ctx, order):
  del op_params
  f = ctx['factor']
  n, h, w, c = y.shape
  # y is the low-res image repeated f x f (nearest upsampling): every block is constant, so its
  # mean is the low-res pixel for any downsampling filter.
  low = y.reshape(n, h // f, f, w // f, f, c).mean(axis=(2, 4))
  return _each(lambda img: resize(img, (h, w, c), order=int(order), mode='edge', anti_aliasing=False), low)


_TV = Method('tv', 'weight', (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.8), _tv)
_RL = Method('richardson_lucy', 'num_iter', (10, 30, 100, 300), _richardson_lucy)
_WIENER = Method('wiener', 'balance', (1e-5, 1e-4, 1e-3, 0.01, 0.03, 0.1, 0.3), _wiener)
METHODS: dict[str, tuple[Method, ...]] = {
    'denoise': (_TV,),
    'speckle': (_TV,),
    'saltpepper': (Method('median', 'size', (2, 3, 4, 5), _median), _TV),
    'deblur': (_RL, _WIENER),
    'motionblur': (_RL, _WIENER),
    'inpaint': (Method('biharmonic', '', (None,), _biharmonic),),
    'superres': (Method('interpolate', 'order', (0, 1, 3), _interpolate),),
    'compress': (),
    'none': (),
}


# `tune` on the 500 validation digits of the built-in MNIST (configs/mnist.py ops, the evaluation
# tasks of ge_jax.evaluate), 2026-11-27: evaluation task -> (method, parameter, validation PSNR dB).
# Richardson-Lucy sits at its grid's top (300): noise-free blur rewards more iterations.
MNIST_VALIDATION: dict[str, tuple[str, Any, float]] = {
    'denoise-0.3': ('tv', 0.05, 21.35),
    'denoise-0.6': ('tv', 0.1, 15.91),
    'speckle': ('tv', 0.05, 23.11),
    'saltpepper': ('median', 3, 20.92),
    'deblur': ('richardson_lucy', 300, 26.81),
    'motionblur': ('richardson_lucy', 300, 40.26),
    'inpaint-center': ('biharmonic', None, 14.83),
    'inpaint-pixels': ('biharmonic', None, 22.25),
    'superres-x2': ('interpolate', 3, 20.68),
    'superres-x4': ('interpolate', 3, 14.68),
    # Blur then noise sigma 0.1 (the same tuning, 2026-11-27): noise stops Richardson-Lucy early
    # (motion blur at its grid's lowest value, 10); Wiener was tried on the same grid and lost.
    'deblur-noisy': ('richardson_lucy', 30, 20.33),
    'motionblur-noisy': ('richardson_lucy', 10, 21.18),
}


def has_classical(op_name: str) -> bool:
  return bool(METHODS.get(op_name))


def _method(op_name: str, method: str | None) -> Method:
  if op_name not in METHODS:
    raise UserError(f'unknown operator {op_name!r}; choose from {", ".join(METHODS)}.')
  if not METHODS[op_name]:
    raise UserError(f'there is no classical restoration for {op_name!r}'
                    + (' (only the code E(x) is given, no image).' if op_name == 'compress' else '.'))
  choices = {m.name: m for m in METHODS[op_name]}
  if method is None:
    return METHODS[op_name][0]
  if method not in choices:
    raise UserError(f'method {method!r} does not restore {op_name!r}; choose from {", ".join(choices)}.')
  return choices[method]


def _get(ops_cfg, key: str):
  """config.ops.<key> from a ConfigDict or a plain mapping."""
  value = ops_cfg.get(key) if hasattr(ops_cfg, 'get') else getattr(ops_cfg, key, None)
  if value is None:
    raise UserError(f'config.ops.{key} is missing; set it (see configs/mnist.py for defaults).')
  return value


def _context(op_name: str, ops_cfg) -> dict:
  """What a method knows about the operator besides y: the blur kernel or the superres factor."""
  get = lambda k: _get(ops_cfg, k)
  if op_name == 'deblur':
    return dict(kernel=operators.gaussian_kernel(int(get('blur_size')), float(get('blur_sigma'))))
  if op_name == 'motionblur':
    return dict(kernel=operators.motion_kernel(float(get('motion_length')), float(get('motion_angle'))))
  if op_name == 'superres':
    return dict(factor=int(get('superres_factor')))
  return {}


def restore(op_name: str, corrupted: np.ndarray, op_params: Any, ops_cfg, param: Any = None,
            method: str | None = None) -> np.ndarray:
  """Restores observations of operator `op_name` (config in `ops_cfg`) with one classical method.

  Args:
    op_name: an operator of ge_jax.operators (e.g. 'deblur'; not an evaluation-task name).
    corrupted: y, (N, H, W, C) in [-1, 1].
    op_params: the per-image operator parameters from `operators.corrupt` ({'mask': (N, H, W, 1)}
      for inpainting; unused otherwise).
    ops_cfg: config.ops with the task's values (kernel size, factor, ...).
    param: the method's parameter (None: the middle of its default grid).
    method: one of the operator's METHODS (default: the first).
  Returns:
    (N, H, W, C) float32 restorations in [-1, 1].
  """
  m = _method(op_name, method)
  y = np.asarray(corrupted, np.float64)
  if y.ndim != 4 or len(y) == 0:
    raise UserError(f'corrupted images must be a non-empty (N, H, W, C) array, got shape {y.shape}.')
  if param is None:
    param = m.grid[len(m.grid) // 2]
  unit = np.clip((y + 1) / 2, 0.0, 1.0)
  out = m.run(unit, op_params, _context(op_name, ops_cfg), param)
  return (2 * np.clip(out, 0.0, 1.0) - 1).astype(np.float32)


def corrupt(op_name: str, ops_cfg, clean: np.ndarray, indices: np.ndarray | None = None):
  """(y, op_params) exactly as experiment.restore makes them: image i corrupted with the key
  fold_in(key(ops_cfg.seed), indices[i]) (default indices 0..N-1)."""
  clean = np.asarray(clean, np.float32)
  op = operators.make(op_name, ops_cfg, clean.shape[1:])
  indices = np.arange(len(clean)) if indices is None else np.asarray(indices)
  key = jax.random.key(int(_get(ops_cfg, 'seed')))
  one = jax.jit(lambda i, x: operators.corrupt(op, jax.random.fold_in(key, i), x[None]))
  y, params = jax.vmap(one)(indices, clean)
  return np.asarray(y[:, 0]), jax.tree.map(lambda a: np.asarray(a[:, 0]), params)


def _psnr(x_hat: np.ndarray, x: np.ndarray) -> np.ndarray:
  return np.asarray(metrics.psnr(metrics.to_unit(x_hat), metrics.to_unit(x)))


def tune(op_name: str, clean_val: np.ndarray, corrupted_val: np.ndarray, op_params_val: Any, ops_cfg,
         grid: Sequence | None = None, methods: Sequence[str] | None = None) -> tuple[Setting, list[dict]]:
  """Picks the method and parameter with the highest mean PSNR on validation images.

  Args:
    grid: parameter values to try (default: each method's own grid; a given grid applies to every
      method tried, so pass one method with it).
    methods: the operator's methods to try (default: all of them).
  Returns:
    (the best Setting, a table: one dict per (method, param) with psnr_mean, psnr_se, seconds).
  """
  names = list(methods) if methods is not None else [m.name for m in METHODS.get(op_name, ())]
  _method(op_name, names[0] if names else None)   # unknown / no classical method: UserError
  table = []
  for name in names:
    m = _method(op_name, name)
    for param in (grid if grid is not None else m.grid):
      t0 = time.time()
      out = restore(op_name, corrupted_val, op_params_val, ops_cfg, param, name)
      psnr = _psnr(out, np.asarray(clean_val, np.float32))
      table.append(dict(method=name, param=param, psnr_mean=float(psnr.mean()),
                        psnr_se=float(psnr.std(ddof=1) / np.sqrt(len(psnr))) if len(psnr) > 1 else 0.0,
                        seconds=round(time.time() - t0, 3)))
  best = max(table, key=lambda r: r['psnr_mean'])
  return Setting(best['method'], best['param'], best['psnr_mean']), table
