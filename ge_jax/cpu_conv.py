"""Convolutions in the forms XLA's CPU backend runs fast; the same maps as `lax.conv_general_dilated`.

`models.Conv` uses these for conv_impl 'stride1' and 'matmul' (conv_impl='auto' picks 'stride1'
on CPU and XLA's own convolutions on GPU and TPU, where these forms gain nothing). Parameters and
outputs are those of XLA's 'SAME' convolution, to float rounding; only the computation differs:

  'matmul'   im2col: one matrix product per layer.
  'stride1'  XLA's own convolutions forward, but every input gradient as a stride-1, undilated
             convolution (custom VJPs: the flipped kernel; stride 2 through space-to-depth). JAX's
             own gradient of a strided conv is an lhs-dilated conv, which XLA:CPU runs on a slow
             generic path, while it hands plain NHWC convs with more than 16 channels on one side
             to its fast library (YNNPACK). Narrow outputs (fewer out than in, and <= 16 channels
             or k*k*out <= 16) use a matrix product to the k*k taps and a shift-and-add; a
             sub-pixel upsampling's depth-to-space is one convolution per output row phase.
             Reverse mode only (no jvp rule): use 'xla' for forward-mode autodiff.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

Array = jax.Array

IMPLS = ('stride1', 'matmul')
DN = ('NHWC', 'HWIO', 'NHWC')
_LIBRARY_MIN_CHANNELS = 17  # XLA:CPU sends a conv to YNNPACK only if max(C_in, C_out) > 16
_ROW_PHASE_MIN_FEATURES = 8  # below, the row-phase upsampling's narrow convs lose to one conv + transpose


def xla_conv(x: Array, kern: Array, stride: int, padding='SAME') -> Array:
  """XLA's own NHWC convolution (the reference map)."""
  return jax.lax.conv_general_dilated(x, kern, (stride, stride), padding, dimension_numbers=DN)


def conv(x: Array, kern: Array, stride: int, impl: str) -> Array:
  """'SAME' k x k convolution (no bias) of x (B, H, W, C_in) with an HWIO kernel, by `impl`."""
  if impl == 'matmul':
    return _patches(x, kern.shape[0], stride) @ kern.reshape(-1, kern.shape[-1])
  return _conv_stride1(x, kern, stride)


def upsample_fused(impl: str, features: int) -> bool:
  """Whether `upsample` computes a sub-pixel upsampling to `features` channels in one piece."""
  return impl == 'stride1' and features >= _ROW_PHASE_MIN_FEATURES


def upsample(x: Array, kern: Array, bias: Array) -> Array:
  """depth_to_space(conv3x3(x) + bias) as one stride-1 conv per output row phase p.

  Kernel output channel (p * 2 + q) * F + f: the convolution to the 2F channels of phase p gives
  rows 2h + p in the layout (b, h, [q, f]), so stacking both phases on a new axis after h is the
  depth-to-space, without the transpose that XLA's CPU backend runs slowly.
  """
  b, h, w, _ = x.shape
  f = kern.shape[-1] // 4
  rows = [_conv_stride1(x, kern[..., p * 2 * f:(p + 1) * 2 * f], 1) + bias[p * 2 * f:(p + 1) * 2 * f]
          for p in range(2)]
  return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, f)


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


def _conv_stride1(x: Array, kern: Array, stride: int) -> Array:
  """'SAME' k x k convolution, stride 1 or 2, with stride-1 gradients."""
  _, h, w, _ = x.shape
  k = kern.shape[0]
  _, pad_h = _same_padding(h, k, stride)
  _, pad_w = _same_padding(w, k, stride)
  if stride == 1:
    return _conv_s1(x, kern, (pad_h, pad_w))
  if stride != 2 or k % 2:
    return xla_conv(x, kern, stride)
  return _conv_s2(x, kern, (pad_h, pad_w))


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
  return xla_conv(x, kern, 1, pads)


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
    _, vjp = jax.vjp(lambda k: xla_conv(x, k, 1, pads), jnp.zeros(kshape, x.dtype))
    return vjp(g)[0]
  kh, kw, cin, cout = kshape
  xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  oh, ow = g.shape[1], g.shape[2]
  cols = jnp.concatenate([xp[:, i:i + oh, j:j + ow] for i in range(kh) for j in range(kw)], axis=-1)
  return jnp.einsum('nk,no->ko', cols.reshape(-1, kh * kw * cin), g.reshape(-1, cout)).reshape(kshape)


_conv_s1.defvjp(_conv_s1_fwd, _conv_s1_bwd)


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
  return xla_conv(x, kern, 2, pads)


def _conv_s2_fwd(x, kern, pads):
  return _conv_s2(x, kern, pads), (x, kern)


def _conv_s2_bwd(pads, res, g):
  x, kern = res
  _, vjp_x = jax.vjp(lambda x: _space_to_depth_conv(x, kern, pads), x)
  _, vjp_k = jax.vjp(lambda k: xla_conv(x, k, 2, pads), kern)
  return vjp_x(g)[0], vjp_k(g)[0]


_conv_s2.defvjp(_conv_s2_fwd, _conv_s2_bwd)
