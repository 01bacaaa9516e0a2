"""MNIST solver variant: 2 restarts instead of 1 (twice the solver cost of the evaluation budget).

Used on top of the evaluation budget (docs/EVALUATION.md): same checkpoints as configs/mnist.py.
"""

from configs import mnist


def get_config():
  c = mnist.get_config()
  c.note = '2 restarts instead of 1 (twice the solver cost of the evaluation budget)'
  c.solve.restarts = 2
  return c
