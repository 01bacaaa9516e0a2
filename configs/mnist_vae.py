"""The original code's autoencoder: a VAE, trained like configs/mnist.py's AE on real images and
samples of G (no corruption augmentation); GE matches posterior means E(x).

  mkdir -p runs/mnist_vae && cp -r runs/mnist/gan runs/mnist_vae/    # the same GAN
  python train.py --config=configs/mnist_vae.py --workdir=runs/mnist_vae

Its code errors E(y) - E(x) are smaller than the AE's (scripts/code_errors.py), so the prior weights
are scaled with them; chosen on validation (results/mnist_paper/NOTE.md, variants/val_vae_*; the
test split: results/mnist_vae/NOTE.md).
"""

from configs import mnist


def get_config():
  c = mnist.get_config()
  c.name = 'mnist_vae'
  c.ae.kind = 'vae'
  c.solve.lam_ge = 0.003
  c.solve.lam_ge_op = 0.003     # as GE's: the same code-space objective
  c.solve.ge_sample.lam = 0.03     # chosen on validation: results/mnist_paper/variants/val_vae_sample_*
  c.solve.ge_pix.lam = 0.03        # the lam its pixel_var was tuned with
  # GE+pixels: pixel_var and the mean of 4 chains (configs/mnist.py's choice) chosen on validation by
  # the criterion of results/mnist/NOTE.md (results/mnist_paper/variants/val_vae_ge_pix_*).
  c.solve.ge_pix.pixel_var = 0.3
  c.solve.ge_pix.restarts = 4
  c.solve.ge_pix.output = 'mean'
  # Compression's converged MAP keeps configs/mnist.py's lam, by the criterion with its noise clause
  # (results/mnist_paper/variants/val_vae_compress_1000x4_lam*; docs/FIDELITY.md, section 6).
  return c
