"""The method table (ge_jax.methods): the lists derived from it agree with each other and with their users."""

import os
import subprocess
import sys

from ge_jax import methods

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The order of every results table, grid and --methods default: user-visible, so pinned here.
ORDER = ('ae', 'gan', 'ge', 'ge_sample', 'ge_pix', 'ge_pix_one', 'csgm', 'ge_op', 'classical', 'g_random')


def test_rows_and_methods_keep_the_tables_order():
  assert methods.ROWS == ORDER
  assert methods.METHODS == tuple(m for m in ORDER if m != 'ge_pix_one')
  # report.py lists blind methods first, the operator-known ones next, the reference last
  assert methods.ROWS == methods.BLIND + methods.KNOWN + methods.REFERENCE


def test_every_row_has_one_kind_and_its_labels():
  assert all(m.kind in methods.KINDS for m in methods.TABLE)
  assert set(methods.LABELS) == set(methods.SHORT_LABELS) == set(methods.ROWS)
  assert len(set(methods.LABELS.values())) == len(methods.ROWS)  # columns that can be told apart
  assert len(set(methods.SHORT_LABELS.values())) == len(methods.ROWS)


def test_the_facts_are_consistent():
  assert set(methods.PIXELS) <= set(methods.GE_FORMS) <= set(methods.BLIND)
  assert not set(methods.REFERENCE) & (set(methods.BLIND) | set(methods.GE_FORMS) | set(methods.OBJECTIVE))
  for m in methods.TABLE:
    if m.row_of is not None:  # an extra row comes right after the method that returns it
      assert m.row_of in methods.METHODS and m.objective is None and not m.sampled
      assert methods.ROWS.index(m.name) == methods.ROWS.index(m.row_of) + 1
  assert set(methods.SAMPLED) | set(methods.SOLVER_METHODS) == set(methods.OBJECTIVE)
  assert not set(methods.SAMPLED) & set(methods.SOLVER_METHODS)
  assert methods.SOLVER_METHODS == ('gan', 'ge', 'csgm', 'ge_op')  # the config's lr_<m> / lam_<m>


def test_objectives_are_the_solvers():
  from ge_jax import solver
  assert set(methods.OBJECTIVE.values()) <= set(solver.OBJECTIVES)
  # experiment.restore passes the operator to exactly the operator-known latent methods
  assert {m for m in methods.OBJECTIVE if m in solver.FORWARD_OBJECTIVES} == set(methods.KNOWN) & set(methods.OBJECTIVE)


def test_the_modules_use_the_table():
  from ge_jax import api, config_check, evaluate, experiment, report
  for module in (api, config_check, evaluate, experiment):
    assert module.METHODS is methods.METHODS
  assert experiment.ROWS is methods.ROWS and report.BLIND is methods.BLIND
  assert set(report.LABELS) == {'corrupted', *methods.ROWS}
  assert set(experiment.ROW_LABELS) == {'clean', 'corrupted', *methods.ROWS}
  assert evaluate.EvalSpec().shift_methods == ('ae', 'gan', 'ge', 'ge_sample', 'ge_pix')


def test_the_table_and_the_flag_modules_import_no_jax():
  # config_check and the CLIs' flag definitions read the table before JAX loads
  code = ('import sys, ge_jax.methods, ge_jax.config_check, ge_jax.evaluate; '
          'assert "jax" not in sys.modules, "jax imported"')
  proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
