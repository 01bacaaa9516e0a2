import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ge_jax import checkpoint, data, load, models, pretrain
from ge_jax.errors import UserError


def _leaves_equal(a, b, atol=0.0):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)


def test_ae_steps_lower_the_loss(tiny_config):
  c = tiny_config
  nets = models.Nets(c)
  ds = data.load(c.data)
  state = pretrain.init_ae_state(nets, c, jax.random.key(0))
  g = models.init_params(c, jax.random.key(1))['generator']
  step = jax.jit(pretrain.make_ae_step(nets, c.ae))
  n_real = c.ae.batch_size - pretrain.generated_count(c.ae)
  batch = jnp.asarray(ds.train[:n_real])
  losses = []
  for _ in range(30):
    state, logs = step(state, batch, g, jax.random.key(2))
    losses.append(float(logs['loss']))
  assert int(state['step']) == 30
  assert losses[-1] < 0.75 * losses[0]


def test_gan_steps_train_both_players(tiny_config):
  c = tiny_config
  nets = models.Nets(c)
  ds = data.load(c.data)
  state = pretrain.init_gan_state(nets, c, jax.random.key(0))
  g0, d0 = state['g'], state['d']
  step = jax.jit(pretrain.make_gan_step(nets, c.gan))
  batch = jnp.asarray(ds.train[:c.gan.batch_size])
  d_losses = []
  for _ in range(20):
    state, logs = step(state, batch, jax.random.key(2))
    d_losses.append(float(logs['d_loss']))
  assert np.isfinite(d_losses).all()
  assert d_losses[-1] < d_losses[0]  # D learns to tell this batch from G's samples
  diff = lambda a, b: max(float(jnp.abs(x - y).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  assert diff(state['g'], g0) > 0 and diff(state['d'], d0) > 0
  assert 0 < diff(state['g_ema'], g0) < diff(state['g'], g0) + 1e-9  # EMA lags behind G


def test_generated_fraction_is_validated(tiny_config):
  tiny_config.ae.generated_fraction = 1.5
  with pytest.raises(UserError, match='generated_fraction'):
    pretrain.generated_count(tiny_config.ae)


def test_generated_scale_sets_the_norm_of_gs_latents(tiny_config):
  # generated_scale (0, 0): every generated image is G(0), so the step's loss is the AE's error on G(0).
  c = tiny_config
  c.ae.generated_fraction = 1.0
  nets = models.Nets(c)
  state = pretrain.init_ae_state(nets, c, jax.random.key(0))
  g = models.init_params(c, jax.random.key(1))['generator']
  no_real = jnp.zeros((0,) + nets.image_shape)
  g0 = jax.jit(nets.G)(g, jnp.zeros((c.ae.batch_size, nets.latent_dim)))
  want = float(jnp.mean((jax.jit(nets.reconstruct)(state['ae'], g0) - g0)**2))
  losses = {}
  for scale in ((0.0, 0.0), (1.0, 1.0), (0.0, 1.5)):
    c.ae.generated_scale = scale
    _, logs = jax.jit(pretrain.make_ae_step(nets, c.ae))(state, no_real, g, jax.random.key(2))  # as training runs it
    losses[scale] = float(logs['recon_mse'])
  np.testing.assert_allclose(losses[(0.0, 0.0)], want, rtol=1e-5)
  assert abs(losses[(1.0, 1.0)] - want) > 1e-4 and abs(losses[(0.0, 1.5)] - losses[(1.0, 1.0)]) > 1e-6
  c.ae.generated_scale = (1.0, 0.5)
  with pytest.raises(UserError, match='generated_scale'):
    pretrain.make_ae_step(nets, c.ae)


def test_tiny_run_leaves_checkpoints_pictures_and_logs(tiny_workdir, tiny_config):
  for phase, steps in (('gan', tiny_config.gan.steps), ('ae', tiny_config.ae.steps)):
    ckpts = checkpoint.Checkpoints(os.path.join(tiny_workdir, phase, 'checkpoints'))
    assert ckpts.latest_step() == steps
    assert ckpts.saved_config()['ae']['code_dim'] == tiny_config.ae.code_dim
    ckpts.close()
    lines = [json.loads(l) for l in open(os.path.join(tiny_workdir, phase, 'log.jsonl'))]
    assert [l['step'] for l in lines] == list(range(tiny_config[phase].log_every, steps + 1,
                                                   tiny_config[phase].log_every))
  assert os.path.getsize(os.path.join(tiny_workdir, 'gan', 'samples.png')) > 0
  assert os.path.getsize(os.path.join(tiny_workdir, 'ae', 'reconstructions.png')) > 0
  summary = json.load(open(os.path.join(tiny_workdir, 'summary.json')))
  assert summary['ae_test']['n'] == tiny_config.data.test_size
  assert summary['ae_val']['n'] == tiny_config.data.val_size > 0
  assert summary['ae_val']['psnr']['mean'] != summary['ae_test']['psnr']['mean']


def test_resume_equals_uninterrupted_run(tiny_config, tmp_path):
  """20 steps, stop, 20 more from the checkpoint == 40 steps straight (same parameters)."""
  c = tiny_config
  ds = data.load(c.data)
  straight = pretrain.train_gan(c, str(tmp_path / 'a'), ds, progress=False)
  c.gan.steps = 20
  half = pretrain.train_gan(c, str(tmp_path / 'b'), ds, progress=False)
  assert int(half['step']) == 20
  c.gan.steps = 40
  resumed = pretrain.train_gan(c, str(tmp_path / 'b'), ds, progress=False)
  assert int(resumed['step']) == 40
  _leaves_equal(resumed['g'], straight['g'], atol=1e-6)
  _leaves_equal(resumed['g_ema'], straight['g_ema'], atol=1e-6)
  _leaves_equal(resumed['opt_d'], straight['opt_d'], atol=1e-6)
  steps = [json.loads(l)['step'] for l in open(tmp_path / 'b' / 'gan' / 'log.jsonl')]
  assert steps == [10, 20, 30, 40]  # no step logged twice or skipped


def test_half_written_checkpoint_is_ignored(tiny_config, tmp_path):
  c = tiny_config
  ds = data.load(c.data)
  c.gan.steps = 20
  pretrain.train_gan(c, str(tmp_path), ds, progress=False)
  ckdir = tmp_path / 'gan' / 'checkpoints'
  # What a kill -9 during an Orbax save leaves: a temporary folder that was never renamed.
  junk = ckdir / '40.orbax-checkpoint-tmp-1234'
  (junk / 'state').mkdir(parents=True)
  (junk / 'state' / 'garbage').write_bytes(b'\0' * 10)
  with checkpoint.Checkpoints(str(ckdir)) as ck:
    assert ck.latest_step() == 20
  c.gan.steps = 30
  state = pretrain.train_gan(c, str(tmp_path), ds, progress=False)
  assert int(state['step']) == 30


def test_checkpoint_of_another_config_is_refused(tiny_workdir, tiny_config):
  ds = data.load(tiny_config.data)
  wider = tiny_config.copy_and_resolve_references()
  wider.model.g_width = tiny_config.model.g_width * 2
  with pytest.raises(UserError, match='model.g_width'):
    pretrain.train_gan(wider, tiny_workdir, ds, progress=False)
  tiny_config.ae.code_dim = tiny_config.ae.code_dim + 1
  with pytest.raises(UserError, match='ae.code_dim'):
    load.load_trained(tiny_config, tiny_workdir)


def test_gan_is_shared_by_an_ae_of_another_code_size(tiny_workdir, tiny_config, tmp_path, capsys):
  # Each phase checks only the shapes of its own networks: a trained GAN serves a new AE config.
  shutil.copytree(os.path.join(tiny_workdir, 'gan'), tmp_path / 'gan')
  tiny_config.ae.code_dim = tiny_config.ae.code_dim + 1
  ds = data.load(tiny_config.data)
  g = pretrain.train_gan(tiny_config, str(tmp_path), ds, progress=False)
  assert 'already trained' in capsys.readouterr().out
  from configs import mnist_tiny
  _leaves_equal(g['g_ema'], load.load_trained(mnist_tiny.get_config(), tiny_workdir)['generator'])


def _events(folder: str) -> list:
  """Every Event record of the TensorBoard files in `folder` (TFRecord framing: length, crc, data, crc)."""
  import glob
  import struct
  from tensorboardX.proto import event_pb2
  out = []
  for path in sorted(glob.glob(os.path.join(folder, 'events.out.tfevents.*'))):
    raw = open(path, 'rb').read()
    i = 0
    while i < len(raw):
      (n,) = struct.unpack('<Q', raw[i:i + 8])
      out.append(event_pb2.Event.FromString(raw[i + 12:i + 12 + n]))
      i += 12 + n + 4
  return out


def test_tensorboard_has_losses_and_pictures(tiny_workdir, tiny_config):
  for phase, loss, picture in (('gan', 'g_loss', 'samples'), ('ae', 'recon_mse', 'reconstructions')):
    events = _events(os.path.join(tiny_workdir, phase, 'tensorboard'))
    values = [(e.step, v.tag) for e in events for v in e.summary.value]
    steps = sorted({s for s, tag in values if tag == loss})
    assert steps == list(range(tiny_config[phase].log_every, tiny_config[phase].steps + 1, tiny_config[phase].log_every))
    assert any(tag == picture for _, tag in values)
    with open(os.path.join(tiny_workdir, phase, 'log.jsonl')) as f:
      assert len(f.readlines()) == len(steps)  # the same records as the JSONL log


def test_ae_cosine_schedule_decays_to_its_final_fraction():
  """ae.lr_schedule='cosine': Adam's first step moves by ~lr, the last by ~lr_final_fraction * lr."""
  import ml_collections
  import optax
  from ge_jax.train_state import ae_optimizer
  cfg = ml_collections.ConfigDict(dict(lr=0.1, lr_schedule='cosine', lr_final_fraction=0.2, steps=10))
  tx = ae_optimizer(cfg)
  p = jnp.zeros(3)
  state = tx.init(p)
  sizes = []
  for _ in range(11):
    u, state = tx.update(jnp.ones(3), state, p)
    sizes.append(float(jnp.abs(u[0])))
  np.testing.assert_allclose([sizes[0], sizes[10]], [0.1, 0.02], rtol=1e-3)
  assert sizes[5] < sizes[0]
  const = ae_optimizer(ml_collections.ConfigDict(dict(lr=0.1, lr_schedule='constant', steps=10)))
  u, _ = const.update(jnp.ones(3), const.init(p), p)
  np.testing.assert_allclose(abs(float(u[0])), 0.1, rtol=1e-3)
  with pytest.raises(UserError, match='lr_schedule'):
    ae_optimizer(ml_collections.ConfigDict(dict(lr=0.1, lr_schedule='linear', steps=10)))
