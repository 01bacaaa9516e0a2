"""AE corruption augmentation (config.ae.augment)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ge_jax import operators, pretrain
from ge_jax.errors import UserError
from ge_jax.models import Nets


def test_augment_operators_parse(tiny_config):
  c = tiny_config
  shape = (28, 28, 1)
  assert pretrain.augment_operators(c.ae, c.ops, shape) == []
  c.ae.augment = 'denoise, superres'
  ops = pretrain.augment_operators(c.ae, c.ops, shape)
  assert len(ops) == len(pretrain.AUGMENT_VARIANTS['denoise']) + len(pretrain.AUGMENT_VARIANTS['superres'])
  c.ae.augment = 'all'
  assert len(pretrain.augment_operators(c.ae, c.ops, shape)) == sum(map(len, pretrain.AUGMENT_VARIANTS.values()))
  c.ae.augment = 'denoise,fog'
  with pytest.raises(UserError, match='fog'):
    pretrain.augment_operators(c.ae, c.ops, shape)


def test_corrupt_mixed_picks_one_operator_per_image(tiny_config):
  c = tiny_config
  c.ae.augment = 'superres,inpaint'
  ops = pretrain.augment_operators(c.ae, c.ops, (28, 28, 1))
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (12, 28, 28, 1)), jnp.float32)
  y = np.asarray(pretrain._corrupt_mixed(ops, jax.random.key(1), x))
  assert y.shape == x.shape and not np.allclose(y, np.asarray(x))
  # every operator here is deterministic given its key: each image equals one of the candidates
  k_ops = jax.random.split(jax.random.key(1))[1]
  cands = [np.asarray(operators.corrupt(op, jax.random.fold_in(k_ops, i), x)[0]) for i, op in enumerate(ops)]
  for b in range(12):
    assert any(np.allclose(y[b], cand[b]) for cand in cands)


def test_augmented_ae_step_trains(tiny_config):
  c = tiny_config
  c.ae.augment = 'denoise,inpaint'
  c.ae.augment_recon = 1.0
  c.ae.augment_weight = 0.0
  nets = Nets(c)
  key = jax.random.key(0)
  state = pretrain.init_ae_state(nets, c, key)
  g = pretrain.init_gan_state(nets, c, key)['g_ema']
  step = jax.jit(pretrain.make_ae_step(nets, c.ae, c.ops))
  real = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)), jnp.float32)
  first = None
  for _ in range(15):
    state, logs = step(state, real, g, key)
    first = first or float(logs['aug_recon_mse'])
  assert {'aug_code', 'aug_recon_mse', 'recon_mse'} <= set(logs)
  assert np.isfinite(float(logs['loss'])) and float(logs['aug_recon_mse']) < first
  with pytest.raises(UserError, match='config.ops'):
    pretrain.make_ae_step(nets, c.ae, None)
