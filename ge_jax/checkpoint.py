"""Orbax checkpoints: one small wrapper around `CheckpointManager`.

Each training phase (GAN, AE) has its own directory `<workdir>/<phase>/checkpoints` holding steps
written atomically (Orbax writes to a temporary folder and renames it when complete, so a process
killed mid-save leaves no half checkpoint behind), with the run's config saved beside the state.
Restores go through an abstract target, so a checkpoint written on N devices restores on M.

A damaged step (a truncated array file, an empty metadata file) is reported in one sentence naming
the step and the file, and the newest intact step is used instead; nothing is ever deleted (when
training resumes, damaged newer steps are moved to `<directory>_damaged/` so that they can be
written again). Each finished step records its files' sizes and CRC-32 checksums (`SIZES_FILE`), which
name a truncated or altered file before Orbax reads it (Orbax loads a flipped bit without a word);
a damaged record itself leaves its step unverified, to Orbax's own checks. A damaged saved config is
reported like a damaged step, and the config of the newest intact step is used.

A full disk (`ge_jax.fileio.disk_full`) while saving leaves the steps saved before intact (Orbax
deletes old steps only after a new one is complete); `disk_full_message` says which step failed, which
one is kept and how much space to free. A save is refused before it starts when the disk has less
free space than the newest step takes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import sys
import zlib
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

from ge_jax import fileio
from ge_jax.errors import UserError

SIZES_FILE = 'ge_jax_file_sizes.json'
# Orbax's words for a target of other shapes or structure (a config mismatch, not damage).
_MISMATCH = re.compile(r'not compatible with the stored shape|[Ss]tructure mismatch|structures do not match'
                       r'|not found in metadata')

# Config fields that fix the shapes of saved parameters: a checkpoint only fits a config that agrees.
# Each phase checks only its own, so a GAN can be shared by AEs of another code size.
PHASE_SHAPE_KEYS = {
    'gan': ('data.image_size', 'data.channels', 'model.latent_dim', 'model.g_width', 'model.d_width',
            'model.base_size', 'model.g_norm', 'model.g_final', 'model.g_upsample'),
    'ae': ('data.image_size', 'data.channels', 'ae.kind', 'ae.code_dim', 'ae.width'),
}
SHAPE_KEYS = PHASE_SHAPE_KEYS['gan'] + PHASE_SHAPE_KEYS['ae'][2:]
# Config fields that fix the optimizer state's structure: checked when a phase resumes training
# (not when its parameters are loaded for solving).
OPTIMIZER_KEYS = {'gan': (), 'ae': ('ae.lr_schedule',)}


def _get(cfg: dict, dotted: str):
  for part in dotted.split('.'):
    if not isinstance(cfg, dict) or part not in cfg:
      return None
    cfg = cfg[part]
  return cfg


def config_to_dict(config) -> dict:
  return json.loads(config.to_json_best_effort()) if isinstance(config, ml_collections.ConfigDict) else config


def check_compatible(saved: dict, config, where: str, keys: tuple[str, ...] = SHAPE_KEYS) -> None:
  """Raises UserError when `saved` (a config dict) has other parameter shapes (`keys`) than `config`."""
  current = config_to_dict(config)
  diffs = [f'{k}: saved {_get(saved, k)!r}, now {_get(current, k)!r}' for k in keys
           if _get(saved, k) is not None and _get(saved, k) != _get(current, k)]
  if diffs:
    raise UserError(
        f'{where} holds checkpoints of a different config ({"; ".join(diffs)}); '
        'use another --workdir or the config those checkpoints were trained with.')


class Checkpoints:
  """Save / restore / resume for one training phase."""

  def __init__(self, directory: str, *, keep: int | None = 3, async_save: bool = True,
               shape_keys: tuple[str, ...] = SHAPE_KEYS):
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
      raise UserError(f'keep={keep!r} would delete checkpoints as they are written; keep an integer >= 1 '
                      '(or None: all).')
    self.directory = os.path.abspath(directory)
    self.shape_keys = shape_keys
    os.makedirs(self.directory, exist_ok=True)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=async_save,
        cleanup_tmp_directories=True)
    self._mngr = ocp.CheckpointManager(self.directory, options=options, item_names=('state', 'config'))
    self._saved: set[int] = set()  # steps this object wrote: only those get SIZES_FILE (reads write nothing)
    self._pending: int | None = None  # the step being saved in the background
    self._state_bytes = 0  # the size of the last state given to save (in memory)
    self.failed_step: int | None = None  # the step whose save raised (see `disk_full_message`)

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._mngr.all_steps())

  def save(self, step: int, state: Any, config) -> None:
    """Starts saving `step` (in the background; the previous save is finished first).

    Refused with OSError(ENOSPC) before Orbax starts when the disk has less free space than the newest
    saved step takes (a save that fails midway makes Orbax's threads print pages of tracebacks); a
    failed save names its step in `failed_step`. The steps saved before stay intact either way.
    """
    self.wait()  # Orbax waits here anyway; the finished step gets its sizes
    self._state_bytes = sum(int(getattr(x, 'nbytes', 0)) for x in jax.tree.leaves(state))
    kept = self.finished_steps()
    need = self.step_bytes(kept[-1]) if kept else 0
    free = shutil.disk_usage(self.directory).free
    if need > free:
      self.failed_step = step
      raise OSError(errno.ENOSPC, f'{os.strerror(errno.ENOSPC)} ({_size(free)} free, a checkpoint step takes '
                    f'{_size(need)})')
    self._saved.add(step)
    self._pending = step
    try:
      self._mngr.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config_to_dict(config))), force=True)
    except Exception:
      self.failed_step = step
      raise

  def finished_steps(self) -> list[int]:
    """The steps on disk whose save completed (Orbax renames a step's folder to its number when done)."""
    try:
      return sorted(int(n) for n in os.listdir(self.directory)
                    if n.isdigit() and os.path.isdir(os.path.join(self.directory, n)))
    except OSError:
      return []

  def step_bytes(self, step: int) -> int:
    """The bytes the files of a saved step take."""
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(self._step_dir(step))
               for f in files)

  def disk_full_message(self, reason: str, step: int) -> str:
    """One sentence for a full disk met at training step `step`: what failed, what is kept, what to free."""
    kept = self.finished_steps()
    failed = self.failed_step if self.failed_step is not None else self._pending
    if failed is not None and failed in kept:
      failed = None
    need = self.step_bytes(kept[-1]) if kept else self._state_bytes
    try:
      free = f'{_size(shutil.disk_usage(self.directory).free)} free now'
    except OSError:
      free = 'free space unknown'
    what = (f'checkpoint step {failed} could not be written' if failed is not None else
            f'writing the logs or pictures of step {step} failed')
    saved = (f'step {kept[-1]}, the newest checkpoint in {self.directory}, is saved and intact' if kept else
             f'no checkpoint was saved in {self.directory} yet')
    again = f'resume from step {kept[-1]}' if kept else 'start again'
    return (f'the disk is full ({reason}): {what}; {saved}; free at least {_size(need)} on that disk '
            f'({free}) and run the same command again to {again}.')

  def _step_dir(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def _record_sizes(self) -> None:
    """Writes SIZES_FILE (each file's size and CRC-32) into finished steps that lack it (primary process)."""
    if jax.process_index() != 0:
      return
    for step in sorted(self._saved & set(self.all_steps())):
      d = self._step_dir(step)
      if not os.path.isdir(d) or os.path.exists(os.path.join(d, SIZES_FILE)):
        continue
      sizes = {os.path.relpath(os.path.join(root, f), d): _record(os.path.join(root, f))
               for root, _, files in os.walk(d) for f in files}
      try:
        fileio.write_json(os.path.join(d, SIZES_FILE), sizes)
      except OSError:
        pass  # a read-only checkpoint folder: the sizes only sharpen a later damage report

  def _changed(self, step: int) -> tuple[str, BaseException] | None:
    """(path, error) for the first file of `step` whose size or CRC-32 differs from the one recorded at save.

    Checked before Orbax reads the step: a failed Orbax read leaves TensorStore reads pending,
    which print hundreds of traceback lines from background threads when they are dropped, and a
    changed byte inside an array file is read back without an error (silently other weights).
    Records written before the checksums (a bare size) are checked for size only.
    """
    d = self._step_dir(step)
    sizes = self._read_sizes(step)
    for rel, (size, crc) in (sizes or {}).items():
      path = os.path.join(d, rel)
      if not os.path.exists(path):
        return path, _FileChanged(f'missing; it had {size} bytes when saved')
      if os.path.getsize(path) != size:
        return path, _FileChanged(f'{os.path.getsize(path)} bytes; it had {size} when saved')
      now = None if crc is None else _crc32(path)
      if now != crc:
        return path, _FileChanged(f'its contents changed since it was saved (CRC-32 {now:08x}, was {crc:08x})')
    return None

  def _read_sizes(self, step: int) -> dict[str, tuple[int, int | None]] | None:
    """{file: (bytes, CRC-32 or None)} of a step's SIZES_FILE; None when it has none (an older or read-only
    run) or when the record itself is damaged (cut short, not JSON, not a record of files): the step is
    then unverified, and Orbax's own checks decide, as for a step without a record. No warning: the
    state restored is the one saved whenever Orbax reads it without an error (what
    tests/test_damaged_checkpoints.py asserts for every file of a step, this one included)."""
    path = os.path.join(self._step_dir(step), SIZES_FILE)
    if not os.path.exists(path):
      return None
    try:
      with open(path, encoding='utf-8') as f:
        raw = json.load(f)
      if not isinstance(raw, dict):
        raise ValueError(f'a JSON {type(raw).__name__}, not a record of files')
      sizes = {}
      for rel, saved in raw.items():
        if os.path.isabs(rel) or '..' in rel.split('/') or not rel.strip():
          raise ValueError(f'{rel!r} is not a file of the step')
        if isinstance(saved, dict):
          size, crc = saved.get('bytes'), saved.get('crc32')
        else:
          size, crc = saved, None  # records written before the checksums: a bare size
        if not (_count(size) and (_count(crc) if isinstance(saved, dict) else True)):
          raise ValueError(f'{rel!r} has no valid size and checksum')
        sizes[rel] = (size, crc)
      return sizes
    except (OSError, ValueError):
      return None

  def _culprit(self, step: int, error: BaseException, default: str = '') -> str:
    """The file of a step Orbax failed to read (sizes as recorded): an empty one, or one the error names."""
    d = self._step_dir(step)
    for root, _, files in os.walk(d):
      for f in sorted(files):
        if os.path.getsize(os.path.join(root, f)) == 0:
          return os.path.join(root, f)
    for quoted in re.findall(r'["\']([^"\']+)["\']', str(error)):
      if quoted.startswith(d) and os.path.isfile(quoted):
        return quoted
    return default or f'a file under {d}'

  def _set_aside(self, step: int) -> str:
    """Moves a damaged step out of Orbax's folder (so it can be written again); returns where."""
    dest_root = self.directory.rstrip(os.sep) + '_damaged'
    os.makedirs(dest_root, exist_ok=True)
    dest, k = os.path.join(dest_root, str(step)), 1
    while os.path.exists(dest):
      dest, k = os.path.join(dest_root, f'{step}.{k}'), k + 1
    os.rename(self._step_dir(step), dest)
    self._mngr.reload()
    return dest

  def saved_config(self, step: int | None = None) -> dict | None:
    """The config saved with `step` (Orbax's errors if it is damaged), or by default with the newest step
    whose config file is intact: a damaged one is named on stderr and the next older step is used, and
    none intact is a UserError naming the files. None when there is no checkpoint."""
    if step is not None:
      return self._mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore())).config
    damaged = []
    for s in sorted(self.all_steps(), reverse=True):
      path = os.path.join(self._step_dir(s), 'config', 'metadata')
      changed = self._changed(s)
      if changed is None:
        try:
          saved = self.saved_config(s)
          if not isinstance(saved, dict):
            raise ValueError(f'a JSON {type(saved).__name__}, not a config')
        except Exception as e:  # noqa: BLE001 - Orbax, JSON and TensorStore all raise their own types
          changed = (path, e)
      if changed is None:
        for bad, where, e in damaged:
          print(f'warning: checkpoint step {bad} in {self.directory} is damaged ({where}: {_reason(e)}); using '
                f'the config saved with step {s}, the newest intact one.', file=sys.stderr, flush=True)
        return saved
      damaged.append((s, *changed))
    if not damaged:
      return None
    listed = '; '.join(f'step {s}: {path} ({_reason(e)})' for s, path, e in damaged)
    raise UserError(f'no intact config is saved with the checkpoints in {self.directory} ({listed}); pass the '
                    'config explicitly (the config file the run was trained with).')

  def restore(self, target: Any, config=None, step: int | None = None,
              set_aside_damaged: bool = False) -> tuple[Any, int] | tuple[None, None]:
    """Restores (state, step) of the newest intact (or the given) step onto `target`'s structure.

    `target` is a pytree of arrays or `jax.ShapeDtypeStruct`s (with `.sharding` for multi-device).
    With `config`, first checks that the checkpoint was made with compatible shapes. A damaged
    step is reported on stderr and the next older one is tried; with `set_aside_damaged` (training
    about to write those steps again) damaged steps newer than the one used are moved aside.
    Returns (None, None) when there is no checkpoint; UserError when none is intact.
    """
    steps = sorted(self.all_steps(), reverse=True) if step is None else [step]
    if not steps:
      return None, None
    damaged = []
    abstract = jax.tree.map(_abstract, target)
    for s in steps:
      changed = self._changed(s)
      if changed:
        damaged.append((s, *changed))
        continue
      try:
        saved = self.saved_config(s) if config is not None else None
      except Exception as e:  # noqa: BLE001 - Orbax, JSON and TensorStore all raise their own types
        damaged.append((s, self._culprit(s, e, os.path.join(self._step_dir(s), 'config', 'metadata')), e))
        continue
      if saved is not None:
        check_compatible(saved, config, f'{self.directory}', self.shape_keys)
      try:
        restored = self._mngr.restore(s, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
      except Exception as e:  # noqa: BLE001
        if _MISMATCH.search(str(e)):
          raise UserError(f'the checkpoint at {self.directory} step {s} does not match this config '
                          f'({str(e).splitlines()[0][:200]}); use another --workdir.') from None
        damaged.append((s, self._culprit(s, e), e))
        continue
      for bad, path, e in damaged:
        moved = f' (moved to {self._set_aside(bad)})' if set_aside_damaged else ''
        print(f'warning: checkpoint step {bad} in {self.directory} is damaged ({path}: {_reason(e)}){moved}; '
              f'using step {s}, the newest intact one.', file=sys.stderr, flush=True)
      return restored.state, s
    listed = '; '.join(f'step {s}: {path} ({_reason(e)})' for s, path, e in damaged)
    raise UserError(f'no intact checkpoint in {self.directory} ({listed}); nothing was deleted: restore the '
                    'files from a backup, or move the folder away to train this phase again.')

  def wait(self) -> None:
    """Waits for the background save; an error it met is raised here (its step in `failed_step`)."""
    try:
      self._mngr.wait_until_finished()
    except Exception:
      self.failed_step = self._pending
      raise
    self._pending = None
    self._record_sizes()

  def close(self) -> None:
    try:
      self.wait()
    finally:
      self._mngr.close()

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if exc_type is None:
      self.close()
      return
    with contextlib.suppress(Exception):  # an error is on its way already: it says what went wrong
      self.close()


class _FileChanged(Exception):
  """A checkpoint file whose size or contents differ from those recorded when it was saved."""


def _crc32(path: str) -> int:
  crc = 0
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      crc = zlib.crc32(chunk, crc)
  return crc


def _size(n: float) -> str:
  """'340 bytes', '1.2 MB', ... (powers of 1000, as `df -H`)."""
  if n < 1000:
    return f'{n:.0f} bytes'
  for unit in ('KB', 'MB', 'GB', 'TB'):
    n /= 1000
    if n < 1000 or unit == 'TB':
      return f'{n:.1f} {unit}'


def _count(x) -> bool:
  """A non-negative integer (bool excluded), as a size or a CRC-32 in SIZES_FILE."""
  return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _record(path: str) -> dict:
  return {'bytes': os.path.getsize(path), 'crc32': _crc32(path)}


def _reason(e: BaseException) -> str:
  text = ' '.join(str(e).split())
  if isinstance(e, _FileChanged):
    return text
  return (f'{type(e).__name__}: {text}' if text else type(e).__name__)[:120]


def _abstract(x):
  if isinstance(x, jax.ShapeDtypeStruct):
    return x
  sharding = getattr(x, 'sharding', None)
  if sharding is None:
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
