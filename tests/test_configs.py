"""Every config file loads, names itself, and describes valid solver settings for each method."""

import glob
import importlib
import os

import pytest

from ge_jax import checkpoint, experiment
from ge_jax.solver import SolverSpec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, 'configs', 'mnist*.py')))


def test_the_variants_are_all_here():
  assert {'mnist', 'mnist_tiny', 'mnist_aug', 'mnist_aug_code64', 'mnist_aug_code64_steps500'} <= set(NAMES)


@pytest.mark.parametrize('name', NAMES)
def test_config_is_valid(name):
  c = importlib.import_module(f'configs.{name}').get_config()
  assert c.name.startswith('mnist')
  for method in ('ge', 'gan', 'csgm'):
    SolverSpec.from_config(c.solve, method)  # raises UserError on a bad value
    assert float(experiment.method_setting(c.solve, 'lam', method)) >= 0
    assert float(experiment.method_setting(c.solve, 'lr', method)) > 0
  # A variant that reuses another run's GAN must keep that GAN's shapes.
  base = importlib.import_module('configs.mnist').get_config()
  if name != 'mnist_tiny':
    checkpoint.check_compatible(checkpoint.config_to_dict(base), c, 'runs/mnist/gan',
                                checkpoint.PHASE_SHAPE_KEYS['gan'])
