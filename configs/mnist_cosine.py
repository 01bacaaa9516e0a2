"""Tuning variant at the evaluation budget (mnist.eval_budget) on configs/mnist.py's networks:
cosine learning-rate schedule from lr 0.1 (instead of constant 0.05). Workdir runs/mnist.
"""

from configs import mnist


def get_config():
  c = mnist.eval_budget(mnist.get_config())
  c.note = 'cosine learning-rate schedule from lr 0.1 (instead of constant 0.05)'
  c.solve.schedule = 'cosine'
  c.solve.lr = 0.1
  c.eval.outdir = 'results/mnist/variants/cosine'
  return c
