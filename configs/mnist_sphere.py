"""Tuning variant at the evaluation budget (mnist.eval_budget) on configs/mnist.py's networks:
prior sphere (PULSE projection) instead of the L2 penalty. Workdir runs/mnist.
"""

from configs import mnist


def get_config():
  c = mnist.eval_budget(mnist.get_config())
  c.note = 'prior sphere (PULSE projection) instead of the L2 penalty'
  c.solve.prior = 'sphere'
  c.eval.outdir = 'results/mnist/variants/sphere'
  return c
