"""The larger-budget evaluation: configs/mnist_aug_code64.py solved with 500 Adam steps.

  python -m ge_jax.evaluate --config=configs/mnist_aug_code64_steps500.py   # -> results/mnist_steps500

8x the steps of the main table (results/mnist), with the prior weights re-tuned for this budget on
validation images (results/mnist_steps500/NOTE.md). Same checkpoints as configs/mnist_aug_code64.py
(workdir runs/mnist_aug_code64).
"""

from configs import mnist, mnist_aug_code64


def get_config():
  c = mnist.eval_budget(mnist_aug_code64.get_config())
  c.note = 'augmented AE with a 64-d code; 500 steps, 1 restart, best of 16; lam_ge 0.1, lam_gan = lam_csgm 0.01'
  c.solve.steps = 500
  c.solve.lam_ge = 0.1
  c.solve.lam_gan = 0.01
  c.solve.lam_csgm = 0.01
  c.eval.sweep_lams = (0.01, 0.1, 1.0)
  c.eval.outdir = 'results/mnist_steps500'
  return c
