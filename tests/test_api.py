"""ge_jax.api on the tiny trained workdir: load, restore (any task, any method), score, save."""

import json
import os

import numpy as np
import pytest

from ge_jax.errors import UserError
from conftest import resolved
from ge_jax import methods


@pytest.fixture(scope='module')
def model(tiny_workdir):
  from ge_jax import api
  return api.load(tiny_workdir)  # the config saved with the checkpoints


def test_load_reads_the_saved_config(model, tiny_config):
  assert model.config.name == tiny_config.name and model.image_shape == (28, 28, 1)
  assert set(model.params) == {'generator', 'discriminator', 'autoencoder'}


def test_restore_is_the_experiment_bit_for_bit(model, tiny_config, tiny_workdir, tmp_path):
  from ge_jax import api, data, experiment, load
  clean = data.load(tiny_config.data).test[:5]
  out = api.restore(model, clean, task='superres-x4', methods=('ae', 'ge'), indices=np.arange(3, 8))
  c = tiny_config.copy_and_resolve_references()
  c.ops.superres_factor = 4
  ref = experiment.restore(c, load.load_trained(tiny_config, tiny_workdir), task='superres', clean=clean,
                           indices=np.arange(3, 8), methods=('ae', 'ge'), progress=False)
  np.testing.assert_array_equal(out.corrupted, ref.corrupted)
  np.testing.assert_array_equal(out.recon['ge'], ref.recon['ge'])
  s = api.score(out)
  assert set(s['methods']) == {'corrupted', 'ae', 'ge'} and np.isfinite(s['methods']['ge']['psnr_mean'])
  paths = api.save(out, str(tmp_path / 'r'))
  assert json.load(open(paths['metrics']))['task'] == 'superres'
  assert 'ge' in api.table(s)


def test_restore_given_observation_and_ops(model, tiny_config):
  from ge_jax import api, data
  clean = data.load(tiny_config.data).test[:3]
  noisy = api.restore(model, clean, task='denoise', ops={'denoise_sigma': 0.5}, methods=('ae',))
  assert 'sigma 0.5' in noisy.description and model.config.ops.denoise_sigma == 0.3  # model untouched
  out = api.restore(model, corrupted=noisy.corrupted, task='none', methods=('ae',))
  np.testing.assert_array_equal(out.recon['ae'], noisy.recon['ae'])  # the same observation, the same AE


def test_g_random_ignores_the_input_and_depends_on_the_image_index_only(model, tiny_config):
  """g_random is G(z_i) with z_i drawn from (seed, image index): the same for any task or batch-mates."""
  import jax
  from ge_jax import api
  from ge_jax.models import Nets
  clean = api_data(tiny_config)[:4]
  a = api.restore(model, clean, task='denoise', methods=('g_random',), indices=np.arange(10, 14))
  b = api.restore(model, clean[2:], task='deblur', methods=('g_random',), indices=np.arange(12, 14))
  np.testing.assert_allclose(a.recon['g_random'][2:], b.recon['g_random'], atol=1e-6)
  assert a.recon['g_random'].shape == clean.shape and np.abs(np.diff(a.recon['g_random'], axis=0)).max() > 1e-3
  g = Nets(model.config).G(model.params['generator'], jax.random.normal(jax.random.key(0), (64, Nets(model.config).latent_dim)))
  assert abs(float(np.std(a.recon['g_random'])) - float(np.std(np.asarray(g)))) < 0.2  # samples of G, not noise


def test_ge_pix_is_the_sample_with_the_observed_pixels(model, tiny_config):
  """ge_pix runs ge_sample's chain (same starts and noise) with lam / pixel_var ||G(z) - y||^2 added;
  a huge pixel_var makes that term vanish, so it is ge_sample again. Compression: no pixels, a note."""
  from ge_jax import api
  clean = api_data(tiny_config)[:4]
  out = api.restore(model, clean, task='denoise', methods=('ge_sample', 'ge_pix'))
  assert out.recon['ge_pix'].shape == clean.shape and np.isfinite(out.recon['ge_pix']).all()
  assert np.abs(out.recon['ge_pix'] - out.recon['ge_sample']).max() > 1e-3
  far = api.Model(config=model.config.copy_and_resolve_references(), params=model.params, workdir=model.workdir)
  far.config.solve.ge_pix = {'pixel_var': 1e12}
  far.config.solve.ge_sample.restarts, far.config.solve.ge_sample.output = 1, 'best'  # one chain each
  same = api.restore(far, clean, task='denoise', methods=('ge_sample', 'ge_pix'))
  np.testing.assert_allclose(same.recon['ge_pix'], same.recon['ge_sample'], atol=1e-5)
  far.config.solve.ge_pix = {'pixel_var': 1e12, 'restarts': 3, 'output': 'mean'}  # ge_pix's own chains
  far.config.solve.ge_sample.restarts, far.config.solve.ge_sample.output = 3, 'mean'
  means = api.restore(far, clean, task='denoise', methods=('ge_sample', 'ge_pix'))
  np.testing.assert_allclose(means.recon['ge_pix'], means.recon['ge_sample'], atol=1e-5)
  assert np.abs(means.recon['ge_pix'] - same.recon['ge_pix']).max() > 1e-3
  # the mean's first chain comes with it, and is the one-chain run's sample (same start, same noise)
  np.testing.assert_allclose(means.recon['ge_pix_one'], same.recon['ge_pix'], atol=1e-4)
  assert 'ge_pix_one' not in same.recon and 'ge_sample_one' not in means.recon
  spec, lr, lam = resolved(model.config.solve, 'ge_pix')
  s2 = methods.pixel_var(model.config.solve)
  assert spec.sampler == 'langevin' and spec.pixel_weight == pytest.approx(lam / s2)
  assert lr == pytest.approx(min(model.config.solve.ge_sample.lr, 2 * s2 * methods.max_pixel_step(model.config.solve)))
  stiff = model.config.copy_and_resolve_references()  # a stiff pixel term: the step on it is capped
  stiff.solve.ge_sample.lr = 0.01
  stiff.solve.ge_pix = {'pixel_var': 0.03, 'max_pixel_step': 0.05}
  assert resolved(stiff, 'ge_pix')[1] == pytest.approx(0.003)
  stiff.solve.ge_pix = {'pixel_var': 0.3, 'max_pixel_step': 0.05}  # soft enough: ge_sample's step
  assert resolved(stiff, 'ge_pix')[1] == pytest.approx(0.01)
  stiff.solve.ge_pix = {'temperature': 0.25}  # each chain its own temperature, 1 unless set
  assert resolved(stiff, 'ge_pix')[0].temperature == 0.25
  assert resolved(stiff, 'ge_sample')[0].temperature == 1.0
  stiff.solve.ge_pix = {'lam': 0.5, 'pixel_var': 0.3}  # its own code variance; the pixel weight follows it
  spec, _, lam = resolved(stiff, 'ge_pix')
  assert lam == 0.5 and spec.pixel_weight == pytest.approx(0.5 / 0.3)
  assert resolved(stiff, 'ge_sample')[2] == stiff.solve.ge_sample.lam != 0.5
  stiff.solve.ge_pix = {'lam': None, 'pixel_var': 0.3}  # unset: ge_sample's
  assert resolved(stiff, 'ge_pix')[2] == stiff.solve.ge_sample.lam
  stiff.solve.ge_pix = {'temperature': 0.0}
  with pytest.raises(UserError, match='temperature'):
    resolved(stiff, 'ge_pix')
  for bad, match in (({'restarts': 0}, 'restarts'), ({'output': 'median'}, 'output'), ({'lam': 0.0}, 'lam='),
                     ({'output': 'mean', 'restarts': 1}, 'restarts >= 2')):
    stiff.solve.ge_pix = bad
    with pytest.raises(UserError, match=match):
      resolved(stiff, 'ge_pix')
  code_only = api.restore(model, clean, task='compress', methods=('ge_pix',), strict=False)
  assert 'ge_pix' not in code_only.recon and 'no image is observed' in code_only.notes['ge_pix']
  old = model.config.copy_and_resolve_references()  # a config saved before ge_pix existed
  del old.solve['ge_pix']
  assert methods.pixel_var(old.solve) == methods.DEFAULT_PIXEL_VAR
  old.solve.ge_pix = {'pixel_var': 0.0}
  with pytest.raises(UserError, match='pixel_var'):
    resolved(old, 'ge_pix')
  old.solve.ge_pix = {'pixel_var': 0.3, 'max_pixel_step': -1}
  with pytest.raises(UserError, match='max_pixel_step'):
    resolved(old, 'ge_pix')


def api_data(config):
  from ge_jax import data
  return data.load(config.data).test


def test_bad_input_is_one_sentence(model):
  from ge_jax import api
  with pytest.raises(UserError, match='unknown task'):
    api.restore(model, np.zeros((2, 28, 28, 1), np.float32), task='nope')
  with pytest.raises(UserError, match=r'shape \(2, 32, 32, 1\)'):
    api.restore(model, np.zeros((2, 32, 32, 1), np.float32), task='denoise')
  with pytest.raises(UserError, match='no AE checkpoints'):
    api.load(os.path.join(os.path.dirname(__file__), 'nowhere'))


@pytest.mark.parametrize('images, match', [
    (np.zeros((2, 28, 28, 1), np.uint8), 'uint8'),                      # 0..255 integers
    (np.full((2, 28, 28, 1), 200.0, np.float32), r'\[200, 200\]'),     # floats on 0..255
    (np.zeros((0, 28, 28, 1), np.float32), 'no images'),                # an empty batch
])
def test_images_in_another_range_or_none_are_refused(model, images, match):
  from ge_jax import api
  with pytest.raises(UserError, match=match):
    api.restore(model, images, task='denoise', methods=('ae',))


def test_what_cannot_take_effect_is_refused(model, tmp_path):
  from ge_jax import api
  x = np.zeros((2, 28, 28, 1), np.float32)
  with pytest.raises(UserError, match="did you mean 'denoise_sigma'"):
    api.restore(model, x, task='denoise', ops={'denoise_sigm': 0.5}, methods=('ae',))
  with pytest.raises(UserError, match="no effect on task 'denoise'"):
    api.restore(model, x, task='denoise', ops={'blur_sigma': 2.0}, methods=('ae',))
  with pytest.raises(UserError, match='give one or the other'):  # a given observation is never dropped
    api.restore(model, x, corrupted=x, task='deblur', methods=('ae',))
  with pytest.raises(UserError, match='cannot run on task'):       # named, so it must apply
    api.restore(model, x, task='compress', methods=('gan', 'ge'))
  out = api.restore(model, x, task='compress')                     # all methods: the others skipped with a note
  assert 'gan' not in out.recon and 'gan' in out.notes
  (tmp_path / 'afile').write_text('mine')
  with pytest.raises(UserError, match='is a file'):
    api.save(out, str(tmp_path / 'afile'))
  assert (tmp_path / 'afile').read_text() == 'mine'
