"""Tuning variant at the evaluation budget (mnist.eval_budget) on configs/mnist.py's networks:
2 restarts instead of 1 (twice the solver cost). Workdir runs/mnist.
"""

from configs import mnist


def get_config():
  c = mnist.eval_budget(mnist.get_config())
  c.note = '2 restarts instead of 1 (twice the solver cost of the evaluation budget)'
  c.solve.restarts = 2
  c.eval.outdir = 'results/mnist/variants/restarts2'
  return c
