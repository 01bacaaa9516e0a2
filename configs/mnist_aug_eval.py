"""The reported evaluation: configs/mnist_aug.py's networks at the evaluation budget -> results/mnist.

  python -m ge_jax.evaluate --config=configs/mnist_aug_eval.py     # checkpoints in runs/mnist_aug

11 tasks x 4 methods on the 500 test images, 60 Adam steps x 1 restart, best of 16 starts
(mnist.eval_budget), and the lambda sweep of results/mnist/lambda_sweep.png.
"""

from configs import mnist, mnist_aug


def get_config():
  c = mnist.eval_budget(mnist_aug.get_config())
  c.eval.outdir = 'results/mnist'
  c.eval.shift_tasks = ('denoise-0.3', 'inpaint-center')  # the shift suite: 7 shifts x these tasks
  c.eval.shift_n = 100
  return c
