"""Ctrl-C that never loses a finished step: the first one is noted and acted on between steps.

A SIGINT raised as KeyboardInterrupt in the middle of a jitted train step (whose input state is
donated) leaves no valid state to save. Inside `deferred()` the first Ctrl-C only sets a flag that
the loop checks after each completed step; a second Ctrl-C ends the process at once (exit 130)
without running exit handlers, so it cannot print their tracebacks. Atomic checkpoint writes make
that safe: a save cut short is a temporary folder that the next run ignores.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

EXIT_STATUS = 130
_state = dict(requested=False, depth=0, raise_=False)


def _say(text: str) -> None:
  try:
    os.write(2, text.encode())
  except OSError:
    pass


def _handler(signum, frame):
  if _state['requested']:
    _say('\ninterrupted twice: stopped at once; the last completed checkpoint is kept.\n')
    os._exit(EXIT_STATUS)
  _state['requested'] = True
  if _state['depth'] == 0:
    if _state['raise_']:
      raise KeyboardInterrupt
    _say('\ninterrupted: stopped before any work started.\n')  # still loading libraries: nothing to keep
    os._exit(EXIT_STATUS)
  print('\nCtrl-C: finishing the current step and saving it (press Ctrl-C again to stop at once).',
        flush=True)


def _main_thread() -> bool:
  return threading.current_thread() is threading.main_thread()


def install() -> None:
  """The CLIs' Ctrl-C: until `raise_from_now_on()` it ends the process at once (exit 130, one line);
  after it a first Ctrl-C raises KeyboardInterrupt (outside `deferred`), a second one ends the process."""
  if _main_thread():
    signal.signal(signal.SIGINT, _handler)


def raise_from_now_on() -> None:
  """Called when a CLI's main starts: from now on a first Ctrl-C unwinds (closing files) as KeyboardInterrupt."""
  _state['raise_'] = True


def requested() -> bool:
  """True once Ctrl-C was pressed inside `deferred()`: save and raise `errors.Interrupted`."""
  return _state['requested']


@contextlib.contextmanager
def deferred():
  """Inside this block a first Ctrl-C is only recorded (see `requested`); nestable."""
  if not _main_thread():  # signals reach only the main thread; nothing to defer elsewhere
    yield
    return
  previous = signal.getsignal(signal.SIGINT)
  if _state['depth'] == 0:
    _state['requested'] = False
  signal.signal(signal.SIGINT, _handler)
  _state['depth'] += 1
  try:
    yield
  finally:
    _state['depth'] -= 1
    if _state['depth'] == 0:
      signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
