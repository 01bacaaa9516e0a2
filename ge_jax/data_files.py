"""The file sources: folders of image files (``folder``) and ``.npz`` arrays (``npz``)."""

from __future__ import annotations

import concurrent.futures
import os
import zlib

import numpy as np
from PIL import Image

from ge_jax.batching import is_int
from ge_jax.data_convert import RANGE_TOL, channel_kind, to_model_range
from ge_jax.data_split import SPLIT_SEED, Dataset, check_sizes, split_dataset, split_groups
from ge_jax.errors import UserError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
CROPS = ('center', 'random')


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
    if not np.isfinite(a).all() or a.min() < -RANGE_TOL or a.max() > 1 + RANGE_TOL:
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


def folder_dataset(data_cfg) -> Dataset:
  """config.data.source=folder: ``_folder_images`` split by file (random crops) or by image."""
  path = data_cfg.path
  crop = data_cfg.get('crop', 'center')
  images, groups = _folder_images(path, image_size=int(data_cfg.image_size),
                                  channels=int(data_cfg.channels), resize=bool(data_cfg.resize),
                                  crop=crop, crops=data_cfg.get('crops_per_image', 1))
  what = f'image folder {path}'
  reason = f'config.data.source=folder: {len(images)} images from {path}'
  if crop == 'center':
    return split_dataset(images, None, data_cfg, f'folder:{path}', reason + '.', what)
  test_size, val_size = check_sizes(data_cfg)
  train, val, test = split_groups(groups, test_size, val_size, what)
  return Dataset(train=images[train], val=images[val], test=images[test], train_labels=None,
                 val_labels=None, test_labels=None, source=f'folder:{path}',
                 reason=(f'{reason} ({len(np.unique(groups))} files x '
                         f'{len(images) // len(np.unique(groups))} random crops; each file\'s '
                         'crops in one split).'))


def npz_dataset(data_cfg) -> Dataset:
  """config.data.source=npz: ``load_npz`` split by ``split_dataset``."""
  images, labels = load_npz(data_cfg.path,
                            image_size=int(data_cfg.image_size),
                            channels=int(data_cfg.channels),
                            value_range=data_cfg.value_range)
  return split_dataset(images, labels, data_cfg, f'npz:{data_cfg.path}',
                       f'config.data.source=npz: {len(images)} images from '
                       f'{data_cfg.path}.', f'.npz file {data_cfg.path}')


def list_images(path: str) -> list[str]:
  """The image files under `path` in the order `load_folder` reads them, relative to `path`."""
  return [os.path.relpath(f, path) for f in _list_images(path)]


def write_like(source: str, image: np.ndarray, dest: str) -> None:
  """Writes `image` ((H, W, C) in [-1, 1]) to `dest` in the format, channel count and bit depth of
  the file `source`: 8-bit stays 8-bit, a 16-bit slice stays 16-bit, a float TIFF stays float.
  (A JPEG source is written as JPEG at quality 95: lossy, as the source was.)"""
  with Image.open(source) as im:
    mode, fmt = im.mode, im.format
  unit = np.clip((np.asarray(image, np.float64) + 1.0) / 2.0, 0.0, 1.0)
  unit = unit[..., 0] if unit.shape[-1] == 1 else unit
  if mode.startswith('I'):
    out = Image.fromarray(np.round(unit * 65535).astype(np.uint16))
  elif mode == 'F':
    out = Image.fromarray(unit.astype(np.float32), mode='F')
  else:  # 8-bit grayscale or colour (palette, alpha and other colour modes were read as RGB)
    out = Image.fromarray(np.round(unit * 255).astype(np.uint8))
  os.makedirs(os.path.dirname(dest) or '.', exist_ok=True)
  out.save(dest, format=fmt, **({'quality': 95} if fmt == 'JPEG' else {}))
