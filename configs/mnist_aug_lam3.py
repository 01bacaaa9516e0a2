"""Tuning variant of the evaluation (configs/mnist_aug_eval.py): a stronger GE prior, lam_ge 3 (the PSNR-tuned value was 1)."""

from configs import mnist_aug_eval


def get_config():
  c = mnist_aug_eval.get_config()
  c.note = 'augmented AE, lam_ge 3 instead of 1'
  c.solve.lam_ge = 3.0
  c.eval.outdir = 'results/mnist/variants/aug_lam3'
  return c
