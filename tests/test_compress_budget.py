"""config.solve.compress: GE's MAP on a code-only task (compression) runs its own steps, restarts and
lam; every other method and task keeps the image tasks' budget; unset values fall back to it."""

import numpy as np
import pytest

from ge_jax.errors import UserError
from conftest import resolved


@pytest.fixture
def solve_cfg(tiny_config):
  c = tiny_config.copy_and_resolve_references()
  c.solve.steps, c.solve.restarts, c.solve.lam_ge = 20, 2, 0.01
  c.solve.compress.steps, c.solve.compress.restarts, c.solve.compress.lam = 700, 3, 0.002
  return c.solve


def test_the_block_applies_to_ge_on_code_only_tasks_only(solve_cfg):
  spec, _, lam = resolved(solve_cfg, 'ge', code_only=True)
  assert (spec.steps, spec.restarts, lam) == (700, 3, 0.002)
  spec, _, lam = resolved(solve_cfg, 'ge', code_only=False)
  assert (spec.steps, spec.restarts, lam) == (20, 2, 0.01)
  for method in ('gan', 'csgm', 'ge_op'):  # their observations are images, not exact codes
    spec, _, lam = resolved(solve_cfg, method, code_only=True)
    assert (spec.steps, spec.restarts) == (20, 2)
  assert resolved(solve_cfg, 'ge_sample', code_only=True)[0].steps == solve_cfg.ge_sample.steps
  # the recorded trace is cut to the steps that run
  assert resolved(solve_cfg, 'ge', record_every=10_000, code_only=True)[0].record_every == 700


def test_unset_values_fall_back_to_the_image_tasks(solve_cfg):
  solve_cfg.compress.steps = None
  spec, _, lam = resolved(solve_cfg, 'ge', code_only=True)
  assert (spec.steps, spec.restarts, lam) == (20, 3, 0.002)
  del solve_cfg['compress']  # a config saved before the block existed
  spec, _, lam = resolved(solve_cfg, 'ge', code_only=True)
  assert (spec.steps, spec.restarts, lam) == (20, 2, 0.01)


@pytest.mark.parametrize('key, value, match', [
    ('steps', 0, 'compress.steps=0 must be an integer >= 1'),
    ('restarts', -2, 'compress.restarts=-2 must be an integer >= 1'),
    ('lam', -1.0, 'compress.lam=-1.0 must be a number >= 0'),
])
def test_a_bad_value_is_one_sentence_also_without_the_config_check(solve_cfg, key, value, match):
  # api.restore takes configs that no CLI validated (a user's edited Model.config)
  with solve_cfg.unlocked():
    solve_cfg.compress[key] = value
  with pytest.raises(UserError, match=match) as e:
    resolved(solve_cfg, 'ge', code_only=True)
  assert '\n' not in str(e.value)


@pytest.mark.parametrize('key, value', [('steps', 0), ('restarts', -1), ('lam', -0.5)])
def test_the_config_check_names_the_key(tiny_config, key, value):
  from ge_jax import cli, config_check
  c = tiny_config.copy_and_resolve_references()
  with c.unlocked():
    c.solve.compress[key] = value
  with pytest.raises(UserError, match=f'config.solve.compress.{key}=') as e:
    config_check.validate(c, cli.base_config())
  assert '\n' not in str(e.value)


def test_restore_runs_the_block_on_compression(tiny_workdir, tiny_config):
  # The block (steps s, restarts r, lam l) gives exactly what a config without it gives with the
  # image budget set to (s, r, l): restore passes the task's code_only through.
  from ge_jax import api, data
  model = api.load(tiny_workdir)
  clean = data.load(tiny_config.data).test[:4]
  block = model.config.copy_and_resolve_references()
  block.solve.compress.steps, block.solve.compress.restarts, block.solve.compress.lam = 3, 1, 0.05
  plain = model.config.copy_and_resolve_references()
  plain.solve.steps, plain.solve.restarts, plain.solve.lam_ge = 3, 1, 0.05
  plain.solve.compress.steps = plain.solve.compress.restarts = plain.solve.compress.lam = None
  run = lambda c, task: api.restore(api.Model(config=c, params=model.params, workdir=model.workdir),
                                    clean, task=task, methods=('ge',)).recon['ge']
  np.testing.assert_array_equal(run(block, 'compress'), run(plain, 'compress'))
  # on an image task the block is ignored: the two configs' image budgets differ, and so do the results
  assert np.abs(run(block, 'denoise') - run(plain, 'denoise')).max() > 1e-4
