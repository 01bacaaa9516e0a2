"""The larger-budget evaluation: configs/mnist_aug_code64.py solved with 500 Adam steps.

8x the steps of the main table (results/mnist), with the prior weights re-tuned for this budget on
48 validation images (results/mnist/variants/lambda_sweep_code64_steps500_val48.json: lam in
0.01 / 0.1 / 1 on five tasks; best mean PSNR: lam_ge 0.1, lam_gan 0.01). CSGM uses GAN-only's lam.
Same checkpoints as configs/mnist_aug_code64.py (workdir runs/mnist_aug_code64).
"""

from configs import mnist_aug_code64


def get_config():
  c = mnist_aug_code64.get_config()
  c.note = 'augmented AE with a 64-d code; 500 steps, 1 restart, best of 16; lam_ge 0.1, lam_gan = lam_csgm 0.01'
  c.solve.steps = 500
  c.solve.restarts = 1
  c.solve.n_init = 16
  c.solve.lam_ge = 0.1
  c.solve.lam_gan = 0.01
  c.solve.lam_csgm = 0.01
  return c
