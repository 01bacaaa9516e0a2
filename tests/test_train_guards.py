"""Training that would leave something silently wrong stops with one sentence (issue 29).

- A G and an AE that no longer belong together (more GAN steps in a trained workdir, a GAN folder
  of another run): refused when training and when loading, with what to run.
- A run that diverges (an absurd learning rate): stopped, the diverged state never saved.
"""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from conftest import error_line, run_cli
from ge_jax import checkpoint, data, load, models, pairing, pretrain
from ge_jax.errors import UserError

TINY = '--config=configs/mnist_tiny.py'


def _files(root):
  """{relative path: (size, mtime)} of every file under root: what 'nothing was touched' compares."""
  out = {}
  for d, _, names in os.walk(root):
    for n in names:
      p = os.path.join(d, n)
      out[os.path.relpath(p, root)] = (os.path.getsize(p), os.stat(p).st_mtime_ns)
  return out


def _latest(workdir, phase):
  with checkpoint.Checkpoints(os.path.join(workdir, phase, 'checkpoints')) as ck:
    return ck.latest_step()


def test_the_ae_records_its_g(tiny_workdir, tiny_config):
  rec = json.load(open(pairing.record_path(tiny_workdir)))
  g = load.load_trained(tiny_config, tiny_workdir)['generator']
  assert rec == dict(gan_step=tiny_config.gan.steps, fingerprint=pairing.fingerprint(g))


def test_more_gan_steps_in_a_trained_workdir_is_refused_before_any_work(tiny_workdir, tmp_path):
  w = str(tmp_path / 'w')
  shutil.copytree(tiny_workdir, w)
  before = _files(w)
  line = error_line(run_cli('train.py', TINY, f'--workdir={w}', '--config.gan.steps=60', '--noprogress'))
  assert 'step 40' in line and 'step 60' in line and f'{w}/ae' in line and 'move' in line, line
  assert _files(w) == before  # G not trained on: the trained pair is as it was


def test_a_mismatched_pair_is_refused_when_training_and_loading(tiny_workdir, tiny_config, tmp_path, capsys):
  ds = data.load(tiny_config.data)
  # What training more GAN steps did before the check: G trained on to 60, the AE (of G at 40) kept.
  w = str(tmp_path / 'w')
  shutil.copytree(tiny_workdir, w)
  os.rename(f'{w}/ae', f'{tmp_path}/ae_of_g40')
  more = tiny_config.copy_and_resolve_references()
  more.gan.steps = 60
  pretrain.train_gan(more, w, ds, progress=False)
  os.rename(f'{tmp_path}/ae_of_g40', f'{w}/ae')
  with pytest.raises(UserError, match='trained on G at step 40, but .* holds G at step 60; .*train.py') as e:
    load.load_trained(tiny_config, w)
  assert '\n' not in str(e.value)
  before = _files(f'{w}/ae')
  with pytest.raises(UserError, match='trained on G at step 40, but .* holds G at step 60, so resuming'):
    pretrain.train_and_evaluate(more, w, progress=False)
  assert _files(f'{w}/ae') == before
  # A GAN folder of another run at the same step: told apart by the fingerprint.
  w2 = str(tmp_path / 'w2')
  shutil.copytree(tiny_workdir, w2)
  shutil.rmtree(f'{w2}/gan')
  other = tiny_config.copy_and_resolve_references()
  other.seed += 1
  gan = pretrain.train_gan(other, w2, ds, progress=False)  # back to step 40, the step the AE was trained at
  with pytest.raises(UserError, match='holds G at step 40 with other parameters'):
    load.load_trained(tiny_config, w2)
  capsys.readouterr()
  # Moving the AE away, as the message says, trains a new AE on the new G (and records it).
  shutil.rmtree(f'{w2}/ae')
  pretrain.train_ae(other, w2, ds, gan['g_ema'], gan_step=int(gan['step']), progress=False)
  assert _latest(w2, 'ae') == 40 and set(load.load_trained(other, w2)) == {'generator', 'discriminator',
                                                                           'autoencoder'}


def test_an_older_g_after_a_damaged_newest_step_is_refused_then_trained_again(tiny_workdir, tiny_config, tmp_path,
                                                                              capsys):
  w = str(tmp_path / 'w')
  shutil.copytree(tiny_workdir, w)
  open(f'{w}/gan/checkpoints/40/state/_METADATA', 'w').close()  # empty: G falls back to step 20
  with pytest.raises(UserError, match='trained on G at step 40, but .* holds G at step 20; run python train.py '
                                      '.* to train G to step 40 again'):
    load.load_trained(tiny_config, w)
  pretrain.train_and_evaluate(tiny_config, w, progress=False)  # as the message says
  assert '[ae] already trained' in capsys.readouterr().out  # the same steps gave the same G: the AE is kept
  assert set(load.load_trained(tiny_config, w)) == {'generator', 'discriminator', 'autoencoder'}


def test_a_workdir_made_before_the_record_loads_as_before(tiny_workdir, tiny_config, tmp_path, capsys):
  w = str(tmp_path / 'w')
  shutil.copytree(tiny_workdir, w)
  os.remove(pairing.record_path(w))
  capsys.readouterr()
  params = load.load_trained(tiny_config, w)
  out = capsys.readouterr()
  assert set(params) == {'generator', 'discriminator', 'autoencoder'} and not out.out and not out.err


def test_an_absurd_gan_learning_rate_stops_with_one_line(tmp_path):
  w = str(tmp_path / 'w')
  line = error_line(run_cli('train.py', TINY, f'--workdir={w}', '--config.gan.lr=1e6', '--noprogress'))
  assert '[gan] training diverged at step 10' in line and 'g_loss' in line and 'lower config.gan.lr' in line, line
  assert not pairing.checkpoint_steps(w, 'gan') and not os.path.exists(f'{w}/ae')


def test_divergence_keeps_the_last_good_checkpoint(tiny_config, tmp_path):
  c = tiny_config
  ds = data.load(c.data)
  w = str(tmp_path / 'w')
  c.gan.steps = 20
  good = pretrain.train_gan(c, w, ds, progress=False)
  c.gan.steps, c.gan.lr = 40, 1e6
  with pytest.raises(UserError, match=r'\[gan\] training diverged at step 30: .*resumes from step 20') as e:
    pretrain.train_gan(c, w, ds, progress=False)
  assert '\n' not in str(e.value)
  assert pairing.checkpoint_steps(w, 'gan') == [20]
  c.gan.lr = 5e-4  # as the message says: a lower learning rate resumes from the good step
  state = pretrain.train_gan(c, w, ds, progress=False)
  assert int(state['step']) == 40 and all(np.isfinite(x).all() for x in jax.tree.leaves(state['g']))
  del good


def test_a_nan_between_log_steps_is_never_saved(tiny_config, tmp_path):
  # The AE's loss turns NaN within 10 steps at lr 1e6; logged only at step 40, saved at 20 and 40.
  c = tiny_config
  c.ae.lr, c.ae.log_every, c.ae.ckpt_every = 1e6, 40, 20
  ds = data.load(c.data)
  g = models.init_params(c, jax.random.key(1))['generator']
  w = str(tmp_path / 'w')
  with pytest.raises(UserError, match=r'\[ae\] training diverged at step 20: loss = nan.*no checkpoint'):
    pretrain.train_ae(c, w, ds, g, gan_step=0, progress=False)
  assert pairing.checkpoint_steps(w, 'ae') == []
