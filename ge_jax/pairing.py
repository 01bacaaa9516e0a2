"""Which G a workdir's AE was trained on, so that a G and an AE that no longer belong together are refused.

The AE learns the codes of G's samples, so it belongs to the G it was trained with. When the AE
phase starts from scratch, `<workdir>/ae/generator.json` records that G: its GAN checkpoint step and a
fingerprint (SHA-256 of its EMA parameters' bytes, 16 hex digits). Afterwards:

- training G further in a workdir whose AE is trained (e.g. `--config.gan.steps=<more>`) is refused
  before any work (`check_before_gan`), and so is resuming or skipping the AE with another G
  (`check_or_record`): the message says to move `<workdir>/ae` away (or delete it) and run again to
  train a new AE on the new G, or to use another `--workdir`. We refuse rather than retrain the AE
  ourselves, because retraining would replace a trained network the user did not ask to replace
  (and cost a whole AE phase), while refusing before the GAN trains keeps the old pair intact and usable;
- loading the pair for solving (`ge_jax.load.load_trained`) with another G is a UserError (`check`).

Workdirs made before the record existed (an AE checkpoint, no record) are not checked: they load
and resume as before, without a word, since nothing says which G their AE saw. The record never
touches the checkpoints themselves (their format is unchanged).
"""

from __future__ import annotations

import hashlib
import os
import sys

import jax
import numpy as np

from ge_jax import fileio
from ge_jax.errors import UserError

RECORD = 'generator.json'


def record_path(workdir: str) -> str:
  return os.path.join(workdir, 'ae', RECORD)


def checkpoint_steps(workdir: str, phase: str) -> list[int]:
  """The steps saved under <workdir>/<phase>/checkpoints (Orbax names each finished step's folder by its number)."""
  d = os.path.join(workdir, phase, 'checkpoints')
  try:
    return sorted(int(s) for s in os.listdir(d) if s.isdigit() and os.path.isdir(os.path.join(d, s)))
  except OSError:
    return []


def fingerprint(params) -> str:
  """16 hex digits of the SHA-256 of a pytree's arrays (dtype, shape and bytes, in tree order)."""
  h = hashlib.sha256()
  for x in jax.tree.leaves(params):
    # A replicated global array: every shard holds the whole array (multi-host arrays are not
    # addressable as a whole, but their first local shard is).
    a = np.asarray(x.addressable_data(0) if isinstance(x, jax.Array) and x.is_fully_replicated else x)
    h.update(f'{a.dtype}{a.shape}'.encode())
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()[:16]


def read(workdir: str) -> dict | None:
  """The record, or None when there is none (a workdir made before records) or it is unreadable (warned)."""
  path = record_path(workdir)
  try:
    rec = fileio.read_record(path, 'fingerprint', 'a record')
    if rec is not None and not isinstance(rec['fingerprint'], str):
      raise ValueError('not a record of ge_jax')
    return rec
  except ValueError as e:
    print(f'warning: {path} is unreadable ({e}), so which G the AE was trained on cannot be checked.',
          file=sys.stderr, flush=True)
    return None


def write(workdir: str, gan_step: int | None, g_params) -> None:
  """Records that the AE of `workdir` is trained on `g_params` (G at `gan_step`). Primary process only."""
  if jax.process_index() != 0:
    return
  fileio.write_json(record_path(workdir), dict(gan_step=None if gan_step is None else int(gan_step),
                                                fingerprint=fingerprint(g_params)))


def _step(s) -> str:
  return 'an unrecorded step' if s is None else f'step {s}'


def _mismatch(workdir: str, gan_step: int | None, g_params) -> str | None:
  """'the AE ... was trained on G at step A, but ... holds G at step B' when they differ, else None."""
  rec = read(workdir)
  if rec is None:
    return None
  steps_known = rec.get('gan_step') is not None and gan_step is not None
  if rec['fingerprint'] == fingerprint(g_params) and (not steps_known or rec['gan_step'] == gan_step):
    return None  # (a step left unrecorded, by a direct call of train_ae, is not compared)
  other = ' with other parameters' if rec.get('gan_step') == gan_step else ''
  return (f'the AE in {os.path.join(workdir, "ae")} was trained on G at {_step(rec.get("gan_step"))}, but '
          f'{os.path.join(workdir, "gan")} now holds G at {_step(gan_step)}{other}')


def check(workdir: str, gan_step: int | None, g_params) -> None:
  """For loading the pair: UserError when the AE was recorded as trained on another G (no record: no check)."""
  problem = _mismatch(workdir, gan_step, g_params)
  if not problem:
    return
  ae_dir, train = os.path.join(workdir, 'ae'), f'python train.py --config=<the same config> --workdir={workdir}'
  rec_step = read(workdir).get('gan_step')
  if isinstance(rec_step, int) and gan_step is not None and gan_step < rec_step:
    # An older G than the AE's (its newest checkpoint damaged or removed): training G again repeats the steps.
    raise UserError(f'{problem}; run {train} to train G to step {rec_step} again (the AE is kept when G comes '
                    f'out the same), or move {ae_dir} away first to train a new AE as well.')
  raise UserError(f'{problem}; to train the AE again on this G, move {ae_dir} away (or delete it) and run {train}.')


def check_or_record(workdir: str, gan_step: int | None, g_params) -> None:
  """Where the AE phase starts: a fresh AE records its G; a trained (or partly trained) one must have been
  trained on this G, else UserError before any work."""
  if not checkpoint_steps(workdir, 'ae'):
    write(workdir, gan_step, g_params)
    return
  problem = _mismatch(workdir, gan_step, g_params)
  if problem:
    raise UserError(f'{problem}, so resuming or keeping that AE would pair it with another G; move '
                    f'{os.path.join(workdir, "ae")} away (or delete it) and run this again to train a new AE '
                    'on this G, or train in another --workdir.')


def check_before_gan(workdir: str, gan_steps: int) -> None:
  """Before the GAN phase: refuses to train G on (to `gan_steps`) when the workdir holds a trained AE of
  another G, so that the trained pair stays as it is (nothing was run yet)."""
  ae_steps, gan_saved = checkpoint_steps(workdir, 'ae'), checkpoint_steps(workdir, 'gan')
  newest = gan_saved[-1] if gan_saved else None
  if not ae_steps or (newest is not None and newest >= gan_steps):
    return  # no AE yet, or G is not trained further (the AE phase then checks the G it gets)
  rec = read(workdir)
  if rec is not None and rec.get('gan_step') == gan_steps:
    return  # G is brought back to the step its AE was trained on (e.g. after a damaged newest step)
  ae_dir = os.path.join(workdir, 'ae')
  trained_on = 'an unrecorded G' if rec is None else f'G at {_step(rec.get("gan_step"))}'
  now = 'no GAN checkpoint' if newest is None else f'step {newest}'
  raise UserError(f'{ae_dir} holds an AE trained on {trained_on}, and this run would train G on to step '
                  f'{gan_steps} (it is at {now}), which would leave that AE paired with another G; move '
                  f'{ae_dir} away (or delete it) and run this again to train a new AE on the new G, or train '
                  'in another --workdir.')
