"""The method objects (ge_jax.methods): what applies to which task, settings resolved once, rows returned."""

import pytest

from ge_jax import methods
from ge_jax.errors import UserError

# The order of every results table, grid and --methods default: user-visible, so pinned here.
ORDER = ('ae', 'gan', 'ge', 'ge_sample', 'ge_pix', 'ge_pix_one', 'csgm', 'ge_op', 'classical', 'g_random')


def test_rows_keep_the_tables_order_blind_first():
  assert methods.ROWS == ORDER
  assert methods.ROWS == methods.BLIND + methods.KNOWN + methods.REFERENCE
  labels = [methods.LABELS[r] for r in methods.ROWS]
  assert len(set(labels)) == len(labels) and len({methods.SHORT_LABELS[r] for r in ORDER}) == len(ORDER)
  assert all(methods.DESCRIPTIONS[r] and '\n' not in methods.DESCRIPTIONS[r] for r in ORDER)


def test_select_orders_and_refuses_unknown_names():
  assert [m.name for m in methods.select(['g_random', 'ge', 'ae'])] == ['ae', 'ge', 'g_random']
  with pytest.raises(UserError, match="unknown method.*'gee'"):
    methods.select(['ge', 'gee'])


@pytest.mark.parametrize('task, expected', [
    (methods.Task('denoise'), set()),
    (methods.Task('none'), {'csgm', 'ge_op', 'classical'}),                   # the operator is unknown
    (methods.Task('compress', code_only=True), {'gan', 'ge_pix', 'csgm', 'ge_op', 'classical'}),
])
def test_which_methods_apply_to_a_task(task, expected):
  skipped = {m.name for m in methods.TABLE if m.why_not(task)}
  assert skipped == expected
  assert all('operator is unknown' in methods.BY_NAME[m].why_not(task) for m in expected if task.name == 'none')


def test_every_method_resolves_its_settings_from_the_base_config():
  from configs import mnist
  c = mnist.get_config()
  for code_only in (False, True):
    task = methods.Task('compress' if code_only else 'denoise', code_only=code_only, ops=c.ops)
    for m in methods.TABLE:
      s = m.settings(c, task, record_every=10)
      if m.objective:  # a latent method: a spec of its objective, recording capped at its steps
        assert s.spec.objective == m.objective and s.spec.record_every == min(10, s.spec.steps)
        assert (s.spec.sampler == 'langevin') == m.sampled
  ge = methods.BY_NAME['ge']
  assert ge.settings(c, methods.Task('compress', code_only=True)).spec.steps == c.solve.compress.steps
  assert ge.settings(c, methods.Task('denoise')).spec.steps == c.solve.steps


def test_a_bad_setting_is_one_sentence_naming_the_key():
  from configs import mnist
  c = mnist.get_config()
  c.solve.lam_csgm = -1.0
  with pytest.raises(UserError, match=r'^config\.solve\.lam_csgm=-1 is not allowed'):
    methods.BY_NAME['csgm'].settings(c, methods.Task('denoise'))
  c = mnist.get_config()
  c.solve.likelihood = 'poisson'
  with pytest.raises(UserError, match='config.solve.likelihood'):
    methods.BY_NAME['csgm'].settings(c, methods.Task('denoise'))


def test_the_recommendation_covers_every_operator_once():
  from ge_jax import operators
  for task in (*operators.TASKS,):
    picks = [m.name for m in methods.TABLE if task in m.recommended_for]
    assert len(picks) == 1, (task, picks)
    assert methods.BY_NAME[picks[0]].kind == 'blind' and methods.recommended(task) == picks[0]


def test_is_setting_names_the_methods_keys_only():
  assert methods.is_setting('solve.lam_ge') and methods.is_setting('solve.ge_pix.pixel_var')
  assert methods.is_setting('solve.steps') and methods.is_setting('solve.compress.lam')
  assert not methods.is_setting('solve.batch_size') and not methods.is_setting('solve.seed')
  assert not methods.is_setting('solve.n_images') and not methods.is_setting('solve.task')
