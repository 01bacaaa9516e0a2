"""MNIST, AE trained with corruption augmentation (every task): Dec(E(P(x))) ~ x (a denoising AE).

Reuses the GAN of configs/mnist.py (same model block): copy <workdir of mnist>/gan into the new
workdir, then `python train.py --config=configs/mnist_aug.py --workdir=...` trains only the AE.
"""

from configs import mnist


def get_config():
  c = mnist.get_config()
  c.name = 'mnist_aug'
  c.note = 'AE trained as a denoising AE on all corruption families: Dec(E(P(x))) ~ x (weight 1)'
  c.ae.augment = 'all'
  # ge_sample keeps configs/mnist.py's lam, by the criterion of results/mnist/NOTE.md
  # (variants/val_sample_lam0.03, val_sample_realest4; its noise clause: docs/FIDELITY.md, section 6).
  # GE+pixels keeps the lam 0.1 it was tuned with; its pixel_var and the mean of 4 chains chosen on
  # validation by the same criterion (results/mnist/NOTE.md, variants/val_ge_pix_var*, val_ge_pix_mean4).
  c.solve.ge_pix.pixel_var = 0.3
  c.solve.ge_pix.restarts = 4
  c.solve.ge_pix.output = 'mean'
  # Compression's converged MAP keeps configs/mnist.py's lam (variants/val_compress_1000x4_lam*).
  return c
