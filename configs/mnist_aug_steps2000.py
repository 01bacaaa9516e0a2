"""Solver variant on configs/mnist_aug.py: the budget of a GPU run, 2000 Adam steps, lam_ge 0.01.

With 33x the table's steps the prior can be weak without GE stopping early. Same checkpoints as
configs/mnist_aug.py (workdir runs/mnist_aug).
"""

from configs import mnist_aug


def steps2000(c):
  c.solve.steps = 2000
  c.solve.restarts = 1
  c.solve.lam_ge = 0.01
  return c


def get_config():
  c = steps2000(mnist_aug.get_config())
  c.note = 'mnist_aug, 2000 steps, 1 restart, lam_ge 0.01 (lam_gan 0.1)'
  return c
