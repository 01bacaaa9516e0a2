"""The paper's setting at the evaluation budget: configs/mnist.py's networks (an AE trained on real
images and samples of G only, no corruption augmentation) -> results/mnist_paper.

  python -m ge_jax.evaluate --config=configs/mnist_eval.py     # checkpoints in runs/mnist
"""

from configs import mnist


def get_config():
  c = mnist.eval_budget(mnist.get_config())
  c.eval.outdir = 'results/mnist_paper'
  c.eval.shift_tasks = ('denoise-0.3', 'inpaint-center')  # the shift suite: 7 shifts x these tasks
  c.eval.shift_n = 100
  return c
