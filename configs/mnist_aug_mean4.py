"""Solver variant on configs/mnist_aug.py: GE returns the mean of G over 4 restarts' results.

PSNR rewards the mean of the solution set; averaging the restarts estimates it. Same checkpoints
as configs/mnist_aug.py (workdir runs/mnist_aug). Evaluated at the table's 60 steps.
"""

from configs import mnist_aug


def get_config():
  c = mnist_aug.get_config()
  c.note = 'mnist_aug, table budget (60 steps), GE output = mean of G over 4 restarts'
  c.solve.steps = 60
  c.solve.restarts = 4
  c.solve.output = 'mean'
  return c
