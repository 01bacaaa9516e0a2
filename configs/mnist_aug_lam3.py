"""MNIST, corruption-augmented AE (configs/mnist_aug.py) with a stronger GE prior: lam_ge 3 (default 1)."""

from configs import mnist_aug


def get_config():
  c = mnist_aug.get_config()
  c.note = 'augmented AE, lam_ge 3 instead of 1'
  c.solve.lam_ge = 3.0
  return c
