"""Atomic file writes: a reader (or a crash) never sees a half-written result file.

Every writer goes through `atomic_path`: write to a temporary sibling, then `os.replace`, which is
atomic on POSIX filesystems. The temporary name keeps the extension, so writers that pick a format
from it (PIL, numpy) still work.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
  """Yields a temporary path to write; on success it replaces `path`, on error it is removed."""
  path = os.fspath(path)
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  root, ext = os.path.splitext(os.path.basename(path))
  tmp = os.path.join(parent, f'.{root}.tmp{os.getpid()}{ext}')
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_text(path: str, text: str) -> str:
  with atomic_path(path) as tmp, open(tmp, 'w') as f:
    f.write(text)
  return path


def write_bytes(path: str, data: bytes) -> str:
  with atomic_path(path) as tmp, open(tmp, 'wb') as f:
    f.write(data)
  return path


def write_json(path: str, obj: Any, indent: int = 1) -> str:
  return write_text(path, json.dumps(obj, indent=indent) + '\n')


def save_npz(path: str, **arrays) -> str:
  """np.savez_compressed, atomically (`path` should end in .npz)."""
  with atomic_path(path) as tmp:
    np.savez_compressed(tmp, **arrays)
  return path
