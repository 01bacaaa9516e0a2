"""Writes a results folder's results.md again from its results.json (after adding variants/ or editing NOTE.md).

  python -m ge_jax.rerender results/mnist
"""

import sys

from ge_jax import cli, report


@cli.exit_on_user_error
def main(argv):
  if len(argv) != 2:
    sys.exit('usage: python -m ge_jax.rerender OUTDIR   (re-renders OUTDIR/results.md from its results.json)')
  print(f'wrote {report.rerender(argv[1])}')


if __name__ == '__main__':
  main(sys.argv)
