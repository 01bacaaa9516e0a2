"""Every config file loads, names itself, and describes valid solver settings for each method; every
variant in results/ names a config file that exists, or a NOTE.md that says what replaces it."""

import glob
import importlib
import json
import os
import re
import shlex

import pytest

from ge_jax import checkpoint, cli, config_check, methods, operators

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every config file: the settings a user runs, and the 64x64 base they share (a tried setting is an
# override recorded with its result, results/*/variants/*, not a file here).
NAMES = tuple(sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, 'configs', '*.py'))
                     if not p.endswith('__init__.py')))
MNIST = tuple(n for n in NAMES if n.startswith('mnist'))


def test_the_schema_is_mnist():
  # cli.base_config() defines which keys exist: configs/mnist.py unless a configs/base.py is the full schema.
  assert cli.base_config().to_dict() == importlib.import_module('configs.mnist').get_config().to_dict()


@pytest.mark.parametrize('name', NAMES)
def test_config_is_valid(name):
  c = importlib.import_module(f'configs.{name}').get_config()
  assert c.name and (name in MNIST) == c.name.startswith('mnist')
  config_check.validate(c, cli.base_config())  # raises UserError on an unknown key or a bad value
  # Every method's settings on an image task and on the code-only one, read and checked as a run does.
  shape = (c.data.image_size, c.data.image_size, c.data.channels)
  for task in ('denoise', 'compress'):
    facts = methods.Task.of(task, operators.make(task, c.ops, shape), c.ops)
    for m in methods.TABLE:
      if m.why_not(facts) is None:
        s = m.settings(c, facts)  # raises UserError on a bad value
        if isinstance(s, methods.Latent):
          assert float(s.lam) >= 0 and float(s.lr) > 0, (task, m.name)
  # A variant that reuses another run's GAN must keep that GAN's shapes.
  if name in MNIST and name != 'mnist_tiny':
    base = importlib.import_module('configs.mnist').get_config()
    checkpoint.check_compatible(checkpoint.config_to_dict(base), c, 'runs/mnist/gan',
                                checkpoint.PHASE_SHAPE_KEYS['gan'])


def _get(config, dotted: str):
  for part in dotted.split('.'):
    assert part in config, dotted
    config = config[part]
  return config


@pytest.mark.parametrize('name', ['rock64', 'photos64'])
def test_64px_configs_share_base64s_networks_and_solver(name):
  base = importlib.import_module('configs.base64').get_config()
  c = importlib.import_module(f'configs.{name}').get_config()
  for key in ('data.image_size', 'model.base_size', 'model.latent_dim', 'model.g_width', 'model.d_width',
              'solve.lam_ge', 'solve.ge_sample.lam', 'solve.ge_pix.max_pixel_step', 'ops.inpaint_size'):
    assert _get(c, key) == _get(base, key), key
  assert set(base.declared_keys) <= set(c.declared_keys)


def _config_words(text: str) -> list[str]:
  return [w for w in shlex.split(text.replace('\\\n', ' ')) if w.startswith('--config')]


def _variants():
  return sorted(glob.glob(os.path.join(ROOT, 'results', '*', 'variants', '*', 'results.json')))


def test_there_are_variants_to_check():
  assert len(_variants()) > 10


@pytest.mark.parametrize('path', _variants(), ids=lambda p: os.path.relpath(os.path.dirname(p), ROOT))
def test_each_variant_names_an_existing_config_or_says_what_replaced_it(path):
  with open(path) as f:
    command = json.load(f).get('command', '')
  named = re.findall(r'--config=(\S+)', command)
  if not named or os.path.exists(os.path.join(ROOT, named[0])):
    return
  note = os.path.join(os.path.dirname(path), 'NOTE.md')
  assert os.path.exists(note), f'{named[0]} is gone: {note} must give the config and overrides replacing it'
  with open(note) as f:
    text = f.read()
  block = re.search(r'\n\n((?:    .*\n)+)', text)  # the first indented block: the replacement
  assert block and f'--config={named[0]}' in text.replace('\n', ' '), note
  words = _config_words(block.group(1))
  files = [w.split('=', 1)[1] for w in words if w.startswith('--config=')]
  assert len(files) == 1 and os.path.exists(os.path.join(ROOT, files[0])), (note, files)
  c = importlib.import_module('configs.' + os.path.basename(files[0])[:-3]).get_config()
  for w in words:
    if w.startswith('--config.'):
      _get(c, w[len('--config.'):].split('=', 1)[0])  # a key of that config
