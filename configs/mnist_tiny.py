"""A tiny MNIST config for tests and smoke checks: a few small steps."""

from configs import mnist


def get_config():
  c = mnist.get_config()
  c.name = 'mnist_tiny'
  c.data.test_size = 100
  c.data.val_size = 100
  c.model.latent_dim = 16
  c.model.g_width = 8
  c.model.d_width = 8
  for phase in (c.gan, c.ae):
    phase.steps = 40
    phase.batch_size = 16
    phase.ckpt_every = 20
    phase.sample_every = 20
    phase.log_every = 10
  c.ae.code_dim = 8
  c.ae.width = 8
  c.solve.n_images = 16
  c.solve.batch_size = 16
  c.solve.steps = 20
  c.solve.restarts = 2
  c.solve.n_init = 8
  c.solve.ge_sample.steps = 10
  c.solve.ge_sample.restarts = 2     # MNIST's 4 chains (and ge_pix's) at half the cost: the same code paths
  c.solve.ge_pix.restarts = 2
  # GE's MAP on compression: the image budget here (one compiled program for both; the block's own
  # values are tested in tests/test_compress_budget.py), not configs/mnist.py's 1000 x 4
  c.solve.compress.steps = c.solve.steps
  c.solve.compress.restarts = c.solve.restarts
  return c
