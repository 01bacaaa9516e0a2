"""Tuning variant at the evaluation budget (mnist.eval_budget) on configs/mnist.py's networks:
one untuned prior weight, lam 1e-3, for every method (the first default). Workdir runs/mnist.
"""

from configs import mnist


def get_config():
  c = mnist.eval_budget(mnist.get_config())
  c.note = 'per-method lam unset: lam 1e-3 for every method (the old default)'
  for m in ('gan', 'ge', 'csgm'):
    c.solve[f'lam_{m}'] = 1e-3
  c.eval.outdir = 'results/mnist/variants/untuned_lam'
  return c
