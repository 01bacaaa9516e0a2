"""The exceptions users see: a clear sentence, no JAX traceback."""


class UserError(Exception):
  """Bad input, config or files. The CLIs print the message and exit with status 2."""


class Interrupted(KeyboardInterrupt):
  """Ctrl-C, after the work done so far was saved; the message says what was kept. Exit status 130."""
