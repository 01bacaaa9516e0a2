"""MNIST solver variant: per-method lam unset: lam 1e-3 for every method (the old default).

Used on top of the evaluation budget (docs/EVALUATION.md): same checkpoints as configs/mnist.py.
"""

from configs import mnist


def get_config():
  c = mnist.get_config()
  c.note = 'per-method lam unset: lam 1e-3 for every method (the old default)'
  for m in ('gan', 'ge', 'csgm'):
    c.solve[f'lam_{m}'] = None
  return c
