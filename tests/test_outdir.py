"""Output folders: checked before the work, replaced as a whole with --overwrite, never mixed or half-written."""

import os

import pytest

from ge_jax import cli
from ge_jax.errors import UserError


def _tree(root):
  return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


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
  assert _tree(out) == ['results.json']
  assert sorted(os.listdir(tmp_path)) == ['res']  # no staging folder left


def test_overwrite_replaces_the_whole_folder_and_keeps_variants(tmp_path):
  out = tmp_path / 'res'
  _old_results(out)
  with pytest.raises(UserError, match='overwrite'):
    cli.check_outdir(str(out), False, 'results.json')
  with cli.output_folder(str(out), True, 'results.json', carry=('variants',)) as stage:
    assert os.path.exists(os.path.join(stage, 'variants', 'v1', 'results.json'))  # listed by the new report
    open(os.path.join(stage, 'results.json'), 'w').write('{"new": 1}')
  assert _tree(out) == ['results.json', 'variants/v1/results.json']  # no stale figure, no stale note
  assert (out / 'results.json').read_text() == '{"new": 1}'
  assert sorted(os.listdir(tmp_path)) == ['res']


def test_overwrite_keeps_carried_files_and_drops_the_rest(tmp_path):
  from ge_jax import evaluation as evaluate
  out = tmp_path / 'res'
  _old_results(out)
  (out / 'latent_pca.png').write_text('from latent_viz')
  with cli.output_folder(str(out), True, 'results.json', carry=evaluate.CARRIED) as stage:
    open(os.path.join(stage, 'results.json'), 'w').write('{"new": 1}')
  assert _tree(out) == ['latent_pca.png', 'results.json', 'variants/v1/results.json']
  assert (out / 'latent_pca.png').read_text() == 'from latent_viz'
  (out / 'results.json').unlink()  # a folder of carried files only is not "other files"
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
  assert _tree(out) == ['NOTE.previous.md', 'results.json', 'variants/v1/results.json']
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
