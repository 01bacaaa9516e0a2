"""fileio (atomic writes) and batching (padding, chunked application)."""

import os

import numpy as np
import pytest

from ge_jax import batching, fileio
from ge_jax.errors import UserError


def test_atomic_write_leaves_no_temporary_and_keeps_old_file_on_error(tmp_path):
  path = tmp_path / 'sub' / 'm.json'
  fileio.write_json(str(path), {'a': 1})
  assert os.listdir(path.parent) == ['m.json']
  with pytest.raises(RuntimeError):
    with fileio.atomic_path(str(path)) as tmp:
      with open(tmp, 'w') as f:
        f.write('half')
      raise RuntimeError('crash mid-write')
  assert path.read_text().strip().startswith('{') and os.listdir(path.parent) == ['m.json']


def test_save_npz_round_trip(tmp_path):
  p = fileio.save_npz(str(tmp_path / 'r.npz'), x=np.arange(3))
  np.testing.assert_array_equal(np.load(p)['x'], np.arange(3))


def test_map_batched_pads_and_drops_padding():
  seen = []

  def fn(_, x):
    seen.append(x.shape[0])
    return x * 2
  out = batching.map_batched(fn, None, np.arange(7.0)[:, None], 3)
  np.testing.assert_array_equal(out[:, 0], 2 * np.arange(7.0))
  assert seen == [3, 3, 3]


@pytest.mark.parametrize('bad', [0, -1, 2.5, True])
def test_bad_batch_size_is_one_sentence(bad):
  with pytest.raises(UserError, match='batch_size'):
    batching.map_batched(lambda p, x: x, None, np.zeros((2, 1)), bad)


def test_pad_rows():
  np.testing.assert_array_equal(batching.pad_rows(np.array([1, 2]), 4), [1, 2, 2, 2])
  assert batching.pad_rows(np.zeros((0, 2)), 3).shape == (3, 2)
