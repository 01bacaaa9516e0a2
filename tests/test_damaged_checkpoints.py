"""A damaged newest checkpoint: one sentence naming the step and the file, then the newest intact step.

Nothing is ever deleted; training moves the damaged step aside (to `checkpoints_damaged/`) so that it
can be written again, and solving only reads.
"""

import glob
import json
import os
import shutil

import jax
import numpy as np
import pytest

from conftest import run_cli
from ge_jax import checkpoint, pretrain
from ge_jax.errors import UserError
from ge_jax.models import Nets

TINY = '--config=configs/mnist_tiny.py'


def _files(root):
  return sorted(os.path.relpath(p, root) for p in glob.glob(f'{root}/**', recursive=True) if os.path.isfile(p))


def _gan_target(config):
  nets = Nets(config)
  return jax.eval_shape(lambda: pretrain.init_gan_state(nets, config, jax.random.key(0)))


def _restore(ckdir, config):
  with checkpoint.Checkpoints(ckdir, shape_keys=checkpoint.PHASE_SHAPE_KEYS['gan']) as ck:
    return ck.restore(_gan_target(config), config)


def _damage(path, mode):
  size = os.path.getsize(path)
  with open(path, 'r+b') as f:
    f.truncate(0 if mode == 'empty' else size // 2)


@pytest.fixture
def gan_ckpts(tiny_workdir, tmp_path):
  d = str(tmp_path / 'checkpoints')
  shutil.copytree(os.path.join(tiny_workdir, 'gan', 'checkpoints'), d)
  return d


def _largest_array_file(step_dir):
  files = glob.glob(f'{step_dir}/state/ocdbt.process_0/d/*')
  return max(files, key=os.path.getsize)


@pytest.mark.parametrize('what', ['truncated array file', 'empty metadata file', 'empty config file'])
def test_damaged_newest_step_falls_back_to_the_intact_one(gan_ckpts, tiny_config, capsys, what):
  path = {'truncated array file': _largest_array_file(f'{gan_ckpts}/40'),
          'empty metadata file': f'{gan_ckpts}/40/state/_METADATA',
          'empty config file': f'{gan_ckpts}/40/config/metadata'}[what]
  _damage(path, 'half' if what.startswith('truncated') else 'empty')
  before = _files(gan_ckpts)
  state, step = _restore(gan_ckpts, tiny_config)
  assert step == 20 and int(state['step']) == 20
  warnings = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
  assert len(warnings) == 1 and 'step 40' in warnings[0] and path in warnings[0] and 'using step 20' in warnings[0]
  assert _files(gan_ckpts) == before  # nothing deleted, nothing moved when only reading


def _flip_a_bit(path):
  with open(path, 'r+b') as f:
    f.seek(os.path.getsize(path) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0x10]))


def test_a_flipped_bit_is_caught_before_orbax_reads_it(gan_ckpts, tiny_config, capsys):
  """Orbax reads an array file with one changed byte without an error (other weights, silently);
  the CRC-32 recorded at save names it, and the older intact step is used."""
  path = _largest_array_file(f'{gan_ckpts}/40')
  _flip_a_bit(path)
  state, step = _restore(gan_ckpts, tiny_config)
  assert step == 20 and int(state['step']) == 20
  warnings = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
  assert len(warnings) == 1 and path in warnings[0] and 'contents changed since it was saved' in warnings[0]


def test_size_only_records_of_older_runs_still_work(gan_ckpts, tiny_config, capsys):
  for step in (20, 40):
    record = os.path.join(gan_ckpts, str(step), checkpoint.SIZES_FILE)
    with open(record) as f:
      sizes = {rel: r['bytes'] for rel, r in json.load(f).items()}
    with open(record, 'w') as f:
      json.dump(sizes, f)
  assert _restore(gan_ckpts, tiny_config)[1] == 40 and not capsys.readouterr().err.strip()
  path = _largest_array_file(f'{gan_ckpts}/40')
  _damage(path, 'half')
  assert _restore(gan_ckpts, tiny_config)[1] == 20
  assert f'{path}: {os.path.getsize(path)} bytes' in capsys.readouterr().err


def test_every_file_of_a_step_damaged_in_turn(tiny_workdir, tiny_config, tmp_path, capsys):
  """Whatever file is emptied or cut in half: the same state, or step 20 with the file named; never wrong."""
  src = os.path.join(tiny_workdir, 'gan', 'checkpoints')
  reference, _ = _restore(src, tiny_config)
  capsys.readouterr()
  for rel in _files(f'{src}/40'):
    for mode in ('empty', 'half'):
      d = str(tmp_path / f'c_{mode}_{rel.replace("/", "_")}')
      shutil.copytree(src, d)
      _damage(f'{d}/40/{rel}', mode)
      state, step = _restore(d, tiny_config)
      err = capsys.readouterr().err
      if step == 40:
        same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), state, reference)
        assert all(jax.tree.leaves(same)), (rel, mode)
        assert 'warning' not in err
      else:
        assert step == 20 and f'{d}/40/{rel}' in err and 'step 40' in err, (rel, mode, err)
      shutil.rmtree(d)


def test_no_intact_step_is_one_sentence_and_deletes_nothing(gan_ckpts, tiny_config):
  for step in (20, 40):
    _damage(f'{gan_ckpts}/{step}/state/_METADATA', 'empty')
  before = _files(gan_ckpts)
  with pytest.raises(UserError) as e:
    _restore(gan_ckpts, tiny_config)
  msg = str(e.value)
  assert 'no intact checkpoint' in msg and 'step 40' in msg and 'step 20' in msg and '_METADATA' in msg
  assert '\n' not in msg
  assert _files(gan_ckpts) == before


def test_solve_uses_the_intact_step(tiny_workdir, tiny_config, tmp_path, capsys):
  # The AE's newest step damaged: its step 20 (trained on the same G) is used. (A damaged newest G
  # would pair an older G with the AE of the newer one: refused, tests/test_train_guards.py.)
  w = str(tmp_path / 'w')
  shutil.copytree(tiny_workdir, w)
  _damage(f'{w}/ae/checkpoints/40/state/_METADATA', 'empty')
  before = _files(w)
  params = pretrain.load_trained(tiny_config, w)
  assert set(params) == {'generator', 'discriminator', 'autoencoder'}
  captured = capsys.readouterr()
  assert 'step 40' in captured.err and 'using step 20' in captured.err
  assert 'step 20 of 40' in captured.out  # the usual note: G is not the finished one
  assert _files(w) == before


def test_training_resumes_from_the_intact_step_and_keeps_the_damaged_one(tiny_workdir, tmp_path):
  w = str(tmp_path / 'w')
  shutil.copytree(tiny_workdir, w)
  bad = _largest_array_file(f'{w}/gan/checkpoints/40')
  _damage(bad, 'half')
  proc = run_cli('train.py', TINY, f'--workdir={w}', '--noprogress')
  assert proc.returncode == 0, proc.stderr[-3000:]
  warning = [l for l in proc.stderr.splitlines() if l.startswith('warning:')]
  assert len(warning) == 1 and 'step 40' in warning[0] and os.path.basename(bad) in warning[0], proc.stderr
  assert 'when saved' in warning[0]  # found by the recorded size, before Orbax reads the step
  assert 'Traceback' not in proc.stderr and 'Exception ignored' not in proc.stderr, proc.stderr[-3000:]
  assert '[gan] resuming from step 20 of 40' in proc.stdout
  assert os.path.isdir(f'{w}/gan/checkpoints/40') and os.path.isdir(f'{w}/gan/checkpoints_damaged/40')
  moved = f'{w}/gan/checkpoints_damaged/40/' + os.path.relpath(bad, f'{w}/gan/checkpoints/40')
  assert os.path.exists(moved)  # the damaged file itself, kept
  again = run_cli('train.py', TINY, f'--workdir={w}', '--noprogress')
  assert again.returncode == 0 and '[gan] already trained' in again.stdout and 'warning' not in again.stderr


def test_cli_with_no_intact_step_prints_one_line_and_no_shutdown_noise(tiny_workdir, tmp_path):
  w = str(tmp_path / 'w')
  shutil.copytree(tiny_workdir, w)
  for step in (20, 40):
    _damage(f'{w}/ae/checkpoints/{step}/config/metadata', 'empty')
  before = _files(w)
  proc = run_cli('solve.py', '--batch', TINY, f'--workdir={w}', f'--outdir={tmp_path}/o', '--noprogress')
  assert proc.returncode == 2, proc.stderr[-3000:]
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith('error: no intact checkpoint'), proc.stderr[-3000:]
  assert 'step 40' in lines[0] and 'step 20' in lines[0] and 'metadata' in lines[0]
  assert _files(w) == before and not os.path.exists(f'{tmp_path}/o')


def test_solve_on_a_truncated_array_file_prints_one_warning_and_nothing_else(tiny_workdir, tmp_path):
  """A failed Orbax read used to leave TensorStore reads pending: ~2,000 traceback lines at exit."""
  w = str(tmp_path / 'w')
  shutil.copytree(tiny_workdir, w)
  arrays = glob.glob(f'{w}/ae/checkpoints/40/state/ocdbt.process_0/d/*')
  for path in arrays:
    _damage(path, 'half')
  proc = run_cli('solve.py', '--batch', TINY, f'--workdir={w}', f'--outdir={tmp_path}/o', '--noprogress',
                 '--n=8', '--methods=ae')
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith('warning: checkpoint step 40'), proc.stderr[-3000:]
  assert any(p in lines[0] for p in arrays) and 'using step 20' in lines[0]
