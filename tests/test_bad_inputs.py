"""Every class of bad input: exit status 2, exactly one `error:` line, no traceback, files on disk untouched.

The rows run in three processes (train.py, solve.py, ge_jax.evaluate), each calling the CLI's
`main` once per row with its flags parsed afresh (tests/cli_rows.py), so the table costs a few
process starts, not one per row. A few rows also run as real subprocesses (`test_real_processes`),
through `cli.run`, to check the exit status the shell sees.
"""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, error_line, run_cli

T = '--config=configs/mnist_tiny.py'
S = '{S}'  # the sandbox folder, filled in per session

# (cli, args, a word the error line must contain). {S}/w is a copy of the tiny trained workdir.
TRAIN = [
    ('--config.gan.steps=-5', 'config.gan.steps=-5'),
    ('--config.ae.steps=0', 'config.ae.steps=0'),
    ('--config.gan.lr=0', 'config.gan.lr=0'),
    ('--config.ae.lr=-0.001', 'config.ae.lr'),
    ('--config.gan.lr=nan', 'config.gan.lr'),
    ('--config.gan.batch_size=0', 'config.gan.batch_size=0'),
    ('--config.ae.batch_size=0', 'config.ae.batch_size=0'),
    ('--config.gan.ckpt_every=0', 'config.gan.ckpt_every=0'),
    ('--config.ae.keep=0', 'config.ae.keep=0'),
    ('--config.gan.keep=-1', 'config.gan.keep=-1'),
    ('--config.gan.log_every=0', 'log_every'),
    ('--config.ae.sample_every=0', 'sample_every'),
    ('--config.gan.r1_every=0', 'r1_every'),
    ('--config.gan.b1=1.5', 'config.gan.b1'),
    ('--config.gan.ema_decay=1.0', 'ema_decay'),
    ('--config.ae.generated_fraction=2', 'generated_fraction'),
    ('--config.ae.kind=gan', 'config.ae.kind'),
    ('--config.ae.augment=nois', 'nois'),
    ('--config.ae.code_dim=0', 'code_dim'),
    ('--config.model.latent_dim=0', 'latent_dim'),
    ('--config.model.base_size=5', 'base_size'),
    ('--config.model.g_norm=batch', 'g_norm'),
    ('--config.data.channels=2', 'channels'),
    ('--config.data.test_size=0', 'test_size'),
    ('--config.data.source=web', 'config.data.source'),
    ('--config.solve.steps=0', 'config.solve.steps'),   # a later phase's setting, caught before training
    ('--config.ops.blur_size=4', 'blur_size'),
    ('--config.ops.superres_factor=3', 'superres_factor'),
    ('--config.gan.stepz=3', 'stepz'),
    ('--config={S}/typo_config.py', 'did you mean config.ae.code_dim'),
    ('--config={S}/newkey_config.py', 'config.trainer'),
    ('--config={S}/missing.py', 'cannot load'),
    ('--config=README.md', 'does not load'),
    ('--config=configs', 'cannot load'),
    ('--config={S}/raising_config.py', "raising_config.py' does not load: line 2 raises ZeroDivisionError"),
] + [  # config files that fail: one sentence naming the file, the line and the problem (CONFIG_FILES)
    (f'--config={{S}}/{name}', words) for name, words in [
        ('syntax_config.py', "syntax_config.py' does not load: line 3 is not valid Python"),
        ('wrongtype_config.py', "wrongtype_config.py' does not load: line 5 raises TypeError"),
        ('dict_config.py', "dict_config.py' does not load: its get_config() (line 1) returned dict"),
        ('none_config.py', "none_config.py' does not load: its get_config() (line 1) returned NoneType"),
        ('noget_config.py', "noget_config.py' does not load: it defines no get_config()"),
        ('imports_config.py', "imports_config.py' does not load: line 1 raises ModuleNotFoundError"),
    ]
] + [
    ('--workdir=', '--workdir'),
    ('--workdir={S}/afile', 'is a file'),
    ('--workdir={S}/afile/sub', 'which is a file'),
    ('stray_argument', 'unexpected argument'),
    ('--config.data.source=folder --config.data.path={S}/nope', 'nope'),
    ('--config.data.source=folder --config.data.path={S}/empty', 'empty'),
    ('--config.data.source=folder --config.data.path={S}/small --config.data.resize=False',
     'is 32x32 but the config expects 28x28'),
    ('--config.data.source=folder --config.data.path={S}/small --config.data.channels=3', 'channels'),
    ('--config.data.source=folder --config.data.path={S}/broken', 'broken.png'),
    ('--config.data.source=npz --config.data.path={S}/text.npz', 'text.npz'),
    ('--config.data.path={S}/small', 'no effect'),  # source still 'auto': the folder would be ignored
    ('--config.ae.kl_weight=0.1', 'no effect'),
    ('--workdir={S}/w --config.ae.code_dim=3', 'different config (ae.code_dim'),
    ('--workdir={S}/w --config.ae.lr_schedule=cosine', "ae.lr_schedule: saved 'constant', now 'cosine'"),
    ('--workdir={S}/damaged', 'no intact checkpoint'),
]
SOLVE = [
    ('--task=blur', 'blur'),
    ('--task=', '--task'),
    ('--task=deblur --config.ops.blur_size=4', 'blur_size'),
    ('--workdir={S}/none', 'train first'),
    ('--workdir={S}/damaged', 'no intact checkpoint'),
    ('--config.model.latent_dim=8', 'different config'),
    ('--input={S}/nan.npz', 'NaN'),
    ('--input={S}/big.npz', '28'),
    ('--input={S}/rgb.npz', 'channel'),
    ('--input={S}/range.npz', 'range'),
    ('--input={S}/binary.npz', '255'),
    ('--input={S}/const.npz', 'constant'),
    ('--input={S}/onlyclean.npz --task=none', "'clean'"),
    ('--input={S}/foo.npz', "'corrupted'"),
    ('--input={S}/text.npz', 'not a readable'),
    ('--input={S}/nofile.npz', 'does not exist'),
    ('--input={S}/empty', 'empty'),
    ('--input=', '--input'),
    ('--input={S}/small/0.png', 'folder'),
    ('--input={S}/small', '32x32 grayscale image, but the model'),
    ('--input={S}/rgb28', '28x28 colour (RGB) image, but the model'),
    ('--task=none', '--input'),
    ('--outdir=/proc/ge_jax_results', 'cannot write'),
    ('--input={S}/ok.npz --n=3', '--n'),
    ('--n=100000', 'test split'),
    ('--n=0', '--n=0'),
    ('--n=-3', '--n=-3'),
    ('--methods=', '--methods'),
    ('--methods=ge,foo', 'foo'),
    ('--outdir=', '--outdir'),
    ('--outdir={S}/afile', 'is a file'),
    ('--outdir={S}/afile/sub', 'which is a file'),
    ('--outdir={S}/done', 'overwrite'),
    ('--outdir={S}/userfiles', 'other files'),
    ('--index=3', '--index'),  # with --batch
    ('--task=deblur --config.solve.task=inpaint', 'no effect'),
    ('--n=5 --config.solve.n_images=8', 'no effect'),
    ('--config.solve.lam=0.5', '--config.solve.lam'),  # gone: one weight per method (lam_ge, lam_gan, ...)
    ('--config.solve.ge_sample.lam=0', 'config.solve.ge_sample.lam'),
    ('--config.solve.ge_sample.output=median', 'config.solve.ge_sample.output'),
    ('--methods=ge,ge_smaple', 'ge_smaple'),
    ('--config.solve.steps=-1', 'config.solve.steps'),
    ('--config.solve.restarts=0', 'config.solve.restarts'),
    ('--config.solve.lr=0', 'config.solve.lr'),
    ('--config.solve.prior=l3', 'config.solve.prior'),
    ('--config.solve.output=mean --config.solve.restarts=1', 'restarts'),
    ('--config.solve.batch_size=0', 'config.solve.batch_size'),
    ('--config.solve.lam_ge=-1', 'lam_ge'),
    ('--config.solve.n_init=-1', 'n_init'),
    ('--config.solve.solver=adam', 'solver'),
    ('--input={S}/ok.npz --task=denoise', "'corrupted' array"),          # the observation is not re-corrupted
    ('--input={S}/both.npz --task=deblur', "'corrupted' array"),         # nor dropped for 'clean' corrupted anew
    ('--task=denoise --config.ops.blur_sigma=2', 'no effect'),           # another task's operator setting
    ('--input={S}/ok.npz --config.ops.denoise_sigma=0.5', 'no effect'),  # --task=none corrupts nothing
    ('--task=compress --methods=gan,ge', 'cannot run'),                  # named, but cannot apply
    ('--input={S}/ok.npz --methods=ge,csgm', 'cannot run'),              # the operator is unknown
    ('--input={S}/mask01', '0/1 mask'),                                  # a folder as refused as the npz
    ('--input={S}/blank', 'constant'),
    ('--config.data.source=builtin --config.data.tfds_data_dir={S}/tfds', 'no effect'),
    ('--config.data.crop=random', 'no effect'),
    ('--config.data.test_size=50', 'data.test_size'),                     # not the split trained with
    ('--input={S}/ok.npz --other_split', '--other_split'),
    ('--config={S}/syntax_config.py', "syntax_config.py' does not load: line 3"),
    ('--config={S}/wrongtype_config.py', "wrongtype_config.py' does not load: line 5 raises TypeError"),
    ('--config={S}/dict_config.py', "dict_config.py' does not load: its get_config() (line 1) returned dict"),
    ('--config={S}/raising_config.py', "raising_config.py' does not load: line 2 raises ZeroDivisionError"),
]
SINGLE = [  # solve.py without --batch
    ('--index=100000', 'outside'),
    ('--index=-1', 'outside'),
    ('--n=5', '--n'),  # --n without --batch
]
EVALUATE = [
    ('--tasks=nope', 'unknown evaluation task'),
    ('--tasks=', '--tasks'),
    ('--outdir={S}/afile', 'is a file'),
    ('--outdir={S}/evaldone', 'overwrite'),
    ('--n=0', '--n=0'),
    ('--config.eval.sweep_lams=a,b', 'sweep_lams'),
    ('--config.gan.steps=-1', 'config.gan.steps'),
    ('--split=train', 'split'),
    ('--config.eval.sweep_task=denoise-0.3 --config.eval.sweep_n=0', 'sweep_n'),
    ('--config.eval.record_every=-1', 'record_every'),
    ('--methods=', '--methods'),
    ('--workdir={S}/none', 'train first'),
    ('--update --overwrite', 'pick one'),
    ('--update', 'no results.json to update'),
    ('--config.data.val_size=50', 'data.val_size'),                      # not the split trained with
    ('--methods=ae,foo', 'unknown --methods foo'),
    ('--config.eval.shift_methods=ge_smaple', "config.eval.shift_methods names an unknown method 'ge_smaple'"),
    ("--config.eval.shift_tasks=('denoise-0.3','nope') --config.eval.shift_n=2",
     "shift_tasks names an unknown evaluation task 'nope'"),
    ('--config.eval.shift_n=4', 'config.eval.shift_n=4 has no effect'),
    ("--config.eval.shift_tasks=('denoise-0.3',) --config.eval.shift_n=2 --config.eval.shift_methods=('gan',) "
     '--methods=ae',
     'config.eval.shift_methods (gan) names none of the methods this run runs'),
    ('--figures --config.data.val_size=1 --other_split', "config.eval.sweep_task='denoise-0.3' runs the lambda sweep"),
    ('--config.eval.sweep_lams=(0.1,-1.0)', 'sweep_lams has -1'),
    ('--config={S}/syntax_config.py', "syntax_config.py' does not load: line 3"),
    ('--config={S}/wrongtype_config.py', "wrongtype_config.py' does not load: line 5 raises TypeError"),
    ('--config={S}/none_config.py', "none_config.py' does not load: its get_config() (line 1) returned NoneType"),
    ('--config={S}/raising_config.py', "raising_config.py' does not load: line 2 raises ZeroDivisionError"),
]


# Config files that fail in each way a config file can (the rows above name the file and line).
CONFIG_FILES = {
    'syntax_config.py': 'from configs import mnist_tiny\n\ndef get_config(:\n  return mnist_tiny.get_config()\n',
    'wrongtype_config.py': ('from configs import mnist_tiny\n\ndef get_config():\n  c = mnist_tiny.get_config()\n'
                            '  c.gan.steps = "many"\n  return c\n'),
    'dict_config.py': 'def get_config():\n  return dict(name="mine")\n',
    'none_config.py': 'def get_config():\n  c = 1\n',
    'noget_config.py': 'CONFIG = 1\n',
    'imports_config.py': 'import configs.no_such_config\n\ndef get_config():\n  return None\n',
}


def _rows():
  rows = [('train', ['train.py', T] + a.split() + ([] if '--workdir' in a else ['--workdir={S}/fresh']), w)
          for a, w in TRAIN]
  rows += [('solve', ['solve.py', '--batch', T] + a.split() + ([] if '--workdir' in a else ['--workdir={S}/w'])
            + ([] if '--outdir' in a else ['--outdir={S}/out']), w) for a, w in SOLVE]
  rows += [('solve', ['solve.py', T, '--workdir={S}/w', '--outdir={S}/out'] + a.split(), w) for a, w in SINGLE]
  rows += [('evaluate', ['-m', 'ge_jax.evaluate', T, '--n=4', '--tasks=denoise-0.3', '--nofigures']
            + a.split() + ([] if '--workdir' in a else ['--workdir={S}/w'])
            + ([] if '--outdir' in a else ['--outdir={S}/eout']), w) for a, w in EVALUATE]
  return rows


ROWS = _rows()


def _make_sandbox(root, tiny_workdir):
  s = str(root)
  shutil.copytree(tiny_workdir, f'{s}/w')
  shutil.copytree(tiny_workdir, f'{s}/damaged')
  for step_dir in ('gan/checkpoints/20', 'gan/checkpoints/40'):
    with open(f'{s}/damaged/{step_dir}/state/_METADATA', 'w'):
      pass  # empty: every GAN step damaged
  open(f'{s}/afile', 'w').write('a file, not a folder')
  os.makedirs(f'{s}/empty')
  os.makedirs(f'{s}/small')
  os.makedirs(f'{s}/broken')
  for i in range(4):
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(f'{s}/small/{i}.png')
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(f'{s}/broken/{i}.png')
  os.makedirs(f'{s}/rgb28')
  Image.fromarray(np.full((28, 28, 3), 90, np.uint8)).save(f'{s}/rgb28/0.png')
  open(f'{s}/broken/broken.png', 'wb').write(b'not a png')
  open(f'{s}/text.npz', 'w').write('not an npz')
  rng = np.random.default_rng(0)
  ok = rng.uniform(0, 1, (3, 28, 28)).astype(np.float32)
  np.savez(f'{s}/ok.npz', corrupted=ok)
  np.savez(f'{s}/nan.npz', corrupted=np.full((3, 28, 28), np.nan, np.float32))
  np.savez(f'{s}/big.npz', corrupted=rng.uniform(0, 1, (3, 32, 32)).astype(np.float32))
  np.savez(f'{s}/rgb.npz', corrupted=rng.uniform(0, 1, (3, 28, 28, 3)).astype(np.float32))
  np.savez(f'{s}/range.npz', corrupted=np.full((3, 28, 28), 7.0, np.float32))
  np.savez(f'{s}/binary.npz', corrupted=(rng.uniform(0, 1, (3, 28, 28)) > 0.5).astype(np.uint8))
  np.savez(f'{s}/const.npz', corrupted=np.full((3, 28, 28), 0.5, np.float32))
  np.savez(f'{s}/onlyclean.npz', clean=ok)
  np.savez(f'{s}/foo.npz', foo=ok)
  np.savez(f'{s}/both.npz', clean=ok, corrupted=ok)
  for name, image in (('mask01', lambda i: (rng.uniform(0, 1, (28, 28)) > 0.5).astype(np.uint8)),
                      ('blank', lambda i: np.full((28, 28), 255, np.uint8))):
    os.makedirs(f'{s}/{name}')
    for i in range(3):
      Image.fromarray(image(i)).save(f'{s}/{name}/{i}.png')
  os.makedirs(f'{s}/done')
  open(f'{s}/done/metrics.json', 'w').write('{}')
  os.makedirs(f'{s}/evaldone')
  open(f'{s}/evaldone/results.json', 'w').write('{}')
  os.makedirs(f'{s}/userfiles')
  open(f'{s}/userfiles/thesis.tex', 'w').write('precious')
  open(f'{s}/typo_config.py', 'w').write(
      'from configs import mnist_tiny\n\ndef get_config():\n  c = mnist_tiny.get_config()\n'
      '  c.ae.code_dimm = 16\n  return c\n')
  open(f'{s}/raising_config.py', 'w').write('def get_config():\n  return 1 / 0\n')
  for name, text in CONFIG_FILES.items():
    open(f'{s}/{name}', 'w').write(text)
  open(f'{s}/newkey_config.py', 'w').write(
      'import ml_collections\nfrom configs import mnist_tiny\n\ndef get_config():\n  c = mnist_tiny.get_config()\n'
      '  c.trainer = ml_collections.ConfigDict(dict(steps=5))\n  return c\n')
  return s


@pytest.fixture(scope='module')
def table(tiny_workdir, tmp_path_factory):
  """Runs every row (three processes in parallel); returns {row index: result}."""
  work = tmp_path_factory.mktemp('rows')
  groups, sandboxes = {}, {}
  for i, (which, args, _) in enumerate(ROWS):
    if which not in sandboxes:  # one per process, so that each watches only its own rows' effects
      sandboxes[which] = _make_sandbox(tmp_path_factory.mktemp(f'sandbox_{which}'), tiny_workdir)
    args = [a.replace(S, sandboxes[which]) for a in args]
    groups.setdefault(which, []).append((i, args[2:] if args[0] == '-m' else args[1:]))

  def run(which):
    sandbox = sandboxes[which]
    rows_path, out_path = str(work / f'{which}.rows.json'), str(work / f'{which}.out.json')
    json.dump([a for _, a in groups[which]], open(rows_path, 'w'))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'cli_rows.py'), which, rows_path, out_path,
                           sandbox], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, GE_JAX_CPU_DEVICES='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {i: r for (i, _), r in zip(groups[which], json.load(open(out_path)))}

  with ThreadPoolExecutor(3) as pool:
    results = {}
    for part in pool.map(run, groups):
      results.update(part)
  return results


def test_the_table_is_big_enough():
  assert len(ROWS) >= 60


@pytest.mark.parametrize('index', range(len(ROWS)), ids=[f'{w}:{" ".join(a[2 if a[0] == "-m" else 1:])[:60]}'
                                                          for w, a, _ in ROWS])
def test_row(table, index):
  which, args, word = ROWS[index]
  r = table[index]
  assert not r['traceback'], r['traceback']
  assert 'Traceback' not in r['stderr'], r['stderr']
  assert r['code'] == 2, (r['code'], r['stderr'], r['stdout'][-1000:])
  lines = [l for l in r['stderr'].splitlines() if l.startswith('error:')]
  assert len(lines) == 1, r['stderr']
  assert word.lower() in lines[0].lower(), lines[0]
  assert not r['changed'], f'files on disk changed: {r["changed"]}'


@pytest.mark.parametrize('args', [
    ['train.py', T, '--config.gan.steps=-5'],
    ['train.py', '--config={tmp}/wrongtype_config.py'],
    ['solve.py', '--batch', '--config={tmp}/none_config.py'],
    ['-m', 'ge_jax.evaluate', '--config={tmp}/wrongtype_config.py'],
    ['solve.py', '--batch', T, '--n=0'],
    ['-m', 'ge_jax.evaluate', T, '--tasks=nope'],
])
def test_real_processes(args, tmp_path):
  """The same answers through `python <cli>` itself: status 2 seen by the shell, one line, no noise."""
  for name, text in CONFIG_FILES.items():
    (tmp_path / name).write_text(text)
  args = [a.replace('{tmp}', str(tmp_path)) for a in args]
  proc = run_cli(*args, f'--workdir={tmp_path}/w', f'--outdir={tmp_path}/o')
  error_line(proc)
  assert [l for l in proc.stderr.splitlines() if l.strip()] == [error_line(proc)], proc.stderr
