"""Pre-trains the GAN and then the autoencoder of a config; re-running resumes.

  python train.py --config=configs/mnist.py [--workdir=runs/mnist] [--config.gan.steps=200]

Uses every device (batches split over them); with --multihost, every host of a pod runs this.
"""

from ge_jax import interrupts

interrupts.install()  # before the heavy imports: a Ctrl-C while they load ends the process quietly

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from ge_jax import cli, parallel, pretrain  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/mnist.py', 'Config file (ml_collections).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where checkpoints, logs and pictures go (default runs/<config.name>).')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show progress bars.')
_MULTIHOST = flags.DEFINE_bool('multihost', None, 'Join a multi-host run (jax.distributed.initialize); run the '
                               'same command on every host. Default: on when JAX_COORDINATOR_ADDRESS or '
                               'GE_JAX_MULTIHOST=1 is set. See docs/SCALE_OUT.md.')


@cli.exit_on_user_error
def main(argv):
  config = _CONFIG.value
  # Training keeps one CPU device: split in two, the GAN step got slower (parallel.split_cpu).
  workdir = cli.start(argv, config, _WORKDIR.value, _MULTIHOST.value, cpu_devices=1)
  mesh = parallel.make_mesh()
  print(f'devices: {parallel.describe()}; global batch sizes: GAN {config.gan.batch_size}, AE {config.ae.batch_size}')
  pretrain.train_and_evaluate(config, workdir, progress=_PROGRESS.value, mesh=mesh)


if __name__ == '__main__':
  cli.run(main)
