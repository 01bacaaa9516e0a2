"""The TFDS source: whether TensorFlow Datasets can serve the data now (decided in seconds), and
reading it.

Prepared ArrayRecord data is read with ``tfds.data_source`` (no TensorFlow needed). Unprepared data
is downloaded only when TensorFlow is installed and the download host answers within
``REACH_TIMEOUT_S``; otherwise ``TfdsUnavailable`` says why. CelebA is cropped and resized on the
way in (``TFDS_PREPROCESS``); other datasets are used as stored.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
from typing import Any, Callable

import numpy as np
from PIL import Image

from ge_jax.data_convert import to_model_range
from ge_jax.data_split import SPLIT_SEED, Dataset, check_sizes, take_labels
from ge_jax.errors import UserError

REACH_TIMEOUT_S = 3.0
# Host that TFDS downloads each dataset from (default: Google Cloud Storage).
_DOWNLOAD_HOSTS = {'celeb_a': 'drive.google.com'}
_DEFAULT_HOST = 'storage.googleapis.com'


class TfdsUnavailable(Exception):
  """TFDS cannot serve the data now; the message is the reason."""


# CelebA crops, (centre x, centre y, half side) in the 178x218 aligned images:
#   'ge'    the original GE code's 128x128 box around (89, 121) (the paper's faces);
#   'dcgan' the 108x108 centre crop most 64x64 GAN work uses (DCGAN, WGAN-GP, BEGAN code).
CELEB_A_CROPS = {'ge': (89, 121, 64), 'dcgan': (89, 109, 54)}


def _celeb_a_preprocess(images: np.ndarray, image_size: int, crop: str = 'ge') -> np.ndarray:
  """CelebA: one of CELEB_A_CROPS, resized (Lanczos) to image_size."""
  if crop not in CELEB_A_CROPS:
    raise UserError(f'config.data.celeb_a_crop={crop!r} is not one of {tuple(CELEB_A_CROPS)}.')
  cx, cy, half = CELEB_A_CROPS[crop]
  box = images[:, cy - half:cy + half, cx - half:cx + half]
  if image_size == 2 * half:
    return box
  return np.stack([
      np.asarray(Image.fromarray(im).resize((image_size, image_size),
                                            Image.Resampling.LANCZOS))
      for im in box
  ])


# Per-dataset hook: (uint8 NHWC chunk, image_size, config.data) -> uint8 NHWC chunk.
# Datasets without a hook are used as stored (a size mismatch is an error).
TFDS_PREPROCESS: dict[str, Callable[..., np.ndarray]] = {
    'celeb_a': lambda x, size, data_cfg=None: _celeb_a_preprocess(
        x, size, 'ge' if data_cfg is None else data_cfg.get('celeb_a_crop', 'ge')),
}


def _tf_available() -> bool:
  return importlib.util.find_spec('tensorflow') is not None


def _host_reachable(host: str, port: int = 443,
                    timeout: float = REACH_TIMEOUT_S) -> bool:
  """True when a TCP connection to host:port opens within ``timeout`` seconds.

  Runs in a daemon thread so that a slow DNS lookup cannot block either.
  """
  result = []

  def attempt():
    try:
      socket.create_connection((host, port), timeout=timeout).close()
      result.append(True)
    except OSError:
      pass

  t = threading.Thread(target=attempt, daemon=True)
  t.start()
  t.join(timeout)
  return bool(result)


def _tfds_status(builder) -> str:
  """'random_access' (readable without TF), 'tfrecord' or 'missing'."""
  if not builder.is_prepared():
    return 'missing'
  # TFDS is imported where it is used: the import takes seconds, and TFDS may be absent.
  from tensorflow_datasets.core import file_adapters  # pylint: disable=g-import-not-at-top
  formats = set(builder.info.available_file_formats())
  if formats & set(file_adapters.FileFormat.with_random_access()):
    return 'random_access'
  return 'tfrecord'


def _tfds_plan(name: str, data_dir: str | None) -> tuple[Any, str, str]:
  """Decides in seconds whether TFDS can serve ``name`` now.

  Returns:
    (builder, status, sentence). ``status`` is that of ``_tfds_status``.

  Raises:
    TfdsUnavailable: TFDS cannot serve the data; the message says why.
    UserError: TFDS has no dataset of that name.
  """
  # TFDS is imported where it is used: the import takes seconds, and TFDS may be absent (a reason to
  # fall back, not an error).
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    from tensorflow_datasets.core import constants  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise TfdsUnavailable(
        f'tensorflow_datasets cannot be imported ({e})') from e
  root = data_dir or constants.DATA_DIR
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise UserError(f'TFDS has no dataset named {name!r} '
                    '(config.data.name); see '
                    'https://www.tensorflow.org/datasets/catalog.') from e
  except Exception as e:
    raise TfdsUnavailable(f'TFDS could not open {name} in {root} '
                           f'({type(e).__name__}: {e})') from e
  status = _tfds_status(builder)
  if status == 'random_access':
    return builder, status, (f'TFDS {name} is prepared in {root} (read with '
                             'tfds.data_source, no TensorFlow needed).')
  has_tf = _tf_available()
  if status == 'tfrecord':
    if has_tf:
      return builder, status, (f'TFDS {name} is prepared in {root} as '
                               'TFRecord (read with TensorFlow).')
    raise TfdsUnavailable(
        f'TFDS {name} is prepared in {root} only as TFRecord, which needs '
        'TensorFlow (not installed) to read')
  if not has_tf:
    raise TfdsUnavailable(
        f'TFDS {name} is not prepared in {root} and TensorFlow is not '
        'installed (needed to download it)')
  host = _DOWNLOAD_HOSTS.get(name, _DEFAULT_HOST)
  if not _host_reachable(host):
    raise TfdsUnavailable(
        f'TFDS {name} is not prepared in {root} and {host} is not reachable '
        f'within {REACH_TIMEOUT_S:g} s (offline?)')
  return builder, status, (f'TFDS {name} was not prepared in {root}, so it '
                           'was downloaded and prepared (ArrayRecord).')


def _read_source(src, chunk: int = 4096):
  """Yields lists of examples from a random-access TFDS data source."""
  n = len(src)
  for start in range(0, n, chunk):
    keys = list(range(start, min(n, start + chunk)))
    try:
      yield src.__getitems__(keys)
    except TypeError:
      # tfds.testing.mock_data's __getitems__ has a broken signature.
      yield [src[k] for k in keys]


def _tfds_split(name: str, data_dir: str | None, split: str, status: str,
                builder, hook) -> tuple[np.ndarray, np.ndarray | None]:
  """One TFDS split as (uint8 NHWC images after ``hook``, labels or None)."""
  # TFDS is imported where it is used: the import takes seconds, and TFDS may be absent.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  images, labels = [], []
  if status == 'random_access':
    src = tfds.data_source(name, split=split, data_dir=data_dir,
                           download=False)
    for examples in _read_source(src):
      images.append(hook(np.stack([e['image'] for e in examples])))
      if 'label' in examples[0]:
        labels.append(np.asarray([e['label'] for e in examples]))
  else:
    ex = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    images.append(hook(np.asarray(ex['image'])))
    if 'label' in ex:
      labels.append(np.asarray(ex['label']))
  lab = np.concatenate(labels).astype(np.int32) if labels else None
  return np.concatenate(images), lab


def _tfds_source(name: str, data_dir: str | None, image_size: int,
                 channels: int, data_cfg=None) -> tuple[np.ndarray, np.ndarray | None,
                                         np.ndarray, np.ndarray | None, str]:
  """Loads TFDS 'train' and 'test' as float32 [-1, 1] (the test seam).

  Returns:
    (train, train_labels, test, test_labels, reason sentence).
  """
  builder, status, reason = _tfds_plan(name, data_dir)
  hook = TFDS_PREPROCESS.get(name)
  if hook is None:
    shape = tuple(builder.info.features['image'].shape)
    want = (image_size, image_size, channels)
    if all(s is not None for s in shape) and shape != want:
      raise UserError(f'TFDS {name} images are {shape[0]}x{shape[1]}x'
                      f'{shape[2]} but the config expects {image_size}x'
                      f'{image_size}x{channels} (config.data.image_size / '
                      'channels); TFDS images are not resized, so change the '
                      'config.')
    hook = lambda x, *_: x
  if status == 'missing':
    try:
      builder.download_and_prepare(file_format='array_record')
    except Exception as e:
      raise TfdsUnavailable(f'preparing TFDS {name} failed '
                             f'({type(e).__name__}: {e})') from e
    status = 'random_access'
  out = []
  for split in ('train', 'test'):
    imgs, labels = _tfds_split(name, data_dir, split, status, builder,
                               lambda x: hook(x, image_size, data_cfg))
    out.append(to_model_range(imgs, image_size=image_size, channels=channels,
                              what=f'TFDS {name} {split} images'))
    out.append(labels)
  return (*out, reason)


def tfds_dataset(data_cfg) -> Dataset:
  """config.data.source=tfds: TFDS 'train' (less ``val_size`` images for val) and 'test'.

  Raises:
    TfdsUnavailable: TFDS cannot serve the data now.
  """
  name = data_cfg.name
  _, val_size = check_sizes(data_cfg)
  train, train_labels, test, test_labels, reason = _tfds_source(
      name, data_cfg.tfds_data_dir, int(data_cfg.image_size),
      int(data_cfg.channels), data_cfg)
  n = len(train)
  if n <= val_size:
    raise UserError(f'TFDS {name} has {n} training images, too few for '
                    f'config.data.val_size={val_size}; lower it.')
  perm = np.random.default_rng(SPLIT_SEED).permutation(n)
  val_idx = np.sort(perm[n - val_size:])
  train_idx = np.sort(perm[:n - val_size])
  return Dataset(train=train[train_idx], val=train[val_idx], test=test,
                 train_labels=take_labels(train_labels, train_idx),
                 val_labels=take_labels(train_labels, val_idx),
                 test_labels=test_labels, source=f'tfds:{name}', reason=reason)
