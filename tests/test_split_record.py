"""Split membership: a workdir records the split its networks were trained on (<workdir>/split.json), so
that images it was trained or validated on are never scored as held-out test images."""

import json
import os
import shutil

import pytest

from ge_jax import data, load, pretrain
from ge_jax.errors import UserError


@pytest.fixture(scope='module')
def tiny_data():
  from configs import mnist_tiny
  return data.load(mnist_tiny.get_config().data)


@pytest.fixture
def workdir(tiny_workdir, tmp_path):
  w = str(tmp_path / 'w')
  shutil.copytree(tiny_workdir, w)
  return w


def test_training_records_the_split_and_the_same_split_passes(tiny_workdir, tiny_config, tiny_data):
  with open(os.path.join(tiny_workdir, 'split.json'), encoding='utf-8') as f:
    rec = json.load(f)
  assert rec['data']['test_size'] == 100 and rec['data']['val_size'] == 100
  assert rec['loaded'] == tiny_data.source and rec['sizes'] == dict(train=4800, val=100, test=100)
  assert set(rec['phases']) == {'gan', 'ae'} and len(rec['test_fingerprint']) == 16
  load.check_split(tiny_config, tiny_workdir)
  load.check_split(tiny_config, tiny_workdir, tiny_data)


@pytest.mark.parametrize('key, value', [('test_size', 150), ('val_size', 50), ('source', 'npz')])
def test_another_split_at_solve_time_is_one_sentence(tiny_workdir, tiny_config, key, value):
  tiny_config.data[key] = value
  with pytest.raises(UserError) as e:
    load.check_split(tiny_config, tiny_workdir)
  msg = str(e.value)
  assert f'data.{key}' in msg and 'trained' in msg and 'allow_other=True' in msg and '--other_split' in msg
  assert '\n' not in msg
  load.check_split(tiny_config, tiny_workdir, allow_other=True)  # asked for explicitly: no error


def test_the_loaded_images_decide_when_given(tiny_workdir, tiny_config, tiny_data):
  """With the dataset, the test images themselves are compared: another test_size is refused (its test
  images include images trained on), while a key that does not change them (a moved folder) passes."""
  tiny_config.data.test_size = 150
  with pytest.raises(UserError) as e:
    load.check_split(tiny_config, tiny_workdir, data.load(tiny_config.data))
  assert 'data.test_size: trained with 100, now 150' in str(e.value) and 'test images' in str(e.value)
  tiny_config.data.test_size, tiny_config.data.val_size = 100, 50
  with pytest.raises(UserError, match='the val images differ'):
    load.check_split(tiny_config, tiny_workdir, data.load(tiny_config.data))  # validation images trained on
  tiny_config.data.val_size = 100
  tiny_config.data.path = '/somewhere/else'  # not read by this source: the same images
  load.check_split(tiny_config, tiny_workdir, tiny_data)
  with pytest.raises(UserError, match='data.path'):
    load.check_split(tiny_config, tiny_workdir)  # without the images only the settings can be compared


def test_changed_images_with_the_same_settings_are_refused(tiny_workdir, tiny_config, tiny_data):
  import dataclasses
  other = dataclasses.replace(tiny_data, test=tiny_data.test[::-1].copy())
  with pytest.raises(UserError, match='test images differ'):
    load.check_split(tiny_config, tiny_workdir, other)


def test_a_workdir_without_a_record_is_not_checked(workdir, tiny_config):
  os.remove(os.path.join(workdir, 'split.json'))
  tiny_config.data.test_size = 150
  load.check_split(tiny_config, workdir)


def test_a_damaged_record_is_one_sentence(workdir, tiny_config):
  with open(os.path.join(workdir, 'split.json'), 'wb') as f:
    f.write(b'\xff\x00{not json')
  with pytest.raises(UserError) as e:
    load.check_split(tiny_config, workdir)
  assert 'split.json' in str(e.value) and '\n' not in str(e.value)


def test_resuming_with_another_split_is_refused_before_any_work(tiny_config, tmp_path, tiny_data):
  w = str(tmp_path / 'w')
  tiny_config.gan.steps = 20
  pretrain.train_gan(tiny_config, w, tiny_data, progress=False)
  tiny_config.gan.steps = 40
  tiny_config.data.test_size = 150
  with pytest.raises(UserError) as e:
    pretrain.train_gan(tiny_config, w, data.load(tiny_config.data), progress=False)
  msg = str(e.value)
  assert 'data.test_size: trained with 100, now 150' in msg and '--workdir' in msg and '\n' not in msg
  assert os.listdir(os.path.join(w, 'gan', 'checkpoints')) == ['20']  # nothing trained on


def test_a_fresh_ae_on_an_unrecorded_gan_records_its_split(workdir, tiny_config, tiny_data):
  """A workdir made before the record: its GAN is not checked, a fresh AE phase records its own split."""
  os.remove(os.path.join(workdir, 'split.json'))
  shutil.rmtree(os.path.join(workdir, 'ae'))
  tiny_config.ae.steps = 20
  pretrain.train_and_evaluate(tiny_config, workdir, progress=False)
  with open(os.path.join(workdir, 'split.json'), encoding='utf-8') as f:
    assert json.load(f)['phases'] == ['ae']
