"""Restores corrupted images with the Generative Encoder (and the AE, GAN and CSGM baselines).

  python solve.py --batch                       # after `python train.py`: 64 test images, --task=denoise
  python solve.py --batch --task=inpaint --n=500 --config.ops.inpaint_mode=pixels
  python solve.py --batch --input=mine.npz      # arrays `corrupted` (and optionally `clean`)
  python solve.py --index=7                     # one image, the objective per step as the original did

Writes reconstructions.npz, grid.png and metrics.json to --outdir (default <workdir>/solve/<task>);
with --input=<image folder>, also each restoration as an image file of the input's name, size,
channels and bit depth, one folder per method (<outdir>/<method>/). The recommended method for the
task comes first in the table and the grid. With --batch the images are split over every device
(and every host with --multihost).
"""

import os
import sys

from ge_jax import interrupts

interrupts.install()  # before the heavy imports: a Ctrl-C while they load ends the process quietly

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from ge_jax import api, cli, data, data_files, experiment, load, methods, operators, parallel, perception  # noqa: E402
from ge_jax import user_input  # noqa: E402
from ge_jax.errors import UserError  # noqa: E402
from ge_jax.methods import METHODS  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/mnist.py', 'Config file (ml_collections).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where train.py left its checkpoints (default runs/<config.name>).')
_OUTDIR = flags.DEFINE_string('outdir', None, 'Where results go (default <workdir>/solve/<task>).')
_BATCH = flags.DEFINE_bool('batch', False, 'Solve a whole batch in parallel (else one image, --index).')
_INDEX = flags.DEFINE_integer('index', 0, 'Without --batch: which test image to solve.')
_TASK = flags.DEFINE_string('task', None, 'Corruption: denoise|speckle|saltpepper|deblur|motionblur|inpaint|'
                            'superres|compress|none (default config.solve.task; none with --input).')
_N = flags.DEFINE_integer('n', None, 'Number of test images (default config.solve.n_images).')
_INPUT = flags.DEFINE_string('input', None, '.npz with `corrupted` (and optionally `clean`), or an image folder.')
_METHODS = flags.DEFINE_list('methods', list(METHODS), 'Methods to run (ge_jax/methods.py).')
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Replace results already in --outdir.')
_OTHER_SPLIT = flags.DEFINE_bool('other_split', False, 'Score test images of a split other than the one the '
                                 'networks were trained with (they may have seen some of them).')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show progress bars.')
_MULTIHOST = flags.DEFINE_bool('multihost', None, 'Join a multi-host run (jax.distributed.initialize); run the '
                               'same command on every host. Default: on when JAX_COORDINATOR_ADDRESS or '
                               'GE_JAX_MULTIHOST=1 is set. See docs/SCALE_OUT.md.')


def _realism(model, workdir: str, ds, labels, clean) -> tuple[list, object]:
  """(extractors, labels) for the realism scores: the fixed random CNN always; the project's
  classifier (FD on its features, and accuracy) when it is already trained in the workdir."""
  if clean is None or len(clean) < 2:
    return [], None
  extractors = [perception.random_extractor(model.image_shape)]
  if ds is not None and labels is not None and os.path.exists(os.path.join(workdir, 'classifier', 'params.msgpack')):
    return [perception.classifier_extractor(workdir, ds)] + extractors, labels
  if ds is not None and labels is not None:
    print(f'note: realism on random-CNN features only; `python -m ge_jax.classify --workdir={workdir}` '
          'trains the classifier once, after which FD on its features and accuracy are reported too.')
  return extractors, None


def _write_images(folder: str, out, stage: str, outdir: str) -> list[str]:
  """Each restoration of a folder's images as a file like its input (name, size, channels, bit
  depth), one folder per method: <outdir>/<method>/<the input's relative path>; returns the folders."""
  files = data_files.list_images(folder)
  files = [files[i] for i in out.indices]  # the images solved (one with --index)
  for name, images in out.recon.items():
    for rel, image in zip(files, images):
      data_files.write_like(os.path.join(folder, rel), np.nan_to_num(image, nan=-1.0), os.path.join(stage, name, rel))
  return [os.path.join(outdir, name) + os.sep for name in out.recon]


@cli.exit_on_user_error
def main(argv):
  config = _CONFIG.value
  chosen = list(dict.fromkeys(_METHODS.value))
  unknown = [m for m in chosen if m not in METHODS]
  if unknown:
    raise UserError(f'unknown --methods {",".join(unknown)}; choose from {",".join(METHODS)}.')
  workdir = cli.start(argv, config, _WORKDIR.value, _MULTIHOST.value, methods=chosen)
  task = _TASK.value or ('none' if _INPUT.value is not None else config.solve.task)
  if task not in operators.TASKS:
    raise UserError(f'unknown --task {task!r}; choose one of {", ".join(operators.TASKS)}.')
  if task == 'none' and _INPUT.value is None:
    raise UserError('--task=none restores images that are already corrupted: give them with --input '
                    '(an .npz or an image folder), or pick a task to corrupt the test images.')
  if _INPUT.value is None and _N.value is not None and _N.value < 1:
    raise UserError(f'--n={_N.value} must be at least 1.')
  for flag, key in (('task', 'config.solve.task'), ('n', 'config.solve.n_images')):
    if flags.FLAGS[flag].present and key in flags.FLAGS and flags.FLAGS[key].present:
      raise UserError(f'--{flag} and --{key} both given; --{flag} wins, so --{key} has no effect (give one).')
  if _BATCH.value and flags.FLAGS['index'].present:
    raise UserError('--index picks the one image solved without --batch; with --batch it has no effect (leave it out).')
  if _INPUT.value is not None and _OTHER_SPLIT.value:
    raise UserError('--other_split is about the test split; with --input your own images are restored (leave it out).')
  if _INPUT.value is not None and _N.value is not None:
    raise UserError('--n picks test images; with --input every image of the input is solved (leave --n out).')
  if not _BATCH.value and _N.value is not None:
    raise UserError('--n sets how many test images --batch restores; without --batch one image (--index) is '
                    'solved, so it has no effect (add --batch, or leave --n out).')
  shape = (config.data.image_size,) * 2 + (config.data.channels,)
  used = operators.keys_read(task, config.ops, shape)
  idle = sorted(k for k in config.ops if f'config.ops.{k}' in flags.FLAGS and flags.FLAGS[f'config.ops.{k}'].present
                and k not in used)
  if idle:
    raise UserError(f'--config.ops.{idle[0]} has no effect on --task={task}, which reads '
                    f'{", ".join(f"config.ops.{k}" for k in sorted(used)) or "no operator setting"}; leave it out.')
  facts = methods.Task.of(task, operators.make(task, config.ops, shape), config.ops)
  if flags.FLAGS['methods'].present:  # named by the user: each must be able to run on this task
    blocked = {m.name: why for m in methods.select(chosen) if (why := m.why_not(facts))}
    if blocked:
      raise UserError(f'--methods: cannot run on --task={task}: '
                      + '; '.join(f'{k} ({v})' for k, v in blocked.items()) + '; leave them out.')
  outdir = _OUTDIR.value or os.path.join(workdir, 'solve', task if _BATCH.value else f'{task}_single')
  cli.check_outdir(outdir, _OVERWRITE.value, 'metrics.json')  # before the work, not after
  mesh = parallel.make_mesh()
  model = api.load(workdir, config, mesh=mesh)  # parameters replicated on every device

  indices, ds, labels = None, None, None
  if _INPUT.value is not None:
    clean, corrupted = user_input.load(_INPUT.value, config, task, workdir)
  else:
    ds = data.load(config.data)
    load.check_split(config, workdir, ds, allow_other=_OTHER_SPLIT.value)  # held-out images that are held out
    n = _N.value if _N.value is not None else config.solve.n_images
    if n < 1 or n > len(ds.test):
      raise UserError(f'--n={n} but the test split has {len(ds.test)} images; pick 1..{len(ds.test)}.')
    clean, corrupted, indices = ds.test[:n], None, np.arange(n)
    labels = None if ds.test_labels is None else np.asarray(ds.test_labels)[:n]
    print(f'data: {len(clean)} held-out test images from {ds.source}')

  if not _BATCH.value:  # one image, shown step by step
    base = clean if clean is not None else corrupted
    k = _INDEX.value
    if not 0 <= k < len(base):
      raise UserError(f'--index={k} is outside the {len(base)} available images.')
    pick = lambda a: None if a is None else a[k:k + 1]
    clean, corrupted, indices, labels = pick(clean), pick(corrupted), np.array([k]), pick(labels)

  # --batch: images (padded to a multiple of the device count) are split over all devices.
  place = parallel.solver_place(mesh) if _BATCH.value else None
  primary = parallel.is_primary()
  out = api.restore(model, clean, task=task, corrupted=corrupted, indices=indices, methods=chosen,
                    progress=_PROGRESS.value and primary, place=place, strict=flags.FLAGS['methods'].present)
  if not primary:  # every process solved its share; process 0 writes the results
    return
  scores = api.score(out, *_realism(model, workdir, ds, labels, clean), domain_metrics=api.domain_metrics(model))
  if not _BATCH.value and 'ge' in out.loss_trace:
    trace = out.loss_trace['ge'][0]
    every = max(1, len(trace) // 20)
    print('GE objective per step (best restart):')
    for t in list(range(0, len(trace), every)) + [len(trace) - 1]:
      print(f'  step {t:5d}  {trace[t]:.6g}')
  first = methods.recommended(task)
  folders = []
  with cli.output_folder(outdir, _OVERWRITE.value, 'metrics.json') as stage:  # replaced whole, never mixed
    paths = experiment.save(out, stage, scores, first=first)
    if _INPUT.value is not None and os.path.isdir(_INPUT.value):
      folders = _write_images(_INPUT.value, out, stage, outdir)
  print(experiment.table(scores, first))
  print(f'wrote {", ".join(os.path.join(outdir, os.path.basename(p)) for p in paths.values())}')
  if folders:
    print(f'restored images, one folder per method (as the input files): {", ".join(folders)}')
  if any(out.diverged.values()):
    print(f'warning: some solves diverged (non-finite): {out.diverged}', file=sys.stderr)


if __name__ == '__main__':
  cli.run(main)
