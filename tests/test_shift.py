"""The shift suite: deterministic, range-preserving transforms that do what their names say."""

import numpy as np
import pytest

from ge_jax import shift
from ge_jax.errors import UserError


def _bar(h=28, w=28, horizontal=True):
  """One image: a bright 2-px bar through the centre on a black (-1) background."""
  x = -np.ones((1, h, w, 1), np.float32)
  if horizontal:
    x[0, h // 2 - 1:h // 2 + 1, 4:-4] = 1.0
  else:
    x[0, 4:-4, w // 2 - 1:w // 2 + 1] = 1.0
  return x


def _centroid_angle(img):
  """Orientation (degrees, counter-clockwise from horizontal, rows downwards) of the bright mass."""
  ys, xs = np.nonzero(img[0, ..., 0] > 0)
  cov = np.cov(np.stack([xs, -ys]))
  w, v = np.linalg.eigh(cov)
  vx, vy = v[:, -1]
  return np.degrees(np.arctan2(vy, vx)) % 180


@pytest.mark.parametrize('name', list(shift.SHIFTS))
def test_every_shift_keeps_shape_range_and_is_deterministic(name):
  rng = np.random.default_rng(0)
  x = np.clip(rng.normal(-0.5, 0.6, (3, 28, 28, 1)), -1, 1).astype(np.float32)
  out = shift.SHIFTS[name](x)
  assert out.shape == x.shape and out.dtype == np.float32
  assert out.min() >= -1 and out.max() <= 1
  np.testing.assert_array_equal(out, shift.SHIFTS[name](x))
  np.testing.assert_array_equal(out[1:2], shift.SHIFTS[name](x[1:2]))  # per image, no batch coupling
  assert not np.allclose(out, x)
  assert shift.SHIFTS[name](np.zeros((2, 64, 64, 3), np.float32)).shape == (2, 64, 64, 3)


def test_rotation_turns_counter_clockwise_and_fills_with_the_background():
  bar = _bar()
  assert abs(_centroid_angle(shift.rotate(bar, 30)) - 30) < 4
  assert abs(_centroid_angle(shift.rotate(bar, -30)) - 150) < 4
  assert shift.rotate(bar, 30)[0, 0, 0, 0] == -1.0  # corners: black, not grey
  white = -bar  # dark bar on white: corners stay white
  assert shift.rotate(white, 45)[0, 0, 0, 0] == 1.0


def test_rescale_changes_the_bar_length_about_the_centre():
  bar = _bar()
  length = lambda x: int((x[0, 13:15] > 0).any(axis=0).sum())
  assert length(bar) == 20
  assert abs(length(shift.rescale(bar, 0.7)) - 14) <= 1
  assert length(shift.rescale(bar, 1.3)) >= 25
  small = shift.rescale(bar, 0.7)
  cols = np.nonzero((small[0, 13:15] > 0).any(axis=0))[0]
  assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 0.5  # still centred
  with pytest.raises(UserError):
    shift.rescale(bar, 0)


def test_thicken_thin_and_invert():
  bar = _bar(horizontal=False)
  width = lambda x: int((x[0, 14, :, 0] > 0).sum())
  assert width(shift.thicken(bar)) == 4 and width(shift.thin(shift.thicken(bar))) == 2
  assert width(shift.thin(bar)) == 0  # a 2-px stroke vanishes: the suite's hardest thinning case
  np.testing.assert_array_equal(shift.invert(bar), -bar)


def test_sets_picture_and_bad_input(tmp_path):
  x = np.repeat(_bar(), 4, axis=0)
  sets = shift.shifted_sets(x, ['invert', 'thin'])
  assert list(sets) == ['invert', 'thin']
  path = shift.save_shift_grid(str(tmp_path / 'shifts.png'), x, n=3)
  from PIL import Image
  assert Image.open(path).size[1] == (1 + len(shift.SHIFTS)) * 2 * (28 + 4)  # one row each, scale 2
  with pytest.raises(UserError):
    shift.shifted_sets(x, ['warp'])
  with pytest.raises(UserError):
    shift.invert(np.zeros((28, 28, 1)))
