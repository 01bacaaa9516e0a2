"""Ctrl-C that never loses a finished step: the first one is noted and acted on between steps.

A SIGINT raised as KeyboardInterrupt in the middle of a jitted train step (whose input state is
donated) leaves no valid state to save; raised inside an import or a garbage-collection callback it
becomes an ImportError traceback or is silently dropped. So the CLIs' handler (`install`) never
raises: inside `deferred()` (the training loop) the first Ctrl-C only sets a flag that the loop
checks after each completed step, and everywhere else, where everything complete is already on
disk (checkpoints are only written inside the loop), it ends the process at once with exit status
130 and one line, without running exit handlers (which would print their own tracebacks). So does a
second Ctrl-C. Atomic writes make that safe: a write cut short is a temporary file or folder that
the next run ignores.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

EXIT_STATUS = 130
_state = dict(requested=False, depth=0)


def _say(text: str) -> None:
  try:
    os.write(2, text.encode())
  except OSError:
    pass


def _exit_now(text: str) -> None:
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except Exception:  # noqa: BLE001 - e.g. a reentrant flush: losing buffered output is acceptable here
      pass
  _say(text)
  os._exit(EXIT_STATUS)


def _handler(signum, frame):
  if _state['requested']:
    _exit_now('\ninterrupted twice: stopped at once; the checkpoints already complete are kept.\n')
  _state['requested'] = True
  if _state['depth'] == 0:
    _exit_now('\ninterrupted: stopped; what was complete (checkpoints, results) is kept and nothing '
              'half-written is left.\n')
  print('\nCtrl-C: finishing the current step and saving it (press Ctrl-C again to stop at once).',
        flush=True)


def _main_thread() -> bool:
  return threading.current_thread() is threading.main_thread()


def install() -> None:
  """The CLIs' Ctrl-C (see the module docstring); call it first thing, before the heavy imports."""
  if _main_thread():
    signal.signal(signal.SIGINT, _handler)


def requested() -> bool:
  """True once Ctrl-C was pressed inside `deferred()`: save and raise `errors.Interrupted`."""
  return _state['requested']


def reset() -> None:
  """Forgets an earlier Ctrl-C (for a program that goes on after handling `errors.Interrupted`)."""
  _state['requested'] = False


@contextlib.contextmanager
def deferred():
  """Inside this block a first Ctrl-C is only recorded (see `requested`); nestable.

  A Ctrl-C recorded before the block (e.g. by the handler of a caller) is kept: the loop stops at once.
  """
  if not _main_thread():  # signals reach only the main thread; nothing to defer elsewhere
    yield
    return
  previous = signal.getsignal(signal.SIGINT)
  signal.signal(signal.SIGINT, _handler)
  _state['depth'] += 1
  try:
    yield
  finally:
    if _state['depth'] == 1:  # the handler goes first: at depth 0 it would end the process
      signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
    _state['depth'] -= 1
