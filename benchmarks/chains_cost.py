"""What K Langevin chains per image cost against one, on this machine (issue 30's cost target).

  python benchmarks/chains_cost.py [--config=configs/mnist.py] [--n=16] [--chains=1,4,16,64] [--out=...]

GE sample's chain (configs/mnist.py's config.solve.ge_sample: steps, n_init; output 'mean', whose
per-pixel spread the chains give) on n codes of random images, through `solver.solve_all` as a run
uses it, in one process per K (peak memory is that process's). Networks at their initial
parameters: the cost does not depend on the weights. Reports the best of 3 timed calls after a
warm-up, images/s, chains x images/s, the time relative to K = 1 (the target: K chains at most K
times one chain's time) and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import _common  # noqa: E402


def one(config_path: str, n: int, k: int) -> dict:
  import jax
  import numpy as np
  from ge_jax import load, methods, models, solver
  config = load.config_file(config_path)
  config.solve.ge_sample.restarts, config.solve.ge_sample.output = k, 'mean' if k > 1 else 'best'
  nets = models.Nets(config)
  params = models.init_params(config, jax.random.key(0))
  m = methods.BY_NAME['ge_sample']
  s = m.settings(config, methods.Task('denoise'))
  x = np.asarray(jax.random.uniform(jax.random.key(1), (n,) + nets.image_shape, minval=-1, maxval=1))
  codes = solver.encode_all(nets, params, x, n)
  run = lambda: solver.solve_all(nets, s.spec, params, codes, jax.random.key(2), lr=s.lr, lam=s.lam,
                                 batch_size=n, progress=False).x
  secs = _common.best_time(run, reps=3)
  return dict(chains=k, n_images=n, steps=s.spec.steps, seconds=secs, images_per_s=n / secs,
              chain_images_per_s=n * k / secs, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _write(path: str, config: str, rows: list) -> None:
  base = next((r for r in rows if r['chains'] == 1), rows[0])
  for r in rows:
    r['time_vs_one_chain'] = r['seconds'] / base['seconds']
    r['within_k_times_one'] = r['time_vs_one_chain'] <= r['chains'] / base['chains']
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(dict(machine=_common.machine(), config=config, rows=rows), f, indent=1)


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--config', default='configs/mnist.py')
  p.add_argument('--n', type=int, default=16)
  p.add_argument('--chains', default='1,4,16,64')
  p.add_argument('--out', default=os.path.join(_common.ROOT, 'benchmarks', 'results', 'chains_cost.json'))
  p.add_argument('--one', type=int, default=None, help=argparse.SUPPRESS)
  a = p.parse_args()
  if a.one is not None:
    print(json.dumps(one(a.config, a.n, a.one)))
    return
  rows = []
  for k in (int(v) for v in a.chains.split(',')):
    proc = subprocess.run([sys.executable, __file__, f'--config={a.config}', f'--n={a.n}', f'--one={k}'],
                          cwd=_common.ROOT, capture_output=True, text=True, check=True)
    rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f'K={k}: {rows[-1]["seconds"]:.2f} s', flush=True)
    _write(a.out, a.config, rows)  # after each K: a cut-short run keeps what it measured
  _write(a.out, a.config, rows)
  for r in rows:
    print(f'K={r["chains"]:3d}: {r["seconds"]:.2f} s for {r["n_images"]} images ({r["images_per_s"]:.1f} img/s, '
          f'{r["chain_images_per_s"]:.0f} chain-img/s), {r["time_vs_one_chain"]:.2f}x one chain, '
          f'peak RSS {r["peak_rss_mb"]:.0f} MB')
  print(f'wrote {a.out}')


if __name__ == '__main__':
  main()
