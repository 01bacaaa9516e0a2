"""MNIST solver variant: prior sphere (PULSE projection) instead of the L2 penalty.

Used on top of the evaluation budget (docs/EVALUATION.md): same checkpoints as configs/mnist.py.
"""

from configs import mnist


def get_config():
  c = mnist.get_config()
  c.note = 'prior sphere (PULSE projection) instead of the L2 penalty'
  c.solve.prior = 'sphere'
  return c
