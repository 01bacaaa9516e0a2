"""The evaluation from the command line: every task x every method on a held-out split (ge_jax.evaluation).

  python -m ge_jax.evaluate --config=configs/mnist_aug_eval.py                  # results/mnist
  python -m ge_jax.evaluate ... --split=val --n=100 --tasks=denoise-0.3,deblur --nofigures   # tuning
  python -m ge_jax.evaluate ... --tasks=compress --update                       # re-run some tasks
"""

import os
import sys

from ge_jax import interrupts

interrupts.install()  # before the heavy imports: a Ctrl-C while they load ends the process quietly

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from ge_jax import cli, evaluation, tasks as task_table  # noqa: E402
from ge_jax.errors import UserError  # noqa: E402
from ge_jax.methods import METHODS  # noqa: E402

config_flags.DEFINE_config_file('config', 'configs/mnist_aug_eval.py', 'Config file (ml_collections).')
flags.DEFINE_string('workdir', None, 'Trained checkpoints (default runs/<config.name>).')
flags.DEFINE_string('outdir', None, 'Where results go (default config.eval.outdir, else results/<config.name>).')
flags.DEFINE_enum('split', 'test', ['test', 'val'], 'test: the reported numbers; val: tuning.')
flags.DEFINE_integer('n', None, 'Images to use (default: the whole split).')
flags.DEFINE_list('tasks', None, 'Evaluation tasks (default: the 11 of ge_jax.tasks.DEFAULT_TASKS; '
                  'also deblur-noisy, motionblur-noisy).')
flags.DEFINE_list('methods', list(METHODS), 'Methods to run.')
flags.DEFINE_bool('figures', True, 'Write grids, convergence curves and the lambda sweep.')
flags.DEFINE_bool('overwrite', False, 'Replace results already in --outdir.')
flags.DEFINE_bool('update', False, 'Re-run only --tasks and replace their rows in --outdir\'s results '
                  '(after a change of their settings); the other tasks, the sweep and the shift suite stay.')
flags.DEFINE_bool('progress', False, 'Show the solver progress bars.')
flags.DEFINE_bool('other_split', False, 'Evaluate on a split other than the one the networks were trained with '
                  '(they may have seen some of its images).')


@cli.exit_on_user_error
def main(argv):
  f = flags.FLAGS
  config = f.config
  unknown = [m for m in f.methods if m not in METHODS]
  if unknown:
    raise UserError(f'unknown --methods {",".join(unknown)}; choose from {",".join(METHODS)}.')
  workdir = cli.start(argv, config, f.workdir, methods=f.methods)
  outdir = f.outdir or evaluation.default_outdir(config)
  for name in f.tasks or ():
    task_table.get(name)  # a bad name fails before any work
  evaluation.EvalSpec.from_config(config)  # a bad config.eval fails before any work
  command = 'python -m ge_jax.evaluate ' + ' '.join(a for a in sys.argv[1:])
  if f.update:
    if f.overwrite:
      raise UserError('--update keeps the other tasks and --overwrite replaces them all; pick one.')
    before = cli.files_under(outdir) if os.path.isdir(outdir) else set()
    r = evaluation.update(config, workdir, outdir, tasks=f.tasks, n=f.n, split=f.split, methods=f.methods,
                          figures=f.figures, progress=f.progress, command=command, note=config.get('note', ''),
                          other_split=f.other_split)
    cli.record_outputs(outdir, cli.files_under(outdir) - before)  # written in place: theirs to replace later
    print(open(os.path.join(outdir, 'results.md')).read())
    print(f'updated {", ".join(f.tasks)} in {outdir}/results.md, results.json ({r["updates"][-1]["wall_seconds"]:.0f} s)')
    return
  cli.check_outdir(outdir, f.overwrite, 'results.json', carry=evaluation.CARRIED)
  with cli.output_folder(outdir, f.overwrite, 'results.json', carry=evaluation.CARRIED, known=evaluation.OUTPUTS,
                         keep_as=(('NOTE.md', 'NOTE.previous.md'),)) as stage:  # replaced, the user's files kept
    r = evaluation.evaluate(config, workdir, stage, split=f.split, n=f.n, tasks=f.tasks, methods=f.methods,
                            figures=f.figures, progress=f.progress, command=command, note=config.get('note', ''),
                          other_split=f.other_split)
  print(open(os.path.join(outdir, 'results.md')).read())
  print(f'wrote {outdir}/results.md, results.json ({r["wall_seconds"]:.0f} s)')


if __name__ == '__main__':
  cli.run(main)
