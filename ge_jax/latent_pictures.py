"""Latent-space pictures of a trained workdir (ge_jax.latent_viz): PCA of codes, interpolations, stats.

  python -m ge_jax.latent_pictures --config=configs/mnist.py --workdir=runs/mnist --outdir=results/mnist
"""

import json
import os

from ge_jax import interrupts

interrupts.install()  # before the heavy imports: a Ctrl-C while they load ends the process quietly

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from ge_jax import cli, data, latent_viz, load  # noqa: E402
from ge_jax.errors import UserError  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/mnist.py', 'Config file (ml_collections).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Trained checkpoints (default runs/<config.name>).')
_OUTDIR = flags.DEFINE_string('outdir', None, 'Where the pictures go (default results/<config.name>).')
_N = flags.DEFINE_integer('n', 500, 'Real test images and G samples in the PCA picture.')
_N_GE = flags.DEFINE_integer('n_ge', 64, 'Test images restored by GE for the picture.')
_TASK = flags.DEFINE_string('task', 'denoise-0.3', 'Evaluation task of the GE solutions.')
_STEPS = flags.DEFINE_integer('steps', 10, 'Points on the z interpolation.')


@cli.exit_on_user_error
def main(argv):
  config = _CONFIG.value
  workdir = cli.start(argv, config, _WORKDIR.value)
  outdir = _OUTDIR.value or os.path.join('results', config.name)
  ds = data.load(config.data)
  n = min(_N.value, len(ds.test))
  if n < 2:
    raise UserError(f'--n={_N.value} must be at least 2.')
  params = load.load_trained(config, workdir)
  labels = None if ds.test_labels is None else ds.test_labels[:n]
  stats = latent_viz.make_pictures(config, params, ds.test[:n], labels, outdir, n_ge=_N_GE.value,
                                   task=_TASK.value, steps=_STEPS.value)
  print(json.dumps(stats, indent=1))
  print(f'wrote {outdir}/latent_pca.png, latent_interpolation.png, latent_stats.json')


if __name__ == '__main__':
  cli.run(main)
