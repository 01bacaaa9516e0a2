"""configs/mnist_aug_code64.py (64-d code) with the solver of configs/mnist_aug_steps2000.py.

Same checkpoints as configs/mnist_aug_code64.py (workdir runs/mnist_aug_code64).
"""

from configs import mnist_aug_code64, mnist_aug_steps2000


def get_config():
  c = mnist_aug_steps2000.steps2000(mnist_aug_code64.get_config())
  c.note = 'mnist_aug with a 64-d code, 2000 steps, 1 restart, lam_ge 0.01 (lam_gan 0.1)'
  return c
