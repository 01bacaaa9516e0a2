"""Output folders: checked before the work, replaced as a whole with --overwrite, never mixed or half-written."""

import os
import shutil

import pytest

from ge_jax import cli
from ge_jax.errors import UserError


def _tree(root, manifest=False):
  """The files under `root` (its manifest, cli.MANIFEST, only with `manifest`)."""
  return sorted(p for p in (os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
                if manifest or p != cli.MANIFEST)


def _eval_kwargs(**kw):
  from ge_jax import evaluation
  return dict(known=evaluation.OUTPUTS, **kw)


def _old_results(path):
  os.makedirs(path / 'variants' / 'v1')
  (path / 'results.json').write_text('{"old": 1}')
  (path / 'grid_stale.png').write_text('old figure')
  (path / 'NOTE.md').write_text('old note')
  (path / 'variants' / 'v1' / 'results.json').write_text('{"variant": 1}')


def test_new_folder_appears_only_when_complete(tmp_path):
  out = tmp_path / 'res'
  with cli.output_folder(str(out), False, 'results.json') as stage:
    (open(os.path.join(stage, 'results.json'), 'w')).write('{}')
    assert not out.exists()  # nothing visible under the final name while writing
  assert _tree(out, manifest=True) == [cli.MANIFEST, 'results.json']  # and the record of what was written
  assert sorted(os.listdir(tmp_path)) == ['res']  # no staging folder left


def test_overwrite_replaces_the_whole_folder_and_keeps_variants(tmp_path):
  out = tmp_path / 'res'
  _old_results(out)
  with pytest.raises(UserError, match='overwrite'):
    cli.check_outdir(str(out), False, 'results.json')
  with cli.output_folder(str(out), True, 'results.json', carry=('variants',), **_eval_kwargs()) as stage:
    assert os.path.exists(os.path.join(stage, 'variants', 'v1', 'results.json'))  # listed by the new report
    open(os.path.join(stage, 'results.json'), 'w').write('{"new": 1}')
  assert _tree(out) == ['NOTE.md', 'results.json', 'variants/v1/results.json']  # no stale figure; the user's note stays
  # nor the figure of this run once it is stale: the manifest says which files the tool wrote
  (out / 'grid_new.png').write_text('figure of that run')
  cli.record_outputs(str(out), ['grid_new.png'])
  with cli.output_folder(str(out), True, 'results.json', carry=('variants',)) as stage:  # known: no names
    open(os.path.join(stage, 'results.json'), 'w').write('{"newer": 1}')
  assert _tree(out) == ['NOTE.md', 'results.json', 'variants/v1/results.json']
  assert (out / 'results.json').read_text() == '{"newer": 1}'
  assert sorted(os.listdir(tmp_path)) == ['res']


def test_overwrite_keeps_carried_files_and_drops_the_rest(tmp_path):
  from ge_jax import evaluation as evaluate
  out = tmp_path / 'res'
  _old_results(out)
  (out / 'latent_pca.png').write_text('from latent_viz')
  with cli.output_folder(str(out), True, 'results.json', carry=evaluate.CARRIED, known=evaluate.OUTPUTS,
                         keep_as=(('NOTE.md', 'NOTE.previous.md'),)) as stage:
    open(os.path.join(stage, 'results.json'), 'w').write('{"new": 1}')
  assert _tree(out) == ['NOTE.previous.md', 'latent_pca.png', 'results.json', 'variants/v1/results.json']
  assert (out / 'latent_pca.png').read_text() == 'from latent_viz'
  (out / 'results.json').unlink()  # a folder of carried files only is not "other files"
  (out / 'NOTE.previous.md').unlink()
  (out / cli.MANIFEST).unlink()
  cli.check_outdir(str(out), False, 'results.json', carry=evaluate.CARRIED)
  with pytest.raises(UserError):  # a failed run leaves the carried file where it was
    with cli.output_folder(str(out), True, 'results.json', carry=evaluate.CARRIED):
      raise UserError('the work failed')
  assert (out / 'latent_pca.png').read_text() == 'from latent_viz'


def test_overwrite_keeps_a_hand_written_note_under_another_name(tmp_path, capsys):
  out = tmp_path / 'res'
  _old_results(out)
  with cli.output_folder(str(out), True, 'results.json', carry=('variants',),
                         keep_as=(('NOTE.md', 'NOTE.previous.md'),)) as stage:
    assert not os.path.exists(os.path.join(stage, 'NOTE.md'))  # the new report does not show the old note
    open(os.path.join(stage, 'results.json'), 'w').write('{"new": 1}')
  assert _tree(out) == ['NOTE.previous.md', 'grid_stale.png', 'results.json', 'variants/v1/results.json']
  assert (out / 'NOTE.previous.md').read_text() == 'old note'
  assert 'NOTE.previous.md' in capsys.readouterr().out


def test_a_failed_run_leaves_the_old_results_untouched(tmp_path):
  out = tmp_path / 'res'
  _old_results(out)
  before = {p: (out / p).read_text() for p in _tree(out)}
  with pytest.raises(UserError):
    with cli.output_folder(str(out), True, 'results.json', carry=('variants',)):
      raise UserError('the work failed')
  assert {p: (out / p).read_text() for p in _tree(out)} == before
  assert sorted(os.listdir(tmp_path)) == ['res']  # the empty staging folder is gone


def test_partial_results_of_a_failed_run_are_kept_beside(tmp_path):
  out = tmp_path / 'res'
  with pytest.raises(KeyboardInterrupt):
    with cli.output_folder(str(out), False, 'results.json') as stage:
      open(os.path.join(stage, 'results.partial.json'), 'w').write('{}')
      raise KeyboardInterrupt
  assert not out.exists()
  partial = [p for p in os.listdir(tmp_path) if p.startswith('res.partial-')]
  assert len(partial) == 1 and os.listdir(tmp_path / partial[0] / 'res') == ['results.partial.json']


@pytest.mark.parametrize('setup, outdir, words', [
    (lambda t: (t / 'f').write_text('x'), 'f', 'is a file'),
    (lambda t: (t / 'f').write_text('x'), 'f/sub/deeper', 'which is a file'),
    (lambda t: ((t / 'mine').mkdir(), (t / 'mine' / 'thesis.tex').write_text('x')), 'mine', 'other files'),
    (lambda t: None, '', 'empty'),
])
def test_bad_outdirs(tmp_path, setup, outdir, words):
  setup(tmp_path)
  before = _tree(tmp_path)
  with pytest.raises(UserError, match=words):
    cli.check_outdir(str(tmp_path / outdir) if outdir else '', True, 'results.json')
  assert _tree(tmp_path) == before


def test_an_existing_empty_folder_is_fine(tmp_path):
  (tmp_path / 'res').mkdir()
  with cli.output_folder(str(tmp_path / 'res'), False, 'metrics.json') as stage:
    open(os.path.join(stage, 'metrics.json'), 'w').write('{}')
  assert _tree(tmp_path / 'res') == ['metrics.json']


def _solve_results(path, manifest: bool):
  """An old solve.py folder (written with or without a manifest) and a user's files in it."""
  with cli.output_folder(str(path), False, 'metrics.json') as stage:
    for name in ('metrics.json', 'reconstructions.npz', 'grid.png', 'ge/0.png', 'ae/0.png'):
      os.makedirs(os.path.dirname(os.path.join(stage, name)), exist_ok=True)
      open(os.path.join(stage, name), 'w').write('old run')
  if not manifest:
    (path / cli.MANIFEST).unlink()  # results written before manifests existed: the known names
  (path / 'thesis.tex').write_text('precious')
  (path / 'ge' / 'my_notes.txt').write_text('also precious')  # inside a folder the tool wrote
  (path / 'mine').mkdir()
  (path / 'mine' / 'data.csv').write_text('1,2')
  (path / 'empty_folder').mkdir()


@pytest.mark.parametrize('manifest', [True, False])
def test_overwrite_keeps_the_users_files(tmp_path, capsys, monkeypatch, manifest):
  """--overwrite replaces what the tool wrote and nothing else: a user's files stay, untouched (and
  where the final rename fails, the old folder is left as it was, the user's files in it)."""
  out = tmp_path / 'res'
  _solve_results(out, manifest)
  before = {p: (out / p).read_text() for p in _tree(out)}
  real_rename = os.rename

  def failing(src, dst):
    if os.path.basename(str(dst)) == 'res.old':
      raise OSError(28, 'No space left on device')
    return real_rename(src, dst)

  with monkeypatch.context() as m:
    m.setattr(os, 'rename', failing)
    with pytest.raises(OSError):
      with cli.output_folder(str(out), True, 'metrics.json') as stage:
        open(os.path.join(stage, 'metrics.json'), 'w').write('new run')
  assert {p: (out / p).read_text() for p in _tree(out)} == before and (out / 'empty_folder').is_dir()
  for partial in [p for p in os.listdir(tmp_path) if p != 'res']:
    shutil.rmtree(tmp_path / partial)
  with cli.output_folder(str(out), True, 'metrics.json') as stage:
    open(os.path.join(stage, 'metrics.json'), 'w').write('new run')
    os.makedirs(os.path.join(stage, 'ge'))
    open(os.path.join(stage, 'ge', '0.png'), 'w').write('new run')
  assert (out / 'thesis.tex').read_text() == 'precious' and (out / 'mine' / 'data.csv').read_text() == '1,2'
  assert (out / 'empty_folder').is_dir()
  if manifest:  # the manifest lists files, so a user's file inside the tool's folder is known as theirs
    assert (out / 'ge' / 'my_notes.txt').read_text() == 'also precious'
  old = {'reconstructions.npz', 'grid.png', 'ae/0.png'}
  assert not old & set(_tree(out)) and (out / 'metrics.json').read_text() == 'new run'
  assert (out / 'ge' / '0.png').read_text() == 'new run'
  assert 'thesis.tex' in capsys.readouterr().out  # said, in a note
  assert sorted(os.listdir(tmp_path)) == ['res']


def test_a_users_file_of_a_new_results_name_is_kept_under_another(tmp_path, capsys):
  out = tmp_path / 'res'
  with cli.output_folder(str(out), False, 'results.json', known=('results.json', 'grid_*.png')) as stage:
    open(os.path.join(stage, 'results.json'), 'w').write('old')
  (out / 'grid_deblur.png').write_text('the user drew it')  # not in the manifest: the user's
  with cli.output_folder(str(out), True, 'results.json', known=('results.json', 'grid_*.png')) as stage:
    open(os.path.join(stage, 'results.json'), 'w').write('new')
    open(os.path.join(stage, 'grid_deblur.png'), 'w').write('new figure')
  assert (out / 'grid_deblur.png').read_text() == 'new figure'
  assert (out / 'grid_deblur.previous.png').read_text() == 'the user drew it'
  assert 'grid_deblur.previous.png' in capsys.readouterr().out


@pytest.mark.parametrize('setup', [
    'both',         # NOTE.md and an older NOTE.previous.md: neither is lost
    'readonly',     # read-only notes
    'folder',       # a folder named NOTE.md
    'dangling',     # a symbolic link to nothing
    'links',        # a link to a note elsewhere, and an older note that is a link to nothing
])
def test_overwrite_with_hand_written_notes(tmp_path, capsys, setup):
  """A valid --overwrite with any kind of NOTE.md beside the results: done, and every note kept."""
  out = tmp_path / 'res'
  _old_results(out)
  elsewhere = tmp_path / 'elsewhere.md'
  elsewhere.write_text('linked note')
  if setup == 'both':
    (out / 'NOTE.previous.md').write_text('older note')
  elif setup == 'readonly':
    (out / 'NOTE.previous.md').write_text('older note')
    os.chmod(out / 'NOTE.md', 0o444)
    os.chmod(out / 'NOTE.previous.md', 0o444)
  elif setup == 'folder':
    (out / 'NOTE.md').unlink()
    (out / 'NOTE.md').mkdir()
    (out / 'NOTE.md' / 'part1.md').write_text('old note')
  elif setup == 'dangling':
    (out / 'NOTE.md').unlink()
    os.symlink(tmp_path / 'nothing', out / 'NOTE.md')
  elif setup == 'links':
    (out / 'NOTE.md').unlink()
    os.symlink(elsewhere, out / 'NOTE.md')
    os.symlink(tmp_path / 'nothing', out / 'NOTE.previous.md')
  with cli.output_folder(str(out), True, 'results.json', carry=('variants',),
                         keep_as=(('NOTE.md', 'NOTE.previous.md'),), **_eval_kwargs()) as stage:
    open(os.path.join(stage, 'results.json'), 'w').write('{"new": 1}')
  after = set(_tree(out))
  assert not (out / 'NOTE.md').exists() and 'grid_stale.png' not in after
  if setup in ('both', 'readonly'):
    assert (out / 'NOTE.previous.md').read_text() == 'older note'
    assert (out / 'NOTE.previous-2.md').read_text() == 'old note'
  elif setup == 'folder':
    assert (out / 'NOTE.previous.md' / 'part1.md').read_text() == 'old note'
  elif setup == 'dangling':
    assert os.readlink(out / 'NOTE.previous.md') == str(tmp_path / 'nothing')
  elif setup == 'links':
    assert os.readlink(out / 'NOTE.previous.md') == str(tmp_path / 'nothing')
    assert os.readlink(out / 'NOTE.previous-2.md') == str(elsewhere) and elsewhere.read_text() == 'linked note'
  assert 'it is kept as' in capsys.readouterr().out
  assert sorted(os.listdir(tmp_path)) == ['elsewhere.md', 'res']


def test_overwrite_through_the_clis_keeps_a_users_files(tiny_workdir, tmp_path):
  """Fault test: solve.py and ge_jax.evaluate --overwrite'd into a results folder, once of an older
  version (no manifest: the known names) and once of this one, keep every file the user put there."""
  from conftest import run_cli
  t = '--config=configs/mnist_tiny.py'
  clis = {
      'solve': (['solve.py', '--batch', t, '--n=2', '--methods=ae'], ('metrics.json', 'grid.png', 'ae/x.png'),
                'NOTE.md'),
      'evaluate': (['-m', 'ge_jax.evaluate', t, '--n=2', '--tasks=denoise-0.3', '--methods=ae', '--nofigures'],
                   ('results.json', 'results.md', 'grid_denoise-0.3.png', 'pd_old.png'), 'NOTE.previous.md'),
  }
  for name, (args, old_outputs, note_kept_as) in clis.items():
    out = tmp_path / name
    for rel in old_outputs:  # results written before folders recorded what the tool wrote
      os.makedirs(os.path.dirname(out / rel), exist_ok=True)
      (out / rel).write_text('{}' if rel.endswith('.json') else 'old run')
    for attempt in ('no manifest', 'manifest'):
      (out / 'thesis.tex').write_text('precious')
      os.makedirs(out / 'mine', exist_ok=True)
      (out / 'mine' / 'data.csv').write_text('1,2')
      (out / 'NOTE.md').write_text('my note')
      for stale in ('NOTE.previous.md', 'NOTE.previous-2.md'):
        if (out / stale).exists():
          (out / stale).unlink()
      proc = run_cli(*args, f'--workdir={tiny_workdir}', f'--outdir={out}', '--overwrite', '--noprogress')
      assert proc.returncode == 0, (name, attempt, proc.stderr[-2000:])
      assert (out / 'thesis.tex').read_text() == 'precious', (name, attempt)
      assert (out / 'mine' / 'data.csv').read_text() == '1,2', (name, attempt)
      assert (out / note_kept_as).read_text() == 'my note', (name, attempt)
      assert 'thesis.tex' in proc.stdout, (name, attempt)
      assert not {'grid_denoise-0.3.png', 'pd_old.png', 'ae/x.png'} & set(_tree(out)), (name, attempt)
      assert os.path.exists(out / cli.MANIFEST)
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith(name)) == [name]  # nothing left beside


def test_results_md_with_a_note_that_is_not_text_or_a_folder(tmp_path):
  """A hand-written NOTE.md that is no UTF-8 (or is a folder) does not stop results.md (--update, rerender)."""
  from ge_jax import report
  result = dict(config='c', split='test', n_images=1, command='x', workdir='w', data='d', wall_seconds=1.0,
                solve_seconds=1.0, compile_seconds=0.0, devices='cpu', settings=dict(steps=1),
                tasks=[dict(task='denoise-0.3', methods=dict(ge=dict(psnr_mean=1.0, psnr_se=0.1, ssim_mean=0.5,
                                                                    ssim_se=0.1)))])
  (tmp_path / 'NOTE.md').write_bytes(b'caf\xe9 note')
  report.write_markdown(str(tmp_path / 'results.md'), result, str(tmp_path))
  assert 'caf\ufffd note' in (tmp_path / 'results.md').read_text()
  (tmp_path / 'NOTE.md').unlink()
  (tmp_path / 'NOTE.md').mkdir()
  report.write_markdown(str(tmp_path / 'results.md'), result, str(tmp_path))
  assert '| denoise-0.3 |' in (tmp_path / 'results.md').read_text()
