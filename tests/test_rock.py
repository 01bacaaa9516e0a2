"""Tests for ge_jax.rock (synthetic slices), ge_jax.rock_metrics and ge_jax.photos."""

import json
import os

import numpy as np
import pytest

from configs import celeba64, photos64, rock64, rock64_spatial
from ge_jax import data, photos, rock, rock_metrics as rm
from ge_jax.errors import UserError

SPEC = rock.RockSpec()


def _data_cfg(**rock_overrides):
  c = rock64.get_config().data
  c.train_size, c.val_size, c.test_size = 12, 4, 4
  for k, v in rock_overrides.items():
    setattr(c.rock, k, v)
  return c


@pytest.fixture(autouse=True)
def _no_home_cache(monkeypatch, tmp_path):
  monkeypatch.setenv('GE_JAX_DATA_CACHE', str(tmp_path / 'cache'))


# ----------------------------------------------------------------- generator


def test_slices_shape_range_and_porosity():
  x, pore = rock.generate(SPEC, 'train', 24)
  assert x.shape == (24, 64, 64, 1) and x.dtype == np.float32 and pore.shape == (24, 64, 64)
  assert -1.0 <= x.min() and x.max() <= 1.0
  phi = rm.porosity(pore)
  assert (phi >= 0.2 - 1e-3).all() and (phi <= 0.5 + 1e-3).all()
  assert phi.std() > 0.03  # drawn per image
  # CT rendering: pores are dark, grains bright.
  for img, m in zip(x[..., 0], pore):
    assert img[m].mean() < img[~m].mean() - 0.5


@pytest.mark.parametrize('kind', rock.KINDS)
def test_each_kind_hits_the_drawn_porosity(kind):
  spec = rock.RockSpec(kinds=(kind,), porosity=(0.3, 0.3))
  _, pore = rock.generate(spec, 'val', 6)
  np.testing.assert_allclose(rm.porosity(pore), 0.3, atol=1 / 4096)


def test_grain_size_controls_the_interface():
  small = rock.RockSpec(kinds=('grains',), grain_radius=(2.5, 2.5), porosity=(0.4, 0.4))
  large = rock.RockSpec(kinds=('grains',), grain_radius=(7.0, 7.0), porosity=(0.4, 0.4))
  s_small = rm.specific_surface(rock.generate(small, 'train', 8)[1]).mean()
  s_large = rm.specific_surface(rock.generate(large, 'train', 8)[1]).mean()
  assert s_small > 1.8 * s_large  # interface per area ~ 1 / radius


def test_deterministic_prefix_stable_and_splits_disjoint():
  a, _ = rock.generate(SPEC, 'train', 6)
  b, _ = rock.generate(SPEC, 'train', 3, start=3)
  np.testing.assert_array_equal(a[3:], b)
  np.testing.assert_array_equal(rock.generate(SPEC, 'train', 4)[0], a[:4])
  test, _ = rock.generate(SPEC, 'test', 6)
  assert not {r.tobytes() for r in a} & {r.tobytes() for r in test}
  other, _ = rock.generate(rock.RockSpec(seed=1), 'train', 6)
  assert not np.array_equal(other, a)


def test_data_source_rock_and_cache(tmp_path):
  cfg = _data_cfg()
  ds = data.load(cfg)
  assert (ds.train.shape, ds.val.shape, ds.test.shape) == ((12, 64, 64, 1), (4, 64, 64, 1),
                                                           (4, 64, 64, 1))
  assert ds.source == 'rock:synthetic' and ds.train_labels is None
  assert len(list((tmp_path / 'cache').glob('rock-*.npz'))) == 3
  again = data.load(cfg)  # from the cache: the same numbers
  np.testing.assert_array_equal(again.train, ds.train)
  np.testing.assert_array_equal(ds.test, rock.generate(rock.RockSpec.from_config(cfg), 'test', 4)[0])


@pytest.mark.parametrize('override, match', [
    (dict(kinds='blobs,sand'), 'kinds'),
    (dict(porosity=(0.5, 0.2)), 'porosity'),
    (dict(porosity=(0.0, 0.5)), 'porosity'),
    (dict(grain_radius=(2.0, 40.0)), 'grain_radius'),
    (dict(blob_sigma=(1.0,)), 'blob_sigma'),
    (dict(noise=-1.0), 'noise'),
])
def test_bad_rock_config_is_one_sentence(override, match):
  with pytest.raises(UserError, match=match):
    data.load(_data_cfg(**override))


def test_generated_sources_need_their_config_keys():
  from configs import mnist  # pylint: disable=g-import-not-at-top
  c = mnist.get_config().data
  c.source = 'rock'
  with pytest.raises(UserError, match='needs config.data.train_size and config.data.rock.*rock64'):
    data.load(c)
  c.source = 'photos'
  with pytest.raises(UserError, match='photos64'):
    data.load(c)


def test_rock_needs_one_channel():
  cfg = _data_cfg()
  cfg.channels = 3
  with pytest.raises(UserError, match='channels'):
    data.load(cfg)


# ----------------------------------------------------------------- metrics: known answers


def _half_plane(n=1, size=64):
  m = np.zeros((n, size, size), bool)
  m[:, :, :size // 2] = True
  return m


def test_s2_half_plane_exact():
  m = rm.two_point_map(_half_plane())[0]
  for d in (0, 1, 5, 20, 31):
    # Pairs (x, x + d) inside the image: (64 - d) per row, both pore for 32 - d of them.
    assert m[0, d] == pytest.approx((32 - d) / (64 - d))
    assert m[d, 0] == pytest.approx(0.5)  # along the interface: porosity
  s2 = rm.two_point(_half_plane())[0]
  assert s2[0] == pytest.approx(0.5) and np.all(np.diff(s2) < 0)


def test_specific_surface_half_plane_and_disc():
  assert rm.specific_surface(_half_plane())[0] == pytest.approx(np.pi / 4 * 64 / 4096)
  yy, xx = np.mgrid[:64, :64]
  for r in (8, 15, 25):
    disc = ((yy - 31.5)**2 + (xx - 31.5)**2 <= r * r)[None]
    assert rm.porosity(disc)[0] == pytest.approx(np.pi * r * r / 4096, rel=0.05)
    assert rm.specific_surface(disc)[0] == pytest.approx(2 * np.pi * r / 4096, rel=0.05)


def test_s2_of_a_disc_is_the_overlap_area():
  yy, xx = np.mgrid[:64, :64]
  r = 10
  disc = ((yy - 31.5)**2 + (xx - 31.5)**2 <= r * r)[None]
  s2 = rm.two_point(disc, r_max=20)[0]
  d = np.arange(21.0)
  lens = 2 * r * r * np.arccos(np.minimum(d / (2 * r), 1)) - d / 2 * np.sqrt(
      np.maximum(4 * r * r - d * d, 0))  # area of two discs' intersection
  # Pairs at offset d: (64 - |dy|)(64 - |dx|) ~ 64^2 (1 - 2d/(pi 64)) on average over directions.
  expected = lens / (64 * 64 * (1 - 4 * d / (np.pi * 64) + 2 * d * d / (np.pi * 64 * 64)))
  np.testing.assert_allclose(s2, expected, atol=0.006)


def test_s2_iid_pixels():
  pore = np.random.default_rng(0).random((16, 64, 64)) < 0.3
  s2 = rm.two_point(pore)
  assert s2.shape == (16, 33)
  np.testing.assert_allclose(s2[:, 0], rm.porosity(pore))
  assert s2[:, 1:].mean() == pytest.approx(0.09, abs=0.002)


def test_otsu_matches_skimage_and_segments_the_slices():
  skf = pytest.importorskip('skimage.filters')
  x, pore = rock.generate(SPEC, 'test', 16)
  u = (x + 1) / 2
  t = rm.otsu_threshold(u)
  ref = np.array([skf.threshold_otsu(a[..., 0]) for a in u])
  np.testing.assert_allclose(t, ref, atol=0.02)
  assert (rm.segment(u, t) == pore).mean() > 0.99


def test_rock_errors_zero_for_identity_and_grow_with_damage():
  x, _ = rock.generate(SPEC, 'test', 8)
  u = (x + 1) / 2
  same = rm.rock_errors(u, u)
  assert set(same) == {'porosity_error', 's2_error', 'specific_surface_error'}
  for v in same.values():
    assert v.shape == (8,) and np.all(v == 0)
  rng = np.random.default_rng(0)
  errs = [rm.rock_errors(np.clip(u + s * rng.standard_normal(u.shape), 0, 1), u)
          for s in (0.05, 0.2)]
  for k in same:
    assert errs[1][k].mean() > errs[0][k].mean() > 0
  # A uniformly brighter restoration: the clean threshold sees fewer pores, per-image Otsu does not.
  bright = np.clip(u + 0.25, 0, 1)
  assert rm.rock_errors(bright, u)['porosity_error'].mean() > 0.1
  assert rm.rock_errors(bright, u, segmentation='otsu')['porosity_error'].mean() < 0.02


def test_rock_metrics_bad_input():
  with pytest.raises(UserError, match='same shape'):
    rm.rock_errors(np.zeros((2, 8, 8)), np.zeros((3, 8, 8)))
  with pytest.raises(UserError, match='grayscale'):
    rm.rock_errors(np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 8, 3)))
  with pytest.raises(UserError, match='segmentation'):
    rm.rock_errors(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), segmentation='manual')
  with pytest.raises(UserError, match='r_max'):
    rm.two_point(np.zeros((1, 8, 8), bool), r_max=8)


# ----------------------------------------------------------------- photos


def test_photos_tiles_disjoint_and_every_photo_in_every_split():
  sets = {s: set(photos.tiles(s)) for s in photos.SPLITS}
  assert not sets['train'] & sets['test'] and not sets['train'] & sets['val']
  assert not sets['val'] & sets['test']
  n_photos = len(photos.photographs())
  assert n_photos == 6
  for s in sets.values():
    assert {t[0] for t in s} == set(range(n_photos))


def test_photos_patches_deterministic_rgb():
  a = photos.generate('test', 10)
  assert a.shape == (10, 64, 64, 3) and a.dtype == np.float32
  assert -1 <= a.min() and a.max() <= 1 and a.std() > 0.1
  np.testing.assert_array_equal(a[:4], photos.generate('test', 4))
  b = photos.generate('train', 10)
  assert not {r.tobytes() for r in a} & {r.tobytes() for r in b}


def test_photos_source_cache_and_channel_check(tmp_path):
  c = photos64.get_config().data
  c.train_size, c.val_size, c.test_size = 6, 2, 2
  ds = data.load(c)
  assert ds.train.shape == (6, 64, 64, 3) and ds.source.startswith('photos:')
  assert len(list((tmp_path / 'cache').glob('photos-*.npz'))) == 3
  np.testing.assert_array_equal(data.load(c).val, ds.val)
  np.testing.assert_allclose(ds.test, photos.generate('test', 2), atol=1e-6)
  c.channels = 1
  with pytest.raises(UserError, match='RGB'):
    data.load(c)


# ----------------------------------------------------------------- configs


@pytest.mark.parametrize('mod', [rock64, rock64_spatial, photos64, celeba64])
def test_64px_configs_build_networks(mod):
  from ge_jax import models  # pylint: disable=g-import-not-at-top
  c = mod.get_config()
  assert c.data.image_size == 64 and c.model.base_size * 16 == 64
  assert models.num_upsamplings(c.data.image_size, c.model.base_size) == 4
  assert models.Nets(c).code_dim == c.ae.code_dim
  from ge_jax import methods  # pylint: disable=g-import-not-at-top
  for m in methods.TABLE:  # every method's settings resolve for these configs
    m.settings(c, methods.Task('denoise', ops=c.ops))


def test_score_entry_fields():
  x, _ = rock.generate(SPEC, 'test', 4)
  u = (x + 1) / 2
  noisy = np.clip(u + 0.1 * np.random.default_rng(0).standard_normal(u.shape), 0, 1)
  e = rm.score_entry(noisy, u)
  errs = rm.rock_errors(noisy, u)
  for k, v in errs.items():
    assert e[f'{k}_mean'] == pytest.approx(v.mean())
    assert e[f'{k}_se'] == pytest.approx(v.std(ddof=1) / 2)
    assert len(e['per_image'][k]) == 4


# ----------------------------------------------------------------- rock metrics in the scores


def test_which_configs_get_rock_metrics():
  from configs import mnist, mnist_tiny  # pylint: disable=g-import-not-at-top
  from ge_jax import experiment  # pylint: disable=g-import-not-at-top
  assert experiment.domain_metrics_for(rock64.get_config()) is not None
  for mod in (mnist, mnist_tiny, photos64, celeba64):
    assert experiment.domain_metrics_for(mod.get_config()) is None, mod.__name__
  real = rock64.get_config()
  real.data.source = 'folder'  # real slices: rock64 names the domain, 'auto' could not tell
  assert experiment.domain(real) == 'rock'
  real.eval.domain_metrics = 'auto'
  assert experiment.domain(real) is None
  generated = rock64.get_config()
  generated.eval.domain_metrics = 'auto'
  assert experiment.domain(generated) == 'rock'
  generated.eval.domain_metrics = 'none'
  assert experiment.domain_metrics_for(generated) is None
  generated.eval.domain_metrics = 'rocks'
  with pytest.raises(UserError, match='domain_metrics'):
    experiment.domain(generated)


def test_rock_hook_is_zero_for_a_perfect_restoration_and_fits_small_images():
  from configs import mnist_tiny  # pylint: disable=g-import-not-at-top
  from ge_jax import experiment  # pylint: disable=g-import-not-at-top
  hook = experiment.domain_metrics_for(rock64.get_config())
  x, _ = rock.generate(SPEC, 'test', 4)
  u = (x + 1) / 2
  perfect, noisy = hook(u, u), hook(np.clip(u + 0.2 * np.random.default_rng(0).standard_normal(u.shape), 0, 1), u)
  for k in rm.rock_errors(u, u):
    assert perfect[f'{k}_mean'] == 0 and perfect['per_image'][k] == [0.0] * 4
    assert np.isfinite(noisy[f'{k}_mean']) and noisy[f'{k}_mean'] > 0
  # 28x28 (MNIST-sized) images: S2 up to r = 14, not the 32 that 64x64 slices use.
  c = mnist_tiny.get_config()
  c.eval.domain_metrics = 'rock'
  small = experiment.domain_metrics_for(c)(u[:, :28, :28], u[:, :28, :28])
  assert small['s2_error_mean'] == 0


def _outcome(clean, recon, corrupted):
  from ge_jax import experiment  # pylint: disable=g-import-not-at-top
  return experiment.Outcome(task='denoise', description='test', indices=np.arange(len(clean)), clean=clean,
                            corrupted=corrupted, recon=recon, objective={}, loss_trace={}, diverged={},
                            notes={}, compile_seconds=1.0, solve_seconds=1.0)


def test_score_adds_rock_errors_per_method_beside_psnr_and_table_shows_them():
  from ge_jax import experiment  # pylint: disable=g-import-not-at-top
  x, _ = rock.generate(SPEC, 'test', 4)
  noisy = np.clip(x + 0.3 * np.random.default_rng(0).standard_normal(x.shape), -1, 1).astype(np.float32)
  out = _outcome(x, dict(ae=np.clip(noisy * 0.5, -1, 1), ge=x.copy()), noisy)
  s = experiment.score(out, domain_metrics=experiment.domain_metrics_for(rock64.get_config()))
  assert set(s['methods']) == {'corrupted', 'ae', 'ge'}
  for m, e in s['methods'].items():
    for k in ('porosity_error', 's2_error', 'specific_surface_error'):
      assert np.isfinite(e[f'{k}_mean']) and np.isfinite(e[f'{k}_se']), (m, k)
      assert len(e['per_image'][k]) == 4
    assert len(e['per_image']['psnr']) == 4  # the hook's per-image lists join PSNR's, not replace them
  assert s['methods']['ge']['porosity_error_mean'] == 0 and s['methods']['corrupted']['s2_error_mean'] > 0
  text = experiment.table(s)
  assert 'poro err' in text and 'S2 err' in text and 'surf err' in text
  plain = experiment.score(out)  # no hook (MNIST and every other config): no rock fields, no columns
  assert not any('porosity_error_mean' in e for e in plain['methods'].values())
  assert 'poro err' not in experiment.table(plain)


# ----------------------------------------------------------------- the 64x64 path, end to end


@pytest.mark.slow
@pytest.mark.parametrize('name', ['rock64', 'photos64'])
def test_train_then_solve_64px_smoke(tmp_path, name):
  """train.py (a few steps) and solve.py --batch on the 64x64 configs, as a user runs them."""
  from conftest import run_cli  # pylint: disable=g-import-not-at-top
  w = str(tmp_path / 'w')
  small = ['--config.data.train_size=64', '--config.data.val_size=8', '--config.data.test_size=8',
           '--config.gan.steps=4', '--config.ae.steps=4', '--config.solve.steps=4',
           '--config.solve.n_init=2']
  env = {'GE_JAX_DATA_CACHE': str(tmp_path / 'cache')}
  train = run_cli('train.py', f'--config=configs/{name}.py', f'--workdir={w}', '--noprogress', *small,
                  env=env, timeout=600)
  assert train.returncode == 0, train.stderr[-3000:]
  solve = run_cli('solve.py', '--batch', f'--config=configs/{name}.py', f'--workdir={w}', '--n=4',
                  *small, env=env, timeout=600)
  assert solve.returncode == 0, solve.stderr[-3000:]
  assert os.path.exists(os.path.join(w, 'solve', 'denoise', 'grid.png'))
  with open(os.path.join(w, 'solve', 'denoise', 'metrics.json')) as f:
    methods = json.load(f)['methods']
  rock_fields = [('porosity_error_mean' in e) for e in methods.values()]
  assert all(rock_fields) if name == 'rock64' else not any(rock_fields), methods.keys()
  assert ('poro err' in solve.stdout) == (name == 'rock64')
