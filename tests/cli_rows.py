"""Runs many command lines of one CLI in this one process (flags re-parsed per row), for the bad-input table.

  python tests/cli_rows.py train|solve|evaluate ROWS.json OUT.json WATCHED_DIR

Each row is a list of arguments. For each, records the exit status, stdout/stderr as the CLI
would print them, an uncaught exception's traceback (a failure: CLIs must not show one) and
whether WATCHED_DIR (every file's size and content hash) is unchanged by the row.
"""

import contextlib
import hashlib
import importlib
import io
import json
import os
import sys
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def snapshot(root: str) -> dict:
  out = {}
  for d, dirs, files in os.walk(root):
    dirs.sort()
    out[os.path.relpath(d, root) + '/'] = None
    for f in sorted(files):
      p = os.path.join(d, f)
      with open(p, 'rb') as fh:
        out[os.path.relpath(p, root)] = hashlib.sha1(fh.read()).hexdigest()
  return out


def main() -> None:
  which, rows_path, out_path, watched = sys.argv[1:5]
  os.chdir(ROOT)
  sys.path.insert(0, ROOT)
  from absl import flags
  mod = importlib.import_module('ge_jax.evaluate' if which == 'evaluate' else which)
  from ge_jax import cli
  rows = json.load(open(rows_path))
  results = []
  for args in rows:
    flags.FLAGS.unparse_flags()
    for name in [n for n in flags.FLAGS if n.startswith('config.')]:
      delattr(flags.FLAGS, name)  # config_flags registers one flag per override at each parse
    before = snapshot(watched)
    out, err = io.StringIO(), io.StringIO()
    code, tb = None, ''
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      try:
        sys.argv = [which] + args  # config_flags reads the overrides from sys.argv
        argv = cli.parse_flags(sys.argv)
        mod.main(argv)
        code = 0
      except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
      except BaseException:  # noqa: BLE001 - exactly what the table is looking for
        tb = traceback.format_exc()
        code = 'uncaught'
    after = snapshot(watched)
    changed = sorted(k for k in set(before) | set(after) if before.get(k, 0) != after.get(k, 0))
    results.append(dict(args=args, code=code, stdout=out.getvalue()[-3000:], stderr=err.getvalue()[-3000:],
                        traceback=tb[-3000:], changed=changed[:10]))
  with open(out_path, 'w') as f:
    json.dump(results, f, indent=1)


if __name__ == '__main__':
  main()
