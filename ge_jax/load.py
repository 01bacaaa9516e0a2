"""Loading trained networks for inference: a workdir's final G (EMA) and AE parameters.

Apart from pre-training, so solving, evaluation and the pictures never import the training loop.
"""

from __future__ import annotations

import importlib.util
import os

import jax
import ml_collections

from ge_jax import checkpoint, pairing, parallel, split_record
from ge_jax.errors import UserError
from ge_jax.models import Nets
from ge_jax.train_state import init_ae_state, init_gan_state

# phase -> (state layout, ((the entry used after training, its name in the returned dict), ...))
_PHASES = (('gan', init_gan_state, (('g_ema', 'generator'), ('d', 'discriminator'))),
           ('ae', init_ae_state, (('ae', 'autoencoder'),)))


def load_trained(config, workdir: str, mesh=None) -> dict:
  """{'generator': EMA params of G, 'discriminator': D's params (solver output 'realest'),
  'autoencoder': AE params} from a workdir's final checkpoints.

  The parameters come back replicated on `mesh` (default: every device); a checkpoint written on
  another device count restores too. A missing or mismatched checkpoint is a UserError, and so is
  an AE recorded as trained on another G than the one loaded (`ge_jax.pairing`; workdirs made
  before that record are not checked).
  """
  nets = Nets(config)
  mesh = mesh or parallel.make_mesh()
  key = jax.random.key(config.seed)
  out, steps = {}, {}
  for phase, init, picks in _PHASES:
    ckdir = os.path.join(workdir, phase, 'checkpoints')
    if not os.path.isdir(ckdir):
      raise UserError(f'no {phase.upper()} checkpoints in {ckdir}; train first: '
                      f'python train.py --config=<the same config> --workdir={workdir}')
    target = jax.eval_shape(lambda: init(nets, config, key))
    target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=parallel.replicated(mesh)),
                          target)
    with checkpoint.Checkpoints(ckdir, shape_keys=checkpoint.PHASE_SHAPE_KEYS[phase]) as ckpts:
      state, step = ckpts.restore(target, config)
    if state is None:
      raise UserError(f'no complete {phase.upper()} checkpoint in {ckdir}; train first: '
                      f'python train.py --config=<the same config> --workdir={workdir}')
    if step < config[phase].steps:
      print(f'note: the {phase.upper()} checkpoint is at step {step} of {config[phase].steps} (training unfinished).')
    out.update({name: state[pick] for pick, name in picks})
    steps[phase] = step
  pairing.check(workdir, steps['gan'], out['generator'])
  return out


def check_split(config, workdir: str, dataset=None, allow_other: bool = False) -> None:
  """UserError when `config` (and `dataset`, its loaded data, when given) forms another train / val / test
  split than the one the workdir's networks were trained on (`<workdir>/split.json`, `ge_jax.split_record`).

  With another split, images the networks were trained or validated on could be scored as held-out test
  images. Given `dataset`, its val and test images decide (counts and fingerprints; a moved data folder
  passes); without it, the recorded data settings must be those of `config`. `allow_other=True` (the CLIs'
  `--other_split`) asks for another split explicitly: no check. A workdir without a record (made before
  it) is not checked; a damaged record is a UserError.
  """
  split_record.check(config, workdir, dataset, allow_other)


def config_file(path: str):
  """The ConfigDict of a config file (`get_config()` of e.g. configs/rock64.py), for scripts without flags."""
  if not os.path.isfile(path):
    raise UserError(f'config file {path} not found.')
  spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  if not hasattr(mod, 'get_config'):
    raise UserError(f'{path} has no get_config(); see configs/mnist.py for the form.')
  return mod.get_config()


def saved_config(workdir: str):
  """The config a workdir was trained with (saved beside its final AE checkpoint), as a ConfigDict."""
  ckdir = os.path.join(workdir, 'ae', 'checkpoints')
  if not os.path.isdir(ckdir):
    raise UserError(f'no AE checkpoints in {ckdir}; train first (python train.py --workdir={workdir}) '
                    'or pass the config explicitly.')
  with checkpoint.Checkpoints(ckdir, shape_keys=checkpoint.PHASE_SHAPE_KEYS['ae']) as ckpts:
    saved = ckpts.saved_config()
  if saved is None:
    raise UserError(f'no complete AE checkpoint in {ckdir}; train first or pass the config explicitly.')
  return ml_collections.ConfigDict(saved)
