"""The layout of the checkpointed train states, shared by training (pretrain.py) and loading (load.py).

Loading needs the states' shapes to restore a checkpoint, but not the training loop, so the
layout lives here, apart from both.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ge_jax.errors import UserError
from ge_jax.models import Nets, init_params

Array = jax.Array


def gan_optimizers(gan_cfg):
  tx = optax.adam(gan_cfg.lr, b1=gan_cfg.b1, b2=gan_cfg.b2)
  return tx, tx


def ae_optimizer(ae_cfg):
  """Adam at ae.lr, constant or (ae.lr_schedule='cosine') decayed to ae.lr_final_fraction * lr at the last step.

  The two schedules keep different optimizer states, so a run resumes only under its own schedule.
  """
  schedule = ae_cfg.get('lr_schedule', 'constant')
  if schedule == 'constant':
    return optax.adam(ae_cfg.lr)
  if schedule == 'cosine':
    return optax.adam(optax.cosine_decay_schedule(ae_cfg.lr, int(ae_cfg.steps),
                                                  alpha=float(ae_cfg.get('lr_final_fraction', 0.0))))
  raise UserError(f"config.ae.lr_schedule={schedule!r} is not one of 'constant', 'cosine'.")


def init_gan_state(nets: Nets, config, key: Array) -> dict:
  del nets  # the shapes come from the config; kept for a uniform signature
  p = init_params(config, key)
  tx_g, tx_d = gan_optimizers(config.gan)
  return dict(step=jnp.zeros((), jnp.int32), g=p['generator'], d=p['discriminator'],
              g_ema=jax.tree.map(jnp.copy, p['generator']),  # its own buffers (steps donate state)
              opt_g=tx_g.init(p['generator']), opt_d=tx_d.init(p['discriminator']))


def init_ae_state(nets: Nets, config, key: Array) -> dict:
  del nets
  p = init_params(config, key)['autoencoder']
  return dict(step=jnp.zeros((), jnp.int32), ae=p, opt=ae_optimizer(config.ae).init(p))
