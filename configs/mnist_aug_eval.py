"""The reported evaluation: configs/mnist_aug.py's networks at the evaluation budget -> results/mnist.

  python -m ge_jax.evaluate --config=configs/mnist_aug_eval.py --n=200    # checkpoints in runs/mnist_aug

11 tasks x every method on 200 test images (the other two settings' N: an FD depends on N, so the
three tables compare only at the same N), 60 Adam steps x 1 restart, best of 16 starts
(mnist.reported_eval), the lambda sweep of results/mnist/lambda_sweep.png and the shift suite.
"""

from configs import mnist, mnist_aug


def get_config():
  return mnist.reported_eval(mnist_aug.get_config(), 'results/mnist')
