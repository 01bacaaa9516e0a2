"""The original code's VAE (configs/mnist_vae.py) at the evaluation budget -> results/mnist_vae.

  python -m ge_jax.evaluate --config=configs/mnist_vae_eval.py --n=200 --methods=ae,gan,ge,ge_sample,ge_pix,csgm,ge_op
"""

from configs import mnist, mnist_vae


def get_config():
  return mnist.reported_eval(mnist_vae.get_config(), 'results/mnist_vae')
