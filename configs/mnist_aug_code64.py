"""MNIST, corruption-augmented AE (configs/mnist_aug.py) with a 64-d code instead of 32.

A 64-d code matches z's 64 dimensions, so E(G(z)) = m pins z down more than a 32-d code does
(docs/EVALUATION.md, tuning section 5).
Reuses the GAN of configs/mnist.py: copy its gan/ folder into the new workdir first.
"""

from configs import mnist_aug


def get_config():
  c = mnist_aug.get_config()
  c.name = 'mnist_aug_code64'
  c.note = 'augmented AE (mnist_aug) with code_dim 64 instead of 32'
  c.ae.code_dim = 64
  return c
