"""ge_jax.evaluate on the tiny trained workdir: files, table, JSON, per-method overrides."""

import json
import os

import numpy as np
import pytest

from conftest import run_cli
from ge_jax import methods


def test_evaluate_writes_table_json_and_figures(tiny_workdir, tiny_config, tmp_path):
  from ge_jax import evaluation as evaluate
  out = tmp_path / 'res'
  c = tiny_config
  c.eval.update(dict(record_every=5, sweep_task='denoise-0.3', sweep_lams=(0.0, 0.1), sweep_n=4,
                     shift_tasks=('denoise-0.3',), shift_n=4, shift_methods=('ae', 'ge_sample')))
  r = evaluate.evaluate(c, tiny_workdir, str(out), split='test', n=6, tasks=['denoise-0.3', 'compress'],
                        command='test')
  for f in ('results.md', 'results.json', 'convergence.png', 'lambda_sweep.png', 'grid_denoise-0.3.png',
            'grid_compress.png'):
    assert os.path.getsize(out / f) > 0, f
  j = json.load(open(out / 'results.json'))
  assert j['n_images'] == 6 and j['split'] == 'test' and [t['task'] for t in j['tasks']] == ['denoise-0.3', 'compress']
  assert {'steps', 'restarts', 'lam_ge', 'lr_gan', 'prior', 'seed'} <= set(j['settings'])
  assert j['wall_seconds'] > 0 and r['lambda_sweep']['lams'] == [0.0, 0.1]
  den = j['tasks'][0]['methods']
  for m in ('corrupted', 'ae', 'gan', 'ge', 'csgm'):
    assert np.isfinite(den[m]['psnr_mean']) and {'psnr_se', 'ssim_mean', 'ssim_se'} <= set(den[m])
  assert 'gan' not in j['tasks'][1]['methods']  # compress: no image for GAN-only
  assert 'ge_pix' in den and 'ge_pix' not in j['tasks'][1]['methods']  # nor pixels for GE+pixels
  curves = j['tasks'][0]['curves']
  assert set(curves) == {'ge', 'gan', 'ge_sample', 'ge_pix'} and len(curves['ge']['objective']) == tiny_config.solve.steps
  assert len(curves['ge']['psnr']) == tiny_config.solve.steps // 5
  md = open(out / 'results.md').read()
  assert '**' in md and '| denoise-0.3 |' in md and 'GE − AE' in md and 'GE − GAN' in md and '## Settings' in md
  assert 'Rock metrics' not in md and 'porosity_error_mean' not in den['ge']  # MNIST: no rock errors
  # realism next to distortion: FD / KID / accuracy per method, a front line and a figure per task
  p = den['ge_sample']['perception']
  assert {'classifier', 'random'} <= set(p) and {'fd', 'fd_se', 'kid', 'accuracy'} <= set(p['classifier'])
  assert 'Perception-distortion fronts' in md and '- denoise-0.3: blind front' in md
  assert 'with the GE+pixels extension, GE (any form) on' in md
  assert os.path.getsize(out / 'pd_denoise-0.3.png') > 0 and 'pd_denoise-0.3.png' in md
  assert 'classical' in den and 'ge_op' in den and 'classical' not in j['tasks'][1]['methods']
  assert 'g_random' in den and 'g_random' in j['tasks'][1]['methods']  # G's realism at the same N, every task
  assert "## GE against G's own realism" in md
  assert 'ge_pix_one' in den and 'GE+pixels, one chain' in md  # the tiny config's GE+pixels is a mean of chains
  assert 'G random (no input)' in md.split('## Realism')[1].split('\n')[2]  # a column of the realism table
  shifted = j['shift_suite']
  assert [r['shift'] for r in shifted] == list(__import__('ge_jax.shift').shift.SHIFTS)
  assert set(shifted[0]['methods']) == {'corrupted', 'ae', 'ge_sample'} and 'shift suite' in md


def test_per_method_settings(tiny_config):
  from ge_jax import evaluation as evaluate
  from ge_jax.errors import UserError
  c = tiny_config
  c.solve.lam_gan = 0.5
  assert methods.setting(c.solve, 'lam', 'gan') == 0.5
  assert methods.setting(c.solve, 'lam', 'ge') == c.solve.lam_ge
  s = evaluate.settings(c)
  assert s['lam_gan'] == 0.5 and s['lam_ge'] == c.solve.lam_ge and s['lr_ge'] == c.solve.lr
  c.solve.lam_ge = None  # no global lam to fall back to: a clear error, not a silent default
  with pytest.raises(UserError, match='lam_ge'):
    methods.setting(c.solve, 'lam', 'ge')


def test_task_config_sets_ops(tiny_config):
  from ge_jax import tasks
  c, op = tasks.task_config(tiny_config, 'superres-x4')
  assert op == 'superres' and c.ops.superres_factor == 4 and tiny_config.ops.superres_factor == 2
  spec = tasks.get('inpaint-pixels')
  assert spec.ops(tiny_config.ops)['inpaint_mode'] == 'pixels' and tiny_config.ops.inpaint_mode == 'center'


def test_outdir_comes_from_the_eval_config():
  from configs import mnist, mnist_aug_eval
  from ge_jax import evaluation as evaluate
  assert evaluate.default_outdir(mnist_aug_eval.get_config()) == 'results/mnist'
  assert evaluate.default_outdir(mnist.get_config()) == os.path.join('results', 'mnist')
  c = mnist_aug_eval.get_config()  # the budget results/mnist reports
  assert (c.name, c.solve.steps, c.solve.restarts, c.solve.n_init, c.eval.sweep_n) == ('mnist_aug', 60, 1, 16, 48)
  assert list(c.eval.sweep_lams) == [0, 0.01, 0.1, 1, 10]


def test_cli_bad_task_is_one_line(tiny_workdir, tmp_path):
  proc = run_cli('-m', 'ge_jax.evaluate', '--config=configs/mnist_tiny.py', f'--workdir={tiny_workdir}',
                 f'--outdir={tmp_path}', '--tasks=nope')
  assert proc.returncode == 2 and 'unknown evaluation task' in proc.stderr
  assert 'Traceback' not in proc.stderr


def test_eval_spec_checks_the_config(tiny_config):
  from ge_jax import evaluation as evaluate
  from ge_jax.errors import UserError
  spec = evaluate.EvalSpec.from_config(tiny_config)
  assert spec.sweep_lams == (0.0, 1e-3, 1e-2, 0.1, 1.0) and spec.sweep_task == 'denoise-0.3'
  for key, value, match in (('sweep_lams', ('a',), 'numbers'), ('sweep_task', 'nope', 'unknown evaluation task'),
                            ('sweep_n', -1, 'integer'), ('sweep_lams', (), 'at least one'),
                            ('sweep_lams', (0.1, -1.0), 'sweep_lams has -1'),
                            ('sweep_lams', (float('nan'),), 'sweep_lams has nan'),
                            ('shift_methods', ('ae', 'ge_smaple'), "shift_methods names an unknown method 'ge_smaple'"),
                            ('shift_tasks', ('denoise-0.3', 'nope'), "shift_tasks names an unknown evaluation task"),
                            ('shift_n', 8, 'shift_n=8 has no effect: config.eval.shift_tasks is empty'),
                            ('outdir', ' ', 'config.eval.outdir'),
                            ('domain_metrics', 'rocks', 'config.eval.domain_metrics')):
    c = tiny_config.copy_and_resolve_references()
    with c.unlocked():
      c.eval[key] = value
    with pytest.raises(UserError, match=match):
      evaluate.EvalSpec.from_config(c)
  c = tiny_config.copy_and_resolve_references()
  with c.unlocked():
    c.eval.shift_metods = ('ae',)  # a misspelt key: caught here too, not only by the CLIs' config check
  with pytest.raises(UserError, match='config.eval.shift_metods .*did you mean config.eval.shift_methods'):
    evaluate.EvalSpec.from_config(c)
  c = tiny_config.copy_and_resolve_references()
  c.eval.shift_tasks, c.eval.shift_n = ('denoise-0.3',), 0  # shift_n=0: the suite is off (the recorded idiom)
  assert evaluate.EvalSpec.from_config(c).shift_n == 0


def test_settings_that_need_the_run_are_checked_before_any_work(tiny_config, tmp_path, monkeypatch):
  """What config.eval asks of a run (methods for the shift suite, validation images for the sweep) is
  refused before anything is solved or written."""
  from ge_jax import api
  from ge_jax import evaluation as evaluate
  from ge_jax.errors import UserError
  monkeypatch.setattr(api, 'load', lambda *a, **k: pytest.fail('work started'))
  c = tiny_config.copy_and_resolve_references()
  c.eval.shift_tasks, c.eval.shift_n, c.eval.shift_methods = ('denoise-0.3',), 4, ('gan', 'ge_sample')
  with pytest.raises(UserError, match='config.eval.shift_methods .* names none of the methods this run runs'):
    evaluate.evaluate(c, 'unused', str(tmp_path / 'res'), n=4, tasks=['denoise-0.3'], methods=('ae', 'ge'))
  c = tiny_config.copy_and_resolve_references()
  c.data.val_size = 1
  with pytest.raises(UserError, match="config.eval.sweep_task='denoise-0.3' .* has 1 image"):
    evaluate.evaluate(c, 'unused', str(tmp_path / 'res'), n=4, tasks=['denoise-0.3'], methods=('ae',))
  assert not (tmp_path / 'res').exists()


def _result(methods_by_task):
  return dict(config='rock_test', split='test', n_images=4, command='test', workdir='w', data='rock',
              wall_seconds=1.0, solve_seconds=1.0, compile_seconds=0.0, devices='cpu', settings=dict(steps=1),
              tasks=[dict(task=name, methods=ms) for name, ms in methods_by_task.items()])


def _entry(psnr, poro=None, s2=None, surf=None):
  e = dict(psnr_mean=psnr, psnr_se=0.1, ssim_mean=0.5, ssim_se=0.01)
  if poro is not None:
    e.update(porosity_error_mean=poro, porosity_error_se=0.0, s2_error_mean=s2, s2_error_se=0.0,
             specific_surface_error_mean=surf, specific_surface_error_se=0.0)
  return e


def test_results_md_has_a_rock_table_only_with_rock_entries(tmp_path):
  from ge_jax import report
  rock = dict(corrupted=_entry(15.0, 0.05, 0.02, 0.09), ae=_entry(20.0, 0.03, 0.011, 0.04),
              ge=_entry(21.0, 0.01, 0.012, 0.05), csgm=_entry(24.0, 0.001, 0.001, 0.001))
  report.write_markdown(str(tmp_path / 'rock.md'), _result({'denoise-0.3': rock}), str(tmp_path))
  md = open(tmp_path / 'rock.md').read()
  assert '## Rock metrics' in md
  row = next(line for line in md.splitlines() if line.startswith('| denoise-0.3 |') and ' / ' in line)
  cells = [c.strip() for c in row.strip('|').split('|')]
  assert cells == ['denoise-0.3', '0.0500 / 0.0200 / 0.0900', '0.0300 / **0.0110** / **0.0400**',
                   '**0.0100** / 0.0120 / 0.0500', '0.0010 / 0.0010 / 0.0010']  # CSGM knows A: never bold
  plain = {m: _entry(e['psnr_mean']) for m, e in rock.items()}
  report.write_markdown(str(tmp_path / 'plain.md'), _result({'denoise-0.3': plain}), str(tmp_path))
  assert 'Rock metrics' not in open(tmp_path / 'plain.md').read()


def test_report_rerenders_results_md_with_new_variants(tmp_path):
  import json
  from conftest import error_line, run_cli
  out = tmp_path / 'r'
  os.makedirs(out / 'variants' / 'val_new')
  (out / 'results.json').write_text(json.dumps(_result({'denoise-0.3': dict(ae=_entry(20.0), ge=_entry(18.0))})))
  var = dict(_result({'denoise-0.3': dict(ge=_entry(17.5))}), split='val', note='a new variant')
  (out / 'variants' / 'val_new' / 'results.json').write_text(json.dumps(var))
  proc = run_cli('-m', 'ge_jax.rerender', str(out))
  assert proc.returncode == 0, proc.stderr[-2000:]
  md = open(out / 'results.md').read()
  assert '| val_new | val, 4 | a new variant |' in md and '| denoise-0.3 |' in md
  assert 'no results.json' in error_line(run_cli('-m', 'ge_jax.rerender', str(tmp_path / 'nothing')))


def test_update_reruns_some_tasks_and_keeps_the_rest(tiny_workdir, tiny_config, tmp_path):
  from ge_jax import evaluation as evaluate
  from ge_jax.errors import UserError
  out = str(tmp_path / 'res')
  c = tiny_config.copy_and_resolve_references()
  c.eval.record_every, c.eval.sweep_task, c.eval.shift_n = 0, '', 0  # the rows only
  methods = ('ae', 'ge')
  first = evaluate.evaluate(c, tiny_workdir, out, n=4, tasks=['denoise-0.3', 'compress'], methods=methods,
                            command='first')
  longer = c.copy_and_resolve_references()
  longer.solve.compress.steps = 3 * c.solve.compress.steps  # a setting only compress's GE uses
  r = evaluate.update(longer, tiny_workdir, out, tasks=['compress'], n=None, methods=methods, command='again')
  j = json.load(open(os.path.join(out, 'results.json')))
  assert j == json.loads(json.dumps(r)) and [t['task'] for t in j['tasks']] == ['denoise-0.3', 'compress']
  assert j['tasks'][0] == json.loads(json.dumps(first['tasks'][0]))  # the other task is kept as it was
  old_ge, new_ge = first['tasks'][1]['methods']['ge'], j['tasks'][1]['methods']['ge']
  assert new_ge['psnr_mean'] != old_ge['psnr_mean']
  # the AE does not depend on the solver's budget: the re-run reproduces it
  assert j['tasks'][1]['methods']['ae']['psnr_mean'] == first['tasks'][1]['methods']['ae']['psnr_mean']
  assert j['settings']['compress_ge_steps'] == 3 * c.solve.compress.steps and j['command'] == 'first'
  assert j['updates'][0]['tasks'] == ['compress'] and j['updates'][0]['command'] == 'again'
  assert 'Updated ' in open(os.path.join(out, 'results.md')).read() and os.path.exists(os.path.join(out, 'grid_compress.png'))
  assert not os.path.exists(os.path.join(out, '.update'))
  # refused before any solve: a setting every task uses changed, another N, a method not re-run, no results
  moved = longer.copy_and_resolve_references()
  moved.solve.lam_ge = 0.5
  with pytest.raises(UserError, match='settings changed since the results were made \\(lam_ge\\)'):
    evaluate.update(moved, tiny_workdir, out, tasks=['compress'], n=None, methods=methods, command='x')
  with pytest.raises(UserError, match='n_images=4, this run has 3'):
    evaluate.update(longer, tiny_workdir, out, tasks=['compress'], n=3, methods=methods, command='x')
  with pytest.raises(UserError, match='compress row has methods this run did not re-run \\(ge\\)'):
    evaluate.update(longer, tiny_workdir, out, tasks=['compress'], n=None, methods=('ae',), command='x')
  with pytest.raises(UserError, match='no results.json'):
    evaluate.update(longer, tiny_workdir, str(tmp_path / 'none'), tasks=['compress'], n=None, command='x')
  assert json.load(open(os.path.join(out, 'results.json'))) == j


def _files(root):
  out = {}
  for d, _, fs in os.walk(root):
    for f in fs:
      with open(os.path.join(d, f), 'rb') as fh:
        out[os.path.relpath(os.path.join(d, f), root)] = hash(fh.read())
  return out


def test_update_without_figures_leaves_no_figure_of_the_old_run(tiny_workdir, tiny_config, tmp_path):
  """--update --nofigures: results.md never links a figure made by another run than its rows'."""
  from ge_jax import evaluation as evaluate
  out = str(tmp_path / 'res')
  c = tiny_config.copy_and_resolve_references()
  c.eval.record_every, c.eval.sweep_task, c.eval.shift_n = 5, '', 0
  evaluate.evaluate(c, tiny_workdir, out, n=4, tasks=['denoise-0.3', 'compress'], methods=('ae', 'ge'),
                    command='first')
  for f in ('grid_denoise-0.3.png', 'grid_compress.png', 'pd_compress.png', 'convergence.png'):
    assert os.path.exists(os.path.join(out, f)), f
  before = _files(out)
  longer = c.copy_and_resolve_references()
  longer.solve.compress.steps = 2 * c.solve.compress.steps
  evaluate.update(longer, tiny_workdir, out, tasks=['compress'], n=None, methods=('ae', 'ge'), figures=False,
                  command='again')
  md = open(os.path.join(out, 'results.md')).read()
  assert not os.path.exists(os.path.join(out, 'grid_compress.png')) and 'grid_compress.png' not in md
  after = _files(out)
  assert after['grid_denoise-0.3.png'] == before['grid_denoise-0.3.png']  # the rows kept keep their figures
  j = json.load(open(os.path.join(out, 'results.json')))
  assert j['tasks'][1]['curves'] == {} and j['tasks'][0]['curves']
  # drawn again from the rows: the compress curves of the old run are gone from the convergence figure
  assert after['convergence.png'] != before['convergence.png'] and 'convergence.png' in md
  assert after['pd_compress.png'] != before['pd_compress.png']  # the new compress row's numbers


def test_a_read_only_workdir_evaluates(tiny_workdir, tiny_config, tmp_path, monkeypatch, capsys):
  """A trained model shared read-only: nothing is written into it (scratch goes beside the results),
  and a classifier it does not hold is left out with a note instead of trained into it."""
  import shutil
  import stat
  from ge_jax import evaluation as evaluate
  work = str(tmp_path / 'shared')
  shutil.copytree(tiny_workdir, work, ignore=shutil.ignore_patterns('classifier'))
  for d, dirs, fs in os.walk(work):
    for name in dirs + fs:
      p = os.path.join(d, name)
      os.chmod(p, os.stat(p).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
  os.chmod(work, 0o555)
  if os.geteuid() == 0:  # root writes through file modes: say the folder cannot be written, as for a user
    real = evaluate._can_write
    monkeypatch.setattr(evaluate, '_can_write', lambda p: False if os.path.samefile(p, work) else real(p))
  before = _files(work)
  try:
    c = tiny_config.copy_and_resolve_references()
    c.eval.record_every, c.eval.sweep_task, c.eval.shift_n = 0, '', 0
    out = str(tmp_path / 'res')
    r = evaluate.evaluate(c, work, out, n=4, tasks=['denoise-0.3'], methods=('ae',), command='ro')
    assert _files(work) == before and not os.path.exists(os.path.join(work, 'eval'))
    assert not os.path.exists(os.path.join(work, 'classifier'))
    assert os.path.exists(os.path.join(out, 'grid_denoise-0.3.png'))
    assert not [f for f in os.listdir(out) if f.startswith('.scratch')]  # no scratch left beside the results
    assert set(r['tasks'][0]['methods']['ae']['perception']) == {'random'}
    assert 'python -m ge_jax.classify --workdir=' in capsys.readouterr().out
  finally:
    for d, dirs, fs in os.walk(work):
      os.chmod(d, 0o755)
