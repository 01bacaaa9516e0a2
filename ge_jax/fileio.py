"""Atomic file writes: a reader (or a crash) never sees a half-written result file.

Every writer goes through `atomic_path`: write to a temporary sibling, then `os.replace`, which is
atomic on POSIX filesystems. The temporary name keeps the extension, so writers that pick a format
from it (PIL, numpy) still work.

A full disk: `disk_full` recognises it in any library's error (an OSError, or TensorStore's words for
it inside Orbax's), and `QuietBackgroundDiskFull` keeps the libraries' background threads from printing
pages of tracebacks about it, so that the one error of the main thread says it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import sys
import threading
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
  with atomic_path(path) as tmp, open(tmp, 'w', encoding='utf-8') as f:
    f.write(text)
  return path


def write_bytes(path: str, data: bytes) -> str:
  with atomic_path(path) as tmp, open(tmp, 'wb') as f:
    f.write(data)
  return path


def write_json(path: str, obj: Any, indent: int = 1) -> str:
  return write_text(path, json.dumps(obj, indent=indent) + '\n')


def read_record(path: str, key: str, what: str) -> dict | None:
  """A small JSON record this project wrote (a dict holding `key`), or None when there is none;
  ValueError (a short reason) when it is unreadable or not such a record."""
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding='utf-8') as f:
      rec = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f'{type(e).__name__}: {" ".join(str(e).split())[:80]}') from None
  if not isinstance(rec, dict) or key not in rec:
    raise ValueError(f'not {what} of ge_jax')
  return rec


def save_npz(path: str, **arrays) -> str:
  """np.savez_compressed, atomically (`path` should end in .npz)."""
  with atomic_path(path) as tmp:
    np.savez_compressed(tmp, **arrays)
  return path


# errno values of a full disk or quota, and TensorStore's words for them (its errors are ValueErrors).
_DISK_FULL = {errno.ENOSPC: os.strerror(errno.ENOSPC), errno.EDQUOT: os.strerror(errno.EDQUOT)}
_DISK_FULL_TEXT = re.compile(r"No space left on device|Disk quota exceeded|os_error_code='(28|122)'")


def disk_full(e: BaseException | None) -> str | None:
  """The system's words for it ('No space left on device') when `e`, or an error it carries (its cause,
  context or arguments), is a full disk or quota; else None."""
  stack, seen = [e], set()
  while stack:
    x = stack.pop()
    if x is None or id(x) in seen:
      continue
    seen.add(id(x))
    if isinstance(x, OSError) and x.errno in _DISK_FULL:
      return _DISK_FULL[x.errno]
    m = _DISK_FULL_TEXT.search(str(x))
    if m:
      return _DISK_FULL[errno.EDQUOT] if 'quota' in m.group(0) or '122' in m.group(0) else _DISK_FULL[errno.ENOSPC]
    stack += [x.__cause__, x.__context__, *(a for a in getattr(x, 'args', ()) if isinstance(a, BaseException))]
  return None


class QuietBackgroundDiskFull(contextlib.AbstractContextManager):
  """While active, a full disk met in a background thread is kept, not printed.

  Orbax saves in background threads: on a full disk they print the error with its traceback (thread
  exceptions, absl ERROR records), and TensorStore's pending writes then print tracebacks of a closed
  event loop, hundreds of lines in all before the main thread gets the error. Here those are
  silenced (only these: other errors print as usual), and `check()` raises a full disk met by a thread
  whose error never reaches the main thread otherwise (TensorBoard's event writer).
  """

  def __init__(self):
    self.error: BaseException | None = None  # for `check`
    self.seen = False  # a full disk was met: Orbax's records that follow are its consequences

  def _hide(self, e) -> bool:
    if disk_full(e):
      self.error, self.seen = self.error or e, True
      return True
    return False

  def __enter__(self):
    self._thread_hook, self._unraisable_hook = threading.excepthook, sys.unraisablehook

    def thread_hook(args):
      if not self._hide(args.exc_value):
        self._thread_hook(args)

    def unraisable_hook(u):
      loop_closed = isinstance(u.exc_value, RuntimeError) and 'Event loop is closed' in str(u.exc_value)
      if not (loop_closed or self._hide(u.exc_value)):
        self._unraisable_hook(u)

    threading.excepthook, sys.unraisablehook = thread_hook, unraisable_hook
    self._logger = logging.getLogger('absl')
    self._logger.addFilter(self._filter)
    return self

  def _filter(self, record: logging.LogRecord) -> bool:
    """Orbax's records of a full disk, and its warnings and errors after one, are dropped."""
    if record.levelno < logging.WARNING or 'orbax' not in (record.pathname or ''):
      return True
    if record.exc_info and self._hide(record.exc_info[1]):
      return False
    if _DISK_FULL_TEXT.search(record.getMessage()):
      self._hide(OSError(errno.ENOSPC, _DISK_FULL[errno.ENOSPC]))
      return False
    return not self.seen

  def check(self) -> None:
    """Raises the full disk a background thread met (once)."""
    if self.error is not None:
      e, self.error = self.error, None
      raise OSError(errno.ENOSPC, disk_full(e) or _DISK_FULL[errno.ENOSPC]) from e

  def __exit__(self, *exc):
    threading.excepthook, sys.unraisablehook = self._thread_hook, self._unraisable_hook
    self._logger.removeFilter(self._filter)
    return False
