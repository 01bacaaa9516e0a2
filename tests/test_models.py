import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ge_jax import models
from ge_jax.errors import UserError


@pytest.mark.parametrize('size,channels,base', [(28, 1, 7), (64, 3, 4), (32, 3, 4)])
def test_shapes(tiny_config, size, channels, base):
  c = tiny_config
  c.data.image_size, c.data.channels, c.model.base_size = size, channels, base
  params = models.init_params(c, jax.random.key(0))
  nets = models.Nets(c)
  z = jax.random.normal(jax.random.key(1), (3, c.model.latent_dim))
  x = nets.G(params['generator'], z)
  assert x.shape == (3, size, size, channels)
  assert float(jnp.abs(x).max()) <= 1.0
  assert nets.D(params['discriminator'], x).shape == (3,)
  m = nets.E(params['autoencoder'], x)
  assert m.shape == (3, c.ae.code_dim)
  assert nets.Dec(params['autoencoder'], m).shape == (3, size, size, channels)


def test_vae_encoder_is_deterministic_mean(tiny_config):
  c = tiny_config
  c.ae.kind = 'vae'
  params = models.init_params(c, jax.random.key(0))
  nets = models.Nets(c)
  x = jax.random.uniform(jax.random.key(2), (4, 28, 28, 1), minval=-1, maxval=1)
  mean, logvar = nets.E_stats(params['autoencoder'], x)
  assert logvar.shape == mean.shape
  np.testing.assert_array_equal(nets.E(params['autoencoder'], x), mean)
  np.testing.assert_array_equal(nets.E(params['autoencoder'], x), nets.E(params['autoencoder'], x))


def test_per_image_independence(tiny_config):
  """No batch statistics: an image's output does not depend on its batch-mates."""
  params = models.init_params(tiny_config, jax.random.key(0))
  nets = models.Nets(tiny_config)
  z = jax.random.normal(jax.random.key(1), (8, tiny_config.model.latent_dim))
  full = nets.G(params['generator'], z)
  np.testing.assert_allclose(nets.G(params['generator'], z[3:4])[0], full[3], atol=1e-5)
  codes = nets.E(params['autoencoder'], full)
  np.testing.assert_allclose(nets.E(params['autoencoder'], full[5:6])[0], codes[5], atol=1e-5)


def test_matmul_impl_computes_the_same_maps(tiny_config):
  params = models.init_params(tiny_config, jax.random.key(0))
  xla = models.Nets(tiny_config)
  tiny_config.model.conv_impl = 'matmul'
  mm = models.Nets(tiny_config)
  z = jax.random.normal(jax.random.key(1), (4, tiny_config.model.latent_dim))
  x = xla.G(params['generator'], z)
  np.testing.assert_allclose(mm.G(params['generator'], z), x, atol=1e-5)
  np.testing.assert_allclose(mm.E(params['autoencoder'], x), xla.E(params['autoencoder'], x), atol=1e-5)
  np.testing.assert_allclose(mm.D(params['discriminator'], x), xla.D(params['discriminator'], x), atol=1e-5)


def test_bad_sizes_are_user_errors(tiny_config):
  tiny_config.data.image_size = 30
  with pytest.raises(UserError, match='base_size'):
    models.Nets(tiny_config)
  tiny_config.data.image_size = 28
  tiny_config.ae.kind = 'gan'
  with pytest.raises(UserError, match='ae.kind'):
    models.Nets(tiny_config)
