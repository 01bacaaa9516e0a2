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
  nets = models.Nets(c)

  @jax.jit  # one program: run eagerly, every layer's init and op compiles on its own
  def run(key):
    params = models.init_params(c, key)
    x = nets.G(params['generator'], jax.random.normal(jax.random.key(1), (3, c.model.latent_dim)))
    m = nets.E(params['autoencoder'], x)
    return x, nets.D(params['discriminator'], x), m, nets.Dec(params['autoencoder'], m)

  x, d, m, dec = run(jax.random.key(0))
  assert x.shape == (3, size, size, channels)
  assert float(jnp.abs(x).max()) <= 1.0
  assert d.shape == (3,)
  assert m.shape == (3, c.ae.code_dim)
  assert dec.shape == (3, size, size, channels)


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


@pytest.mark.parametrize('g_final', ['conv', 'subpixel'])
@pytest.mark.parametrize('impl', ['matmul', 'stride1'])
def test_matmul_impl_computes_the_same_maps(tiny_config, impl, g_final):
  """Every conv_impl computes the maps of 'xla' with its parameters: outputs, d/dz, d/dparams, R1."""
  tiny_config.model.g_final = g_final
  tiny_config.model.conv_impl = 'xla'
  params = models.init_params(tiny_config, jax.random.key(0))
  ref = models.Nets(tiny_config)
  tiny_config.model.conv_impl = impl
  new = models.Nets(tiny_config)
  z = jax.random.normal(jax.random.key(1), (4, tiny_config.model.latent_dim))
  pg, pa, pd = params['generator'], params['autoencoder'], params['discriminator']
  x = jax.jit(ref.G)(pg, z)
  m = jax.jit(ref.E)(pa, x)

  def maps(n):
    """What is compared, as one program (run eagerly, each of its hundreds of ops compiles alone)."""
    def f(pg, pa, pd, z, x, m):
      return dict(
          G=n.G(pg, z), E=n.E(pa, x), D=n.D(pd, x), Dec=n.Dec(pa, m),
          # the solver's gradient (z) and the GAN's (G's weights)
          ge=jax.grad(lambda z, g: jnp.sum(n.E(pa, n.G(g, z))**2), argnums=(0, 1))(z, pg),
          ae=jax.grad(lambda a: jnp.mean((n.Dec(a, n.E(a, x)) - x)**2))(pa),
          # second derivatives: the lazy R1 penalty
          r1=jax.grad(lambda d: jnp.sum(jax.grad(lambda x: n.D(d, x).sum())(x)**2))(pd))
    return jax.jit(f)(pg, pa, pd, z, x, m)

  jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, atol=1e-5, rtol=1e-4), maps(new), maps(ref))


def test_conv_impls_share_the_parameter_tree(tiny_config):
  """Checkpoints move between impls: the same tree, shapes and initial values."""
  trees = {}
  for impl in ('xla', 'stride1'):  # 'matmul' shares Conv's parameters with 'xla' by construction
    tiny_config.model.conv_impl = impl
    trees[impl] = jax.jit(lambda k: models.init_params(tiny_config, k))(jax.random.key(0))
  jax.tree.map(np.testing.assert_array_equal, trees['stride1'], trees['xla'])


@pytest.mark.parametrize('impl', ['matmul', 'stride1'])
@pytest.mark.parametrize('size,k,stride,cin,cout', [(7, 3, 1, 8, 24), (14, 3, 1, 16, 4), (9, 4, 2, 3, 20),
                                                    (10, 3, 2, 4, 20)])
def test_conv_impls_agree_on_odd_shapes(impl, size, k, stride, cin, cout):
  """Odd sizes, narrow outputs, 1 channel: 'SAME' output and gradients as lax.conv computes them."""
  x = jax.random.normal(jax.random.key(0), (2, size, size, cin))
  conv = models.Conv(cout, k, stride, impl)
  p = conv.init(jax.random.key(1), x)
  ref = models.Conv(cout, k, stride, 'xla')
  f = lambda m: jax.jit(jax.value_and_grad(lambda p, x: jnp.sum(jnp.sin(m.apply(p, x))), argnums=(0, 1)))
  np.testing.assert_allclose(jax.jit(conv.apply)(p, x), ref.apply(p, x), atol=1e-5, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(f(conv)(p, x)), jax.tree.leaves(f(ref)(p, x))):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


def test_bad_sizes_are_user_errors(tiny_config):
  tiny_config.data.image_size = 30
  with pytest.raises(UserError, match='base_size'):
    models.Nets(tiny_config)
  tiny_config.data.image_size = 28
  tiny_config.ae.kind = 'gan'
  with pytest.raises(UserError, match='ae.kind'):
    models.Nets(tiny_config)


def test_auto_conv_impl_is_the_cpu_form_on_cpu_only(tiny_config):
  assert models.resolve_conv_impl('auto', 'cpu') == 'stride1'
  assert models.resolve_conv_impl('auto', 'gpu') == 'xla' == models.resolve_conv_impl('auto', 'tpu')
  assert models.resolve_conv_impl('matmul', 'gpu') == 'matmul'
  tiny_config.model.conv_impl = 'auto'
  assert models.Nets(tiny_config).spec.conv_impl == models.resolve_conv_impl('auto', jax.default_backend())
  tiny_config.model.conv_impl = 'fast'
  with pytest.raises(UserError, match='conv_impl'):
    models.Nets(tiny_config)


def test_nets_equal_by_model_settings(tiny_config):
  a, b = models.Nets(tiny_config), models.Nets(tiny_config.copy_and_resolve_references())
  assert a == b and hash(a) == hash(b) and len({a, b}) == 1
  tiny_config.solve.steps += 1  # not a model setting
  assert models.Nets(tiny_config) == a
  tiny_config.ae.code_dim += 1
  assert models.Nets(tiny_config) != a


def test_apply_batched_matches_direct_calls_and_compiles_once(tiny_config):
  traces = []

  class Counting(models.Nets):
    def E(self, params, x):
      traces.append(x.shape)
      return super().E(params, x)

  params = models.init_params(tiny_config, jax.random.key(0))['autoencoder']
  x = jax.random.uniform(jax.random.key(2), (7, 28, 28, 1), minval=-1, maxval=1)
  first = models.apply_batched(Counting(tiny_config).E, params, x, 4)  # chunks 4 + 3 (padded to 4)
  again = models.apply_batched(Counting(tiny_config).E, params, np.asarray(x[:5]), 4)  # a new, equal Nets
  assert traces == [(4, 28, 28, 1)]
  np.testing.assert_allclose(first, models.Nets(tiny_config).E(params, x), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(again, first[:5])


@pytest.mark.parametrize('impl', ['xla', 'stride1'])
def test_resize_upsampling_draws_no_checkerboard(impl):
  """A spatially constant input: the sub-pixel x2 (four phases, four sets of weights) returns a 2x2
  periodic pattern; nearest-neighbour x2 + conv (mode 'resize') returns a constant away from the
  border, whatever the weights. The pattern a GAN can keep is the checkerboard of the RGB G."""
  x = jnp.ones((1, 6, 6, 3))
  interior = lambda y: np.asarray(y[0, 2:-2, 2:-2])
  for mode, periodic in (('subpixel', True), ('resize', False)):
    up = models.Upsample(4, impl, mode)
    y = up.apply(up.init(jax.random.key(0), x), x)
    assert y.shape == (1, 12, 12, 4)
    spread = np.ptp(interior(y).reshape(-1, 4), axis=0).max()
    assert (spread > 1e-2) == periodic, (mode, spread)


def test_generator_upsampling_modes(tiny_config):
  """g_upsample='resize' keeps G's output shape, changes its parameter shapes, and is checked."""
  shapes = {}
  for mode in ('subpixel', 'resize'):
    tiny_config.model.g_upsample = mode
    params = models.init_params(tiny_config, jax.random.key(0))
    z = jnp.zeros((2, tiny_config.model.latent_dim))
    x = models.Nets(tiny_config).G(params['generator'], z)
    assert x.shape == (2,) + models.ModelSpec.from_config(tiny_config).image_shape
    shapes[mode] = jax.tree.map(jnp.shape, params['generator'])
  assert shapes['subpixel'] != shapes['resize']
  tiny_config.model.g_upsample = 'bilinear'
  with pytest.raises(UserError, match='g_upsample'):
    models.ModelSpec.from_config(tiny_config)


@pytest.mark.parametrize('impl', ['xla', 'stride1', 'matmul'])
def test_resize_upsampling_is_nearest_x2_then_conv(impl):
  """Upsample(mode='resize') computes, through its sub-pixel form, exactly the 3x3 'SAME' conv of
  the nearest-neighbour x2 upsampled input, borders included; gradients agree too."""
  x = jax.random.normal(jax.random.key(1), (2, 5, 7, 3))
  up = models.Upsample(4, impl, 'resize')
  p = up.init(jax.random.key(0), x)
  k, b = p['params']['conv']['kernel'], p['params']['conv']['bias']
  b = b + jax.random.normal(jax.random.key(2), b.shape)  # a nonzero bias is tiled to every phase
  p = {'params': {'conv': {'kernel': k, 'bias': b}}}

  def direct(k, b, x):
    big = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return jax.lax.conv_general_dilated(big, k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                        precision='highest') + b

  fused = lambda k, b, x: up.apply({'params': {'conv': {'kernel': k, 'bias': b}}}, x)
  np.testing.assert_allclose(fused(k, b, x), direct(k, b, x), atol=1e-5, rtol=1e-5)
  loss = lambda fn: jax.grad(lambda k, b, x: jnp.sum(jnp.sin(fn(k, b, x))), argnums=(0, 1, 2))(k, b, x)
  for g_fused, g_direct in zip(loss(fused), loss(direct)):
    np.testing.assert_allclose(g_fused, g_direct, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('kind', ['ae', 'vae'])
def test_spatial_code_is_a_map_of_local_codes(tiny_config, kind):
  """config.ae.code_size: the code is a k x k map (flattened); a change in one corner of the image
  leaves the code of the far corner untouched (a dense code would change everywhere)."""
  c = tiny_config
  c.data.image_size, c.model.base_size, c.ae.code_size, c.ae.code_dim, c.ae.kind = 64, 4, 8, 128, kind
  params = models.init_params(c, jax.random.key(0))
  nets = models.Nets(c)
  x = jax.random.uniform(jax.random.key(2), (1, 64, 64, 1), minval=-1, maxval=1)
  m = nets.E(params['autoencoder'], x)
  assert m.shape == (1, 128)
  assert nets.Dec(params['autoencoder'], m).shape == (1, 64, 64, 1)
  x2 = x.at[:, :8, :8].set(1.0)  # the top-left 8x8 pixels, one code cell's own patch
  grid = lambda code: np.asarray(code).reshape(8, 8, 2)  # (row, col, channel): code_dim / 8**2 = 2
  change = np.abs(grid(nets.E(params['autoencoder'], x2)) - grid(m)).max(-1)
  assert change[0, 0] > 1e-4 and change[4:, 4:].max() == 0.0


def test_spatial_code_settings_are_checked_in_one_sentence(tiny_config):
  c = tiny_config
  c.ae.code_size, c.ae.code_dim = 14, 100  # 28 = 14 * 2, but 100 is no multiple of 14**2
  with pytest.raises(UserError, match='multiple of code_size'):
    models.Nets(c)
  c.ae.code_size = 28
  with pytest.raises(UserError, match='code_size'):
    models.Nets(c)
