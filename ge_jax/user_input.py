"""A user's own images for solve.py --input: an image folder or an .npz, read as what they are.

An .npz array `corrupted` is the observation: it is restored as it is (task 'none'), and scored
against an array `clean` when there is one. Clean images to corrupt with a task come as `clean`
alone, or as an image folder. Nothing is guessed: anything else is one sentence.
"""

from __future__ import annotations

import os

import numpy as np

from ge_jax import data_convert, data_files
from ge_jax.errors import UserError


def load(path: str, config, task: str, workdir: str = '') -> tuple[np.ndarray | None, np.ndarray | None]:
  """(clean or None, corrupted or None), float32 NHWC in [-1, 1], for restoring with `task`."""
  d = config.data
  kw = dict(image_size=d.image_size, channels=d.channels)
  if os.path.isdir(path):
    # Never resized: resampling a corrupted image changes the corruption to be undone.
    expect = (f'the model in {workdir or "the workdir"} (config {config.name}) takes {d.image_size}x{d.image_size} '
              f'{data_convert.channel_kind(d.channels)} images; crop or convert them to that first (solve.py does '
              'not resample its input)')
    images = data_files.load_folder(path, resize=False, expect=expect, **kw)
    unit = (images + 1.0) / 2.0
    if unit.size and unit.max() <= 1.5 / 255:  # 8-bit files holding 0 and 1: a mask saved unscaled
      raise UserError(f'--input {path!r}: every pixel of every image is at most 1 on the 0..255 scale (a 0/1 mask '
                      'saved unscaled?); multiply the images by 255 first.')
    check_plausible(unit, f'--input {path!r}')
    return (None, images) if task == 'none' else (images, None)
  if os.path.exists(path) and not os.path.isfile(path):
    raise UserError(f'--input {path!r} is neither a file nor a folder; give an .npz file or an image folder.')
  if not os.path.isfile(path):
    raise UserError(f'--input {path!r} does not exist; give an .npz file or an image folder.')
  if os.path.splitext(path)[1].lower() in data_files.IMAGE_EXTENSIONS:
    raise UserError(f'--input {path!r} is one image file; put it (and any others) in a folder and pass the folder.')
  try:
    with np.load(path) as f:
      arrays = {k: f[k] for k in f.files}
  except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
    raise UserError(f'--input {path!r} is not a readable .npz file ({type(e).__name__}).') from None
  if 'corrupted' not in arrays and 'clean' not in arrays:
    raise UserError(f"--input {path!r} has arrays {sorted(arrays)}; it needs 'corrupted' (and optionally 'clean').")
  if task != 'none' and 'corrupted' in arrays:
    raise UserError(f"--input {path!r} has a 'corrupted' array, the observation: it is restored as it is with "
                    f"--task=none (the default with --input), scored against 'clean' where given; --task={task} "
                    "corrupts clean images, so give those as an array 'clean' alone.")
  if task == 'none' and 'corrupted' not in arrays:
    raise UserError(f"--task=none takes the input as already corrupted, but {path!r} has only a 'clean' array; "
                    "name it 'corrupted', or pick a --task to corrupt it.")
  conv = lambda k: (data_convert.to_model_range(arrays[k], value_range=d.value_range, what=f"--input '{k}' array",
                                                **kw) if k in arrays else None)
  clean, corrupted = conv('clean'), conv('corrupted')
  for k in ('clean', 'corrupted'):  # after the shape and range checks, which say more
    if k in arrays:
      check_plausible(arrays[k], f"--input {path!r} array '{k}'")
  if clean is not None and corrupted is not None and clean.shape != corrupted.shape:
    raise UserError(f"--input 'clean' {clean.shape} and 'corrupted' {corrupted.shape} differ in shape.")
  return clean, corrupted


def check_plausible(a, what: str) -> None:
  """Inputs that convert fine but are almost surely a mistake (the result would be meaningless):
  uint8 holding only 0 and 1 (a mask saved without scaling), or every image one constant value."""
  a = np.asarray(a)
  if a.dtype == np.uint8 and a.size and a.max() <= 1:
    raise UserError(f'{what} is uint8 holding only 0 and 1, which reads as almost black on the 0..255 scale; '
                    'multiply it by 255, or save it as float in [0, 1].')
  if np.issubdtype(a.dtype, np.number) and a.size and a.ndim >= 3:
    flat = a.reshape(len(a), -1)
    if np.all(flat.max(axis=1) == flat.min(axis=1)):
      raise UserError(f'{what}: every image is one constant value ({flat.flat[0]!r}); there is nothing to restore.')
