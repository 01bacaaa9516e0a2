"""Whole-config validation: every shipped config passes; each kind of bad value or key is one sentence."""

import glob
import importlib
import os

import ml_collections
import pytest

from ge_jax import config_check
from ge_jax.errors import UserError
from conftest import resolved

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, 'configs', 'mnist*.py')))


@pytest.fixture(scope='module')
def base():
  from ge_jax import cli
  return cli.base_config()


@pytest.mark.parametrize('name', NAMES)
def test_every_config_file_is_valid(name, base):
  config_check.validate(importlib.import_module(f'configs.{name}').get_config(), base)


@pytest.mark.parametrize('name', ['rock64', 'rock64_spatial', 'photos64', 'celeba64'])
def test_64px_config_files_are_valid(name, base):
  # The CLIs validate every config: keys a config adds (data.rock, data.train_size) must be declared.
  config_check.validate(importlib.import_module(f'configs.{name}').get_config(), base)


def test_rock64_on_real_slices_from_a_folder_is_valid(base):
  from configs import rock64
  c = rock64.get_config()
  c.data.source, c.data.path, c.data.crop, c.data.crops_per_image = 'folder', '/data/slices', 'random', 16
  config_check.validate(c, base)


def _bad(base, change, methods=config_check.METHODS):
  c = base.copy_and_resolve_references()
  with c.unlocked():
    change(c)
  with pytest.raises(UserError) as e:
    config_check.validate(c, base, methods)
  msg = str(e.value)
  assert '\n' not in msg
  return msg


@pytest.mark.parametrize('key, value, allowed', [
    ('gan.steps', -5, '>= 1'), ('ae.steps', 0, '>= 1'), ('gan.lr', 0.0, '> 0'), ('ae.lr', -1e-3, '> 0'),
    ('gan.lr', float('nan'), '> 0'), ('gan.batch_size', 0, '>= 1'), ('ae.ckpt_every', 0, '>= 1'),
    ('gan.keep', 0, '>= 1'), ('ae.generated_fraction', 1.5, '[0, 1]'), ('gan.b2', 1.0, '[0, 1)'),
    ('solve.restarts', 0, '>= 1'), ('solve.lam_gan', -1.0, '>= 0'), ('solve.lam_ge', -1.0, 'None'),
    ('solve.prior', 'l3', "'l2'"), ('data.channels', 2, '1, 3'), ('model.conv_impl', 'cuda', "'xla'"),
])
def test_value_out_of_range_names_key_value_and_range(base, key, value, allowed):
  block, leaf = key.split('.')
  msg = _bad(base, lambda c: setattr(c[block], leaf, value))
  assert f'config.{key}=' in msg and allowed in msg


def test_a_typo_inside_a_config_file_gets_a_did_you_mean(base):
  msg = _bad(base, lambda c: setattr(c.ae, 'code_dimm', 16))
  assert 'config.ae.code_dimm' in msg and 'did you mean config.ae.code_dim' in msg


def test_declared_keys_are_accepted(base):
  c = base.copy_and_resolve_references()
  with c.unlocked():
    c.declared_keys = ('extra', 'solve.my_knob')
    c.extra = ml_collections.ConfigDict(dict(a=1))
    c.solve.my_knob = 3
    c.note = 'notes are always allowed'
  config_check.validate(c, base)


def test_the_removed_global_prior_weight_points_to_the_per_method_ones(base):
  msg = _bad(base, lambda c: setattr(c.solve, 'lam', 0.5))
  assert 'config.solve.lam' in msg and 'did you mean config.solve.lam_' in msg


def test_whole_blocks_and_cross_checks(base):
  assert 'superres_factor' in _bad(base, lambda c: setattr(c.ops, 'superres_factor', 3))
  assert 'base_size' in _bad(base, lambda c: setattr(c.model, 'base_size', 5))
  assert 'nois' in _bad(base, lambda c: setattr(c.ae, 'augment', 'nois'))
  assert 'ge_pix.restarts >= 2' in _bad(base, lambda c: setattr(c.solve.ge_pix, 'restarts', 1))
  assert 'ge_sample.restarts >= 2' in _bad(base, lambda c: c.solve.ge_sample.update(output='mean', restarts=1))
  assert "config.solve.ge_pix.output='median'" in _bad(base, lambda c: setattr(c.solve.ge_pix, 'output', 'median'))
  assert 'config.solve.ge_pix.lam' in _bad(base, lambda c: setattr(c.solve.ge_pix, 'lam', -0.1))


def test_a_mean_of_one_chain_is_one_sentence_wherever_it_is_found(base):
  from ge_jax import solver
  msg = _bad(base, lambda c: c.solve.ge_sample.update(output='mean', restarts=1))
  assert msg == "config.solve.ge_sample.output='mean' averages over chains; set config.solve.ge_sample.restarts >= 2."
  c = base.copy_and_resolve_references()
  c.solve.ge_sample.update(output='mean', restarts=1)
  with pytest.raises(UserError) as e:  # the run, where config_check did not run first (the API)
    resolved(c, 'ge_sample')
  assert str(e.value) == msg
  with pytest.raises(UserError) as e:  # config.solve's own restarts
    solver.SolverSpec(objective='ge', steps=1, restarts=1, n_init=0, output='mean')
  assert str(e.value) == "SolverSpec(output='mean') averages over restarts; it needs restarts >= 2."


def test_a_setting_ignored_where_it_was_changed_is_an_error(base):
  assert "source='folder'" in _bad(base, lambda c: setattr(c.data, 'path', 'my_images'))
  assert 'vae' in _bad(base, lambda c: setattr(c.ae, 'kl_weight', 0.1))
  assert 'augment' in _bad(base, lambda c: setattr(c.ae, 'augment_recon', 0.5))
  c = base.copy_and_resolve_references()
  c.data.source, c.data.path = 'folder', 'my_images'
  config_check.validate(c, base)


def test_domain_metrics_is_one_of_its_choices_and_rock_needs_grayscale(base):
  msg = _bad(base, lambda c: setattr(c.eval, 'domain_metrics', 'rocks'))
  assert "config.eval.domain_metrics='rocks'" in msg and "'auto', 'rock', 'none'" in msg
  msg = _bad(base, lambda c: (setattr(c.eval, 'domain_metrics', 'rock'), setattr(c.data, 'channels', 3)))
  assert 'domain_metrics' in msg and 'channels=3' in msg
  for choice in ('auto', 'rock', 'none'):
    c = base.copy_and_resolve_references()
    c.eval.domain_metrics = choice
    config_check.validate(c, base)
