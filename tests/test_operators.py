"""Tests of ge_jax.operators: shapes, ranges, randomness, statistics, jit/vmap/grad, validation."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import mnist
from ge_jax import operators
from ge_jax.errors import UserError

SHAPE = (16, 16, 3)
RANDOM_TASKS = ('denoise', 'speckle', 'saltpepper')


def _ops(**overrides) -> ml_collections.ConfigDict:
  ops = mnist.get_config().ops
  ops.update(overrides)
  return ops


_corrupt = jax.jit(operators.corrupt, static_argnums=0)


def _images(n: int = 4, shape=SHAPE, seed: int = 0) -> jax.Array:
  return jax.random.uniform(jax.random.key(seed), (n, *shape), minval=-1.0, maxval=1.0)


# Every task plus the variants of inpaint and superres.
CASES = [(t, {}) for t in operators.TASKS] + [
    ('inpaint', {'inpaint_mode': 'pixels'}),
    ('inpaint', {'inpaint_mode': 'blocks'}),
    ('superres', {'superres_filter': 'bicubic'}),
    ('superres', {'superres_filter': 'gaussian'}),
]
IDS = [f'{t}-{"-".join(str(v) for v in o.values())}' if o else t for t, o in CASES]


@pytest.fixture(scope='module', params=CASES, ids=IDS)
def op(request):
  task, overrides = request.param
  return operators.make(task, _ops(inpaint_size=6, **overrides), SHAPE)


def test_shapes_ranges_and_determinism(op):
  x = _images()
  corrupt = lambda k, x: _corrupt(op, k, x)
  y, params = corrupt(jax.random.key(1), x)
  assert y.shape == x.shape and y.dtype == jnp.float32
  assert float(y.min()) >= -1.0 and float(y.max()) <= 1.0
  assert jax.tree.all(jax.tree.map(lambda a: a.shape[0] == x.shape[0], params))
  assert op.description
  assert op.code_only == (op.name == 'compress')
  y2, _ = corrupt(jax.random.key(1), x)
  np.testing.assert_array_equal(y, y2)
  y3, _ = corrupt(jax.random.key(2), x)
  random = op.name in RANDOM_TASKS or (op.name == 'inpaint' and 'random' in op.description)
  assert random == (not np.array_equal(y, y3)), op.description


def test_jit_vmap_and_batch_independence(op):
  x = _images(5)
  sample = jax.jit(op.sample_params, static_argnums=1)
  params = sample(jax.random.key(3), 5)
  forward = jax.jit(op.forward)
  full = forward(x, params)
  np.testing.assert_allclose(op.forward(x, params), full, atol=1e-6)  # eager == jit
  one = lambda xi, pi: op.forward(xi[None], jax.tree.map(lambda a: a[None], pi))[0]
  np.testing.assert_allclose(jax.jit(jax.vmap(one))(x, params), full, atol=1e-6)
  # Changing batch-mates changes nothing for image 0.
  other = x.at[1:].set(0.5)
  np.testing.assert_allclose(forward(other, params)[0], full[0], atol=1e-6)
  # Params and noise of image i depend only on (key, i), not on the batch size.
  p2 = sample(jax.random.key(3), 2)
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[:2], b), params, p2)
  noise = jax.jit(op.noise)
  np.testing.assert_array_equal(noise(jax.random.key(4), full)[:2],
                                noise(jax.random.key(4), full[:2]))


def test_corrupt_images_is_per_global_index(op):
  x = np.asarray(_images(5))
  key, idx = jax.random.key(7), np.array([10, 3, 42, 0, 9])
  y, params = operators.corrupt_images(op, key, x, idx)
  assert isinstance(y, np.ndarray) and y.shape == x.shape
  # Image j is what `corrupt` gives it alone with the key fold_in(key, idx[j]) ...
  for j in (0, 2):
    yj, pj = _corrupt(op, jax.random.fold_in(key, int(idx[j])), x[j:j + 1])
    np.testing.assert_allclose(y[j], yj[0], atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[j], b[0]), params, pj)
  # ... bit for bit the same in any subset or order of images.
  sub, psub = operators.corrupt_images(op, key, x[[2, 0]], idx[[2, 0]])
  np.testing.assert_array_equal(sub, y[[2, 0]])
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[[2, 0]], b), params, psub)
  with pytest.raises(UserError, match='one index per image'):
    operators.corrupt_images(op, key, x, idx[:2])


def test_forward_grad_finite(op):
  x = _images(2)
  params = jax.jit(op.sample_params, static_argnums=1)(jax.random.key(5), 2)
  g = jax.jit(jax.grad(lambda x: jnp.sum(op.forward(x, params)**2)))(x)
  assert g.shape == x.shape and bool(jnp.all(jnp.isfinite(g)))
  if op.name != 'inpaint':
    assert float(jnp.abs(g).sum()) > 0


def test_noise_statistics():
  x = jnp.zeros((64, *SHAPE))  # mid-grey, far from clipping for sigma 0.1
  y, _ = _corrupt(operators.make('denoise', _ops(denoise_sigma=0.1), SHAPE),
                           jax.random.key(0), x)
  assert abs(float(jnp.std(y - x)) - 0.1) < 0.003 and abs(float(jnp.mean(y - x))) < 0.003
  y, _ = _corrupt(operators.make('speckle', _ops(speckle_sigma=0.2), SHAPE),
                           jax.random.key(0), x)
  u = (y + 1) / 2  # clean u = 0.5, so u = 0.5 * (1 + 0.2 n): std 0.1
  assert abs(float(jnp.std(u)) - 0.1) < 0.003 and abs(float(jnp.mean(u)) - 0.5) < 0.003
  y, _ = _corrupt(operators.make('saltpepper', _ops(saltpepper_p=0.2), SHAPE),
                           jax.random.key(0), x)
  y = np.asarray(y)
  hit = np.abs(y[..., 0]) == 1.0
  assert abs(hit.mean() - 0.2) < 0.01
  assert abs(np.mean(y[..., 0][hit] > 0) - 0.5) < 0.03
  np.testing.assert_array_equal(y[..., 1], y[..., 0])  # whole pixels, all channels


@pytest.mark.parametrize('task', ['deblur', 'motionblur'])
def test_blur_noise_is_added_after_the_blur(task):
  x = jnp.zeros((64, *SHAPE))  # constant: the blur leaves it, so y - x is the noise alone
  quiet = operators.make(task, _ops(), SHAPE)
  noisy = operators.make(task, _ops(blur_noise_sigma=0.1), SHAPE)
  y0, _ = _corrupt(quiet, jax.random.key(0), x)
  y, _ = _corrupt(noisy, jax.random.key(0), x)
  np.testing.assert_array_equal(y0, x)
  assert abs(float(jnp.std(y - x)) - 0.1) < 0.003 and abs(float(jnp.mean(y - x))) < 0.003
  assert 'noise sigma 0.1' in noisy.description and 'noise' not in quiet.description
  z = jnp.zeros((1, *SHAPE)).at[0, 8, 8].set(1.0)
  np.testing.assert_array_equal(noisy.forward(z, {}), quiet.forward(z, {}))  # A is the blur alone


def test_blur_kernels_and_constants():
  for size, sigma in ((7, 1.5), (1, 1.0), (5, 0.0)):
    k = operators.gaussian_kernel(size, sigma)
    assert k.shape == (size, size) and abs(k.sum() - 1) < 1e-6
  np.testing.assert_array_equal(operators.gaussian_kernel(3, 0.0)[1, 1], 1.0)
  for length, angle in ((7, 45.0), (5, 0.0), (4.5, 30.0), (1, 10.0)):
    k = operators.motion_kernel(length, angle)
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1 and abs(k.sum() - 1) < 1e-6
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-6)  # centred line
  np.testing.assert_allclose(operators.motion_kernel(5, 0.0)[2], 0.2, atol=1e-6)
  np.testing.assert_allclose(operators.motion_kernel(5, 90.0)[:, 2], 0.2, atol=1e-6)
  x = jnp.full((2, *SHAPE), 0.3)
  for task, overrides in [('deblur', {}), ('motionblur', {}), ('superres', {}),
                          ('superres', {'superres_filter': 'bicubic'}),
                          ('superres', {'superres_filter': 'gaussian'}),
                          ('superres', {'superres_factor': 4})]:
    op = operators.make(task, _ops(**overrides), SHAPE)
    np.testing.assert_allclose(op.forward(x, {}), x, atol=1e-6, err_msg=f'{task} {overrides}')


def test_blur_is_depthwise_and_smooths():
  x = jnp.zeros((1, *SHAPE)).at[0, 8, 8, 1].set(1.0)  # impulse in channel 1
  y = operators.make('deblur', _ops(blur_size=5, blur_sigma=1.0), SHAPE).forward(x, {})
  np.testing.assert_array_equal(y[..., 0], 0.0)
  np.testing.assert_allclose(y[0, 6:11, 6:11, 1], operators.gaussian_kernel(5, 1.0), atol=1e-6)


def test_center_mask_location():
  op = operators.make('inpaint', _ops(inpaint_mode='center', inpaint_size=6), SHAPE)
  mask = np.asarray(op.sample_params(jax.random.key(0), 3)['mask'])
  assert mask.shape == (3, 16, 16, 1)
  expected = np.ones((16, 16), np.float32)
  expected[5:11, 5:11] = 0
  np.testing.assert_array_equal(mask[:, :, :, 0], np.broadcast_to(expected, (3, 16, 16)))
  x = _images(3)
  y = op.forward(x, {'mask': mask})
  np.testing.assert_array_equal(y[:, 5:11, 5:11], 0.0)
  np.testing.assert_array_equal(y[:, :5], x[:, :5])


@pytest.mark.parametrize('mode', ['pixels', 'blocks'])
def test_random_mask_fraction(mode):
  shape = (32, 32, 1)
  op = operators.make('inpaint', _ops(inpaint_mode=mode, inpaint_fraction=0.3, inpaint_block=4),
                      shape)
  mask = np.asarray(jax.jit(op.sample_params, static_argnums=1)(jax.random.key(0), 64)['mask'])
  assert set(np.unique(mask)) <= {0.0, 1.0}
  assert abs((1 - mask).mean() - 0.3) < 0.02
  assert not np.array_equal(mask[0], mask[1])  # per image
  if mode == 'blocks':  # missing pixels come in runs: most have a missing neighbour
    miss = mask[..., 0] == 0
    assert (miss[:, :, 1:] & miss[:, :, :-1]).sum() > 0.5 * miss.sum()


def test_superres_box_is_block_mean_replicated():
  op = operators.make('superres', _ops(superres_factor=2, superres_filter='box'), SHAPE)
  x = np.asarray(_images(2))
  means = x.reshape(2, 8, 2, 8, 2, 3).mean(axis=(2, 4))
  expected = means.repeat(2, axis=1).repeat(2, axis=2)
  np.testing.assert_allclose(op.forward(jnp.asarray(x), {}), expected, atol=1e-6)


def test_superres_gaussian_and_bicubic_are_blockwise_constant():
  x = _images(2)
  for filt in ('gaussian', 'bicubic'):
    y = operators.make('superres', _ops(superres_filter=filt, superres_factor=4), SHAPE).forward(
        x, {})
    blocks = np.asarray(y).reshape(2, 4, 4, 4, 4, 3)
    np.testing.assert_allclose(blocks, np.broadcast_to(blocks[:, :, :1, :, :1], blocks.shape),
                               atol=1e-6)


def test_config_mapping_and_fill():
  ops = dict(_ops().to_dict(), inpaint_fill=-1.0)
  op = operators.make('inpaint', ops, SHAPE)
  y, _ = _corrupt(op, jax.random.key(0), _images())
  np.testing.assert_array_equal(y[:, 8, 8], -1.0)


@pytest.mark.parametrize('task,overrides,key', [
    ('denoise', {'denoise_sigma': -0.1}, 'denoise_sigma'),
    ('speckle', {'speckle_sigma': -1.0}, 'speckle_sigma'),
    ('saltpepper', {'saltpepper_p': 1.5}, 'saltpepper_p'),
    ('deblur', {'blur_size': 6}, 'blur_size'),
    ('deblur', {'blur_size': 0}, 'blur_size'),
    ('deblur', {'blur_sigma': -1.0}, 'blur_sigma'),
    ('deblur', {'blur_noise_sigma': -0.1}, 'blur_noise_sigma'),
    ('motionblur', {'motion_length': 0}, 'motion_length'),
    ('inpaint', {'inpaint_mode': 'ring'}, 'inpaint_mode'),
    ('inpaint', {'inpaint_mode': 'pixels', 'inpaint_fraction': -0.1}, 'inpaint_fraction'),
    ('inpaint', {'inpaint_mode': 'blocks', 'inpaint_block': 0}, 'inpaint_block'),
    ('inpaint', {'inpaint_size': 40}, 'inpaint_size'),
    ('superres', {'superres_factor': 3}, 'superres_factor'),
    ('superres', {'superres_filter': 'lanczos'}, 'superres_filter'),
])
def test_bad_parameters_raise(task, overrides, key):
  with pytest.raises(UserError, match=f'config.ops.{key}'):
    operators.make(task, _ops(**overrides), SHAPE)


def test_unknown_task_lists_valid_ones():
  with pytest.raises(UserError, match='denoise.*superres'):
    operators.make('sharpen', _ops(), SHAPE)


def test_missing_key():
  with pytest.raises(UserError, match='config.ops.blur_size'):
    operators.make('deblur', {}, SHAPE)
