"""The one exception type users see: a clear sentence, no JAX traceback."""


class UserError(Exception):
  """Bad input, config or files. The CLIs print the message and exit with status 2."""
