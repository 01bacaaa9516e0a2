"""ge_jax.api on the tiny trained workdir: load, restore (any task, any method), score, save."""

import json
import os

import numpy as np
import pytest

from ge_jax.errors import UserError


@pytest.fixture(scope='module')
def model(tiny_workdir):
  from ge_jax import api
  return api.load(tiny_workdir)  # the config saved with the checkpoints


def test_load_reads_the_saved_config(model, tiny_config):
  assert model.config.name == tiny_config.name and model.image_shape == (28, 28, 1)
  assert set(model.params) == {'generator', 'autoencoder'}


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


def test_bad_input_is_one_sentence(model):
  from ge_jax import api
  with pytest.raises(UserError, match='unknown task'):
    api.restore(model, np.zeros((2, 28, 28, 1), np.float32), task='nope')
  with pytest.raises(UserError, match=r'shape \(2, 32, 32, 1\)'):
    api.restore(model, np.zeros((2, 32, 32, 1), np.float32), task='denoise')
  with pytest.raises(UserError, match='no AE checkpoints'):
    api.load(os.path.join(os.path.dirname(__file__), 'nowhere'))
