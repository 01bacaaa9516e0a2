"""Tuning variant of the evaluation (configs/mnist_aug_eval.py): GE returns the mean of G over 4 restarts.

PSNR rewards the mean of the solution set; averaging the restarts estimates it. Same checkpoints
as configs/mnist_aug.py (workdir runs/mnist_aug).
"""

from configs import mnist_aug_eval


def get_config():
  c = mnist_aug_eval.get_config()
  c.note = 'mnist_aug, table budget (60 steps), GE output = mean of G over 4 restarts'
  c.solve.restarts = 4
  c.solve.output = 'mean'
  c.eval.outdir = 'results/mnist/variants/aug_mean_of_4'
  return c
