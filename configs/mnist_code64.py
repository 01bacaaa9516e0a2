"""MNIST with a 64-d AE code (default 32): a less underdetermined GE objective.

Reuses the GAN of configs/mnist.py: copy its gan/ folder into the new workdir first.
"""

from configs import mnist


def get_config():
  c = mnist.get_config()
  c.name = 'mnist_code64'
  c.note = 'AE code_dim 64 instead of 32'
  c.ae.code_dim = 64
  return c
