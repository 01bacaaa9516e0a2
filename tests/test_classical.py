"""Classical restorations: each beats its input on MNIST digits, matches skimage, and tunes on a grid."""

import numpy as np
import pytest

from ge_jax import classical, metrics, operators
from ge_jax.errors import UserError
from ge_jax import methods


@pytest.fixture(scope='module')
def digits():
  from configs import mnist
  from ge_jax import data
  config = mnist.get_config()
  return config.ops, data.load(config.data).val[:16]


def _psnr(a, b):
  return float(np.mean(np.asarray(metrics.psnr(metrics.to_unit(a), metrics.to_unit(b)))))


def _ops(ops, **overrides):
  ops = ops.copy_and_resolve_references()
  for k, v in overrides.items():
    ops[k] = v
  return ops


@pytest.mark.parametrize('op_name,overrides,method,param', [
    ('denoise', {}, 'tv', 0.05),
    ('speckle', {}, 'tv', 0.05),
    ('saltpepper', {}, 'median', 3),
    ('deblur', {}, 'richardson_lucy', 30),
    ('deblur', {}, 'wiener', 1e-3),
    ('motionblur', {}, 'richardson_lucy', 30),
    ('inpaint', dict(inpaint_mode='pixels'), 'biharmonic', None),
    ('superres', dict(superres_factor=2), 'interpolate', 3),
])
def test_each_method_beats_its_input(digits, op_name, overrides, method, param):
  ops, clean = digits
  ops = _ops(ops, **overrides)
  y, p = classical.corrupt(op_name, ops, clean)
  out = classical.restore(op_name, y, p, ops, param, method)
  assert out.shape == clean.shape and out.dtype == np.float32
  assert out.min() >= -1 and out.max() <= 1
  assert _psnr(out, clean) > _psnr(y, clean) + 0.4, (_psnr(out, clean), _psnr(y, clean))


def test_corrupt_matches_the_operator_per_image_keys(digits):
  import jax
  ops, clean = digits
  y, p = classical.corrupt('inpaint', _ops(ops, inpaint_mode='pixels'), clean[:4], indices=np.array([7, 3, 9, 0]))
  op = operators.make('inpaint', _ops(ops, inpaint_mode='pixels'), clean.shape[1:])
  y1, p1 = operators.corrupt(op, jax.random.fold_in(jax.random.key(ops.seed), 9), clean[2:3])
  np.testing.assert_allclose(y[2], np.asarray(y1[0]), atol=1e-6)
  np.testing.assert_array_equal(p['mask'][2], np.asarray(p1['mask'][0]))


def test_batched_richardson_lucy_is_skimages():
  from skimage.restoration import richardson_lucy
  rng = np.random.default_rng(0)
  planes = rng.uniform(0, 1, (3, 20, 24))
  psf = operators.motion_kernel(5, 30)
  ours = classical.richardson_lucy_batch(planes, psf, 15)
  ref = np.stack([richardson_lucy(x, psf, num_iter=15) for x in planes])
  np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_inpainting_keeps_observed_pixels_and_superres_order0_is_the_input(digits):
  ops, clean = digits
  ops_i = _ops(ops, inpaint_mode='center')
  y, p = classical.corrupt('inpaint', ops_i, clean)
  out = classical.restore('inpaint', y, p, ops_i)
  seen = p['mask'][..., 0] > 0.5
  np.testing.assert_allclose(out[..., 0][seen], y[..., 0][seen], atol=1e-5)
  ops_s = _ops(ops, superres_factor=4)
  y, p = classical.corrupt('superres', ops_s, clean)
  np.testing.assert_allclose(classical.restore('superres', y, p, ops_s, 0), y, atol=1e-5)


def test_tune_picks_the_best_row_and_rejects_what_it_cannot_do(digits):
  ops, clean = digits
  y, p = classical.corrupt('denoise', ops, clean)
  best, table = classical.tune('denoise', clean, y, p, ops, grid=(0.01, 0.05, 3.0))
  assert [r['param'] for r in table] == [0.01, 0.05, 3.0]
  assert best.psnr == max(r['psnr_mean'] for r in table) and best.param == 0.05 and best.method == 'tv'
  best, table = classical.tune('saltpepper', clean, *classical.corrupt('saltpepper', ops, clean), ops)
  assert {r['method'] for r in table} == {'median', 'tv'}
  for bad in (lambda: classical.tune('compress', clean, clean, {}, ops),
              lambda: classical.restore('deblur', y, p, ops, 3, method='tv'),
              lambda: classical.restore('warp', y, p, ops),
              lambda: classical.restore('denoise', y[0], p, ops)):
    with pytest.raises(UserError):
      bad()
  assert not classical.has_classical('compress') and classical.has_classical('inpaint')


def test_colour_images_restore_per_channel():
  rng = np.random.default_rng(1)
  clean = np.clip(rng.normal(0, 0.3, (2, 16, 16, 3)), -1, 1).astype(np.float32)
  ops = dict(blur_size=5, blur_sigma=1.0, seed=0)
  y, p = classical.corrupt('deblur', ops, clean)
  assert classical.restore('deblur', y, p, ops, 10).shape == clean.shape
  ops = dict(denoise_sigma=0.2, seed=0)
  y, p = classical.corrupt('denoise', ops, clean)
  assert classical.restore('denoise', y, p, ops, 0.1).shape == clean.shape


def test_recorded_mnist_settings_name_real_methods():
  from ge_jax.tasks import EVAL_TASKS
  for task, (method, param, psnr) in classical.MNIST_VALIDATION.items():
    m = {x.name: x for x in classical.METHODS[EVAL_TASKS[task].operator]}[method]
    assert param in m.grid and 10 < psnr < 50
  assert set(classical.MNIST_VALIDATION) == {t for t, spec in EVAL_TASKS.items() if classical.has_classical(spec.operator)}


def test_evaluation_uses_the_setting_of_the_most_specific_task():
  from configs import mnist
  from ge_jax import tasks
  c = mnist.get_config()
  for name in ('deblur', 'deblur-noisy', 'motionblur', 'motionblur-noisy'):
    cfg, op = tasks.task_config(c, name)
    assert methods.classical_setting(op, cfg.ops) == classical.MNIST_VALIDATION[name][:2], name
  assert 'deblur-noisy' not in tasks.DEFAULT_TASKS and len(tasks.DEFAULT_TASKS) == 11
