"""Trains the project classifier in a workdir (once) and scores G's samples on its features.

  python -m ge_jax.classify --config=configs/mnist.py --workdir=runs/mnist

Writes <workdir>/classifier/ (its parameters) and sample_quality.json (ge_jax.sample_quality).
"""

import os

from ge_jax import interrupts

interrupts.install()  # before the heavy imports: a Ctrl-C while they load ends the process quietly

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from ge_jax import cli, sample_quality  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/mnist.py', 'Config file (ml_collections).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Trained checkpoints (default runs/<config.name>).')
_N = flags.DEFINE_integer('n', None, 'Number of G samples (default: the size of the test split).')
_STEPS = flags.DEFINE_integer('steps', 1500, 'Classifier training steps (only when not cached).')


@cli.exit_on_user_error
def main(argv):
  config = _CONFIG.value
  workdir = cli.start(argv, config, _WORKDIR.value, cpu_devices=1)  # training: one CPU device (parallel.split_cpu)
  r = sample_quality.sample_quality(config, workdir, n_samples=_N.value, steps=_STEPS.value)
  print(f'classifier test accuracy: {r["test_accuracy"]}')
  print(f'Frechet distance (classifier features), test vs G: {r["fd_test_vs_g"]:.3f} '
        f'(real vs real, test vs val: {r["fd_test_vs_val"]:.3f})')
  print(f'mean max-softmax confidence: G samples {r["confidence_g"]:.3f}, test images {r["confidence_test"]:.3f}')
  print(f'G samples per predicted class: {r["class_histogram_g"]}')
  print(f'wrote {os.path.join(workdir, "classifier", "sample_quality.json")}')


if __name__ == '__main__':
  cli.run(main)
