"""How far each corruption moves the encoder's code: the scale GE's prior weights are set against.

  python scripts/code_errors.py --config=configs/rock64.py --workdir=runs/rock64 --n=200

GE compares codes, E(G(z)) against E(y), so how far a corruption moves the code, E(P(x)) - E(x),
sets its prior weights: ge_sample's lam is the variance of a code value's error (configs/mnist.py),
and lam_ge weighs ||z||^2 against the summed squared error. Prior weights tuned on one dataset do
not carry over to another's encoder; this prints, per task, on validation images only (tuning):

  err/value   mean squared code error per code value (ge_sample's lam at its calibrated reading)
  bias share  share of it that is the mean error (a shift every image shares)
  top-3 share share of the error energy in its 3 largest principal directions (3/code_dim if isotropic)
  vs G        err/value over the per-value variance of E(G(z)), z ~ N(0, I): 1 means the corruption
              moves a code as far as one G sample's code is from another's

and the config's weights beside them. Compression is left out (the solver is given E(x) itself).
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def code_errors(nets, params, images: np.ndarray, corrupted: dict, g_codes: np.ndarray) -> dict:
  """{task: statistics} of E(y) - E(x) per task; `corrupted` maps task -> y (same rows as images)."""
  from ge_jax import models
  encode = lambda x: np.asarray(models.apply_batched(nets.E, params['autoencoder'], x, 250), np.float64)
  clean = encode(images)
  g_var = float(np.mean(np.var(g_codes, axis=0)))
  out = {}
  for task, y in corrupted.items():
    e = encode(y) - clean
    mse = float(np.mean(e * e))
    bias = float(np.mean(e.mean(0) ** 2))
    energy = np.linalg.eigvalsh(e.T @ e / len(e))[::-1]
    out[task] = dict(err_per_value=mse, bias_share=bias / mse if mse else 0.0,
                     top3_share=float(energy[:3].sum() / energy.sum()) if energy.sum() else 0.0,
                     vs_G=mse / g_var if g_var else float('inf'))
  return out


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--config', required=True)
  ap.add_argument('--workdir', required=True)
  ap.add_argument('--n', type=int, default=200, help='validation images (default 200)')
  ap.add_argument('--tasks', default='', help='comma-separated evaluation tasks (default: all but compress)')
  ap.add_argument('--json', default='', help='also write the statistics to this file')
  args = ap.parse_args()
  import jax
  from ge_jax import api, data, load, models, operators, tasks
  from ge_jax.errors import UserError
  try:
    c = load.config_file(args.config)
    names = [t for t in args.tasks.split(',') if t] or [t for t in tasks.EVAL_TASKS if t != 'compress']
    unknown = sorted(set(names) - set(tasks.EVAL_TASKS))
    if unknown:
      raise UserError(f'unknown task(s) {", ".join(unknown)}; choose from {", ".join(tasks.EVAL_TASKS)}.')
    if args.n < 4:
      raise UserError(f'--n={args.n}: at least 4 validation images are needed.')
    model = api.load(args.workdir, c)
    ds = data.load(c.data)
    if len(ds.val) < 4:
      raise UserError(f'the validation split has {len(ds.val)} images; set config.data.val_size >= 4.')
    x = ds.val[:args.n]
    corrupted = {}
    for name in names:
      tc, op_name = tasks.task_config(c, name)
      op = operators.make(op_name, tc.ops, x.shape[1:])
      if op.code_only:
        continue
      corrupted[name] = operators.corrupt_images(op, jax.random.key(0), x)[0]
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  nets = models.Nets(c)
  z = np.asarray(jax.random.normal(jax.random.key(1), (max(len(x), 64), nets.latent_dim)))
  g_codes = np.asarray(models.apply_batched(
      nets.E, model.params['autoencoder'],
      np.asarray(models.apply_batched(nets.G, model.params['generator'], z, 250)), 250))
  stats = code_errors(nets, model.params, x, corrupted, g_codes)
  print(f'code errors E(P(x)) - E(x) on {len(x)} validation images, code_dim {g_codes.shape[1]}:')
  print(f'{"task":18s} {"err/value":>10s} {"bias share":>11s} {"top-3 share":>12s} {"vs G":>6s}')
  for task, s in stats.items():
    print(f'{task:18s} {s["err_per_value"]:10.3f} {s["bias_share"]:11.2f} {s["top3_share"]:12.2f} {s["vs_G"]:6.2f}')
  print(f'config: ge_sample lam {c.solve.ge_sample.lam:g} (compare with err/value), lam_ge {c.solve.lam_ge:g}; '
        f'isotropic top-3 share {3 / g_codes.shape[1]:.2f}')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(dict(n=len(x), code_dim=int(g_codes.shape[1]), tasks=stats), f, indent=2)
    print(f'wrote {args.json}')


if __name__ == '__main__':
  main()
