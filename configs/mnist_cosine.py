"""MNIST solver variant: cosine learning-rate schedule from lr 0.1 (instead of constant 0.05).

Used on top of the evaluation budget (docs/EVALUATION.md): same checkpoints as configs/mnist.py.
"""

from configs import mnist


def get_config():
  c = mnist.get_config()
  c.note = 'cosine learning-rate schedule from lr 0.1 (instead of constant 0.05)'
  c.solve.schedule = 'cosine'
  c.solve.lr = 0.1
  return c
