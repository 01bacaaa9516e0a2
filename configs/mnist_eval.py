"""The paper's setting at the evaluation budget: configs/mnist.py's networks (an AE trained on real
images and samples of G only, no corruption augmentation) -> results/mnist_paper.

  python -m ge_jax.evaluate --config=configs/mnist_eval.py     # checkpoints in runs/mnist
"""

from configs import mnist


def get_config():
  return mnist.reported_eval(mnist.get_config(), 'results/mnist_paper')
