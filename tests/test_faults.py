"""Damaged files beside a checkpoint and a full disk: one sentence (or a one-line note and the right
thing done), never a traceback; nothing the user has is lost."""

import errno
import os
import shutil
import textwrap

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import error_line, run_cli
from ge_jax import checkpoint, classifier, data, load, pretrain
from ge_jax.errors import UserError
from ge_jax.models import Nets


@pytest.fixture
def workdir(tiny_workdir, tmp_path):
  w = str(tmp_path / 'w')
  shutil.copytree(tiny_workdir, w)
  return w


def _garble(path, how):
  size = os.path.getsize(path) if os.path.exists(path) else 0
  with open(path, 'r+b' if how == 'truncated' else 'wb') as f:
    if how == 'truncated':
      f.truncate(max(size // 2, 1))
    else:
      f.write(b'\x93\xff\x00garbage{' * 7)


# --- (a) a damaged config file beside the checkpoint ---------------------------------------------


@pytest.mark.parametrize('how', ['truncated', 'garbage'])
def test_a_damaged_saved_config_uses_the_older_step_with_a_warning(workdir, tiny_config, capsys, how):
  path = os.path.join(workdir, 'ae', 'checkpoints', '40', 'config', 'metadata')
  _garble(path, how)
  config = load.saved_config(workdir)
  assert config.ae.code_dim == tiny_config.ae.code_dim
  warnings = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
  assert len(warnings) == 1 and path in warnings[0] and 'step 20' in warnings[0]


def test_no_readable_saved_config_is_one_sentence(workdir):
  paths = [os.path.join(workdir, 'ae', 'checkpoints', s, 'config', 'metadata') for s in ('20', '40')]
  for p in paths:
    _garble(p, 'garbage')
  with pytest.raises(UserError) as e:
    load.saved_config(workdir)
  msg = str(e.value)
  assert all(p in msg for p in paths) and 'pass the config' in msg and '\n' not in msg


# --- (b) a damaged classifier checkpoint ----------------------------------------------------------


@pytest.mark.parametrize('how', ['truncated', 'garbage'])
def test_a_damaged_classifier_is_set_aside_and_trained_again(workdir, tiny_config, capsys, how):
  ds = data.load(tiny_config.data)
  path = os.path.join(workdir, 'classifier', 'params.msgpack')
  if os.path.exists(path):  # a classifier cached by another test, of another length: train this one here
    os.remove(path)
  good = classifier.load_or_train(workdir, ds, steps=20)
  capsys.readouterr()
  _garble(path, how)
  damaged = open(path, 'rb').read()
  params = classifier.load_or_train(workdir, ds, steps=20)
  out = capsys.readouterr()
  notes = [l for l in (out.out + out.err).splitlines() if path in l]
  assert len(notes) == 1 and 'training it again' in notes[0]
  assert open(path + '.damaged', 'rb').read() == damaged  # kept, not deleted
  same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), params, good)  # seeded: the same network
  assert all(jax.tree.leaves(same))
  assert classifier.apply(classifier.load_or_train(workdir, ds), ds.test[:3])[0].shape == (3, 10)


# --- (c) a damaged checksum record ----------------------------------------------------------------


@pytest.mark.parametrize('content', [b'\xff\xfe\x00 not utf-8', b'[1, 2, 3]', b'{"state/_METADATA": "big"}',
                                     b'{"state/_METADATA": {"bytes": 5}}', b'{"../../x": 3}',
                                     b'{"a": {"bytes": -1, "crc32": null}}'])
def test_a_damaged_checksum_record_leaves_the_step_unverified(workdir, tiny_config, capsys, content):
  ckdir = os.path.join(workdir, 'gan', 'checkpoints')
  record = os.path.join(ckdir, '40', checkpoint.SIZES_FILE)
  with open(record, 'wb') as f:
    f.write(content)
  nets = Nets(tiny_config)
  target = jax.eval_shape(lambda: pretrain.init_gan_state(nets, tiny_config, jax.random.key(0)))
  with checkpoint.Checkpoints(ckdir, shape_keys=checkpoint.PHASE_SHAPE_KEYS['gan']) as ck:
    state, step = ck.restore(target, tiny_config)
  # The step is unverified, as one without a record: Orbax's own checks pass, so the intact step is used
  # (quietly, as tests/test_damaged_checkpoints.py asserts for a damaged step whose state reads back whole).
  assert step == 40 and int(state['step']) == 40
  assert 'Traceback' not in capsys.readouterr().err
  truncated = os.path.join(ckdir, '40', 'state', '_METADATA')  # with the record damaged, damage is still found
  with open(truncated, 'r+b') as f:
    f.truncate(0)
  with checkpoint.Checkpoints(ckdir, shape_keys=checkpoint.PHASE_SHAPE_KEYS['gan']) as ck:
    assert ck.restore(target, tiny_config)[1] == 20
  assert truncated in capsys.readouterr().err


# --- (d) a non-UTF-8 line in a phase's log on resume ---------------------------------------------


def test_a_log_line_that_is_not_utf8_is_dropped_on_resume(tmp_path, capsys):
  path = str(tmp_path / 'log.jsonl')
  with open(path, 'wb') as f:
    f.write(b'{"step": 10, "loss": 1.0}\n{"step": 20, "loss": 0.5}\n\xff\xfe\x81 garbage\n'
            b'{"step": 1e999}\n{"step": 30, "loss": 0.4}\n')
  pretrain.JsonlLog(path, 20)
  with open(path, encoding='utf-8') as f:
    assert f.read() == '{"step": 10, "loss": 1.0}\n{"step": 20, "loss": 0.5}\n'
  assert 'not UTF-8' in capsys.readouterr().out


# --- (e) a full disk while training ---------------------------------------------------------------

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fail_saves_from(monkeypatch, how, step=40):
  """Checkpoint saves of `step` and later fail as on a full disk: in Orbax's save call ('sync'), in
  its background thread ('async', surfacing later as Orbax's own error), or by the free space
  seen before saving ('free')."""
  if how == 'sync':
    real = ocp.CheckpointManager.save

    def save(self, s, *a, **k):
      if s >= step:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
      return real(self, s, *a, **k)
    monkeypatch.setattr(ocp.CheckpointManager, 'save', save)
  elif how == 'async':
    from orbax.checkpoint._src.metadata import checkpoint as meta
    real = meta._MetadataStoreImpl.write

    def write(self, file_path, metadata):
      if f'/{step}.orbax-checkpoint-tmp' in str(file_path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
      return real(self, file_path, metadata)
    monkeypatch.setattr(meta._MetadataStoreImpl, 'write', write)
  else:
    real = shutil.disk_usage
    monkeypatch.setattr(checkpoint.shutil, 'disk_usage',
                        lambda p: real(p)._replace(free=1000) if os.path.isdir(os.path.join(p, '20')) else real(p))


@pytest.mark.parametrize('how', ['sync', 'async', 'free'])
def test_a_full_disk_stops_training_with_one_sentence(tiny_config, tmp_path, monkeypatch, how):
  w = str(tmp_path / 'w')
  tiny_config.gan.steps = 60
  _fail_saves_from(monkeypatch, how)
  with pytest.raises(UserError) as e:
    pretrain.train_and_evaluate(tiny_config, w, progress=False)
  msg = str(e.value)
  assert msg.startswith('[gan] ') and 'step 40' in msg and 'step 20' in msg and 'free' in msg
  assert '\n' not in msg
  monkeypatch.undo()
  ckdir = os.path.join(w, 'gan', 'checkpoints')
  assert [s for s in os.listdir(ckdir) if s.isdigit()] == ['20']
  nets = Nets(tiny_config)
  target = jax.eval_shape(lambda: pretrain.init_gan_state(nets, tiny_config, jax.random.key(0)))
  with checkpoint.Checkpoints(ckdir, shape_keys=checkpoint.PHASE_SHAPE_KEYS['gan']) as ck:
    assert ck.restore(target, tiny_config)[1] == 20  # the previous checkpoint is intact


def test_train_cli_on_a_full_disk_is_one_line(tmp_path):
  """The CLI: exit 2, one error line, no traceback (Orbax's background threads print none either)."""
  w = str(tmp_path / 'w')
  script = textwrap.dedent(f"""
      import errno, os, runpy, sys
      from orbax.checkpoint._src.metadata import checkpoint as meta
      real = meta._MetadataStoreImpl.write
      def write(self, file_path, metadata):
        if '/40.orbax-checkpoint-tmp' in str(file_path):
          raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, file_path, metadata)
      meta._MetadataStoreImpl.write = write
      sys.argv = ['train.py', '--config=configs/mnist_tiny.py', '--workdir={w}', '--noprogress',
                  '--config.gan.steps=60']
      runpy.run_path('train.py', run_name='__main__')
      """)
  proc = run_cli('-c', script)
  line = error_line(proc)
  assert '[gan]' in line and 'step 20' in line and 'free' in line, line
  assert [l for l in proc.stderr.splitlines() if l.strip()] == [line], proc.stderr[-3000:]
  assert sorted(s for s in os.listdir(os.path.join(w, 'gan', 'checkpoints')) if s.isdigit()) == ['20']
