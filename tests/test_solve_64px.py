"""The 64x64 path as a user with their own images takes it: train on a folder, then
`solve.py --batch --input=<folder>` on 64x64 RGB (configs/photos64.py) and grayscale
(configs/rock64.py) images, and one clear sentence when the images do not fit the trained model."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import error_line, run_cli

CONFIG = '''from configs import {base}


def get_config():
  c = {base}.get_config()
  c.name = 'tiny_{base}'
  c.data.source = 'folder'
  c.data.path = {path!r}
  c.data.test_size = 4
  c.data.val_size = 4
  c.model.latent_dim = 8
  c.model.g_width = 2
  c.model.d_width = 2
  c.ae.code_dim = 8
  c.ae.width = 2
  for phase in (c.gan, c.ae):
    phase.steps = 4
    phase.batch_size = 4
    phase.ckpt_every = 4
    phase.sample_every = 4
    phase.log_every = 2
  c.solve.steps = 3
  c.solve.n_init = 2
  c.solve.restarts = 1
  c.solve.batch_size = 8
  c.solve.ge_sample.steps = 3
  return c
'''


def _write_folder(folder, n: int, size: int, channels: int, seed: int) -> None:
  """Smooth random images (a few colour blobs), 8-bit PNG."""
  os.makedirs(folder)
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:size, :size] / size
  for i in range(n):
    img = np.zeros((size, size, channels))
    for _ in range(3):
      cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.4)
      img += np.exp(-((yy - cy)**2 + (xx - cx)**2) / r**2)[..., None] * rng.uniform(0.2, 1, channels)
    img = (np.clip(img / img.max(), 0, 1) * 255).astype(np.uint8)
    Image.fromarray(img[..., 0] if channels == 1 else img).save(os.path.join(folder, f'{i:03d}.png'))


@pytest.fixture(scope='module', params=[('photos64', 3), ('rock64', 1)], ids=['rgb', 'grayscale'])
def trained64(request, tmp_path_factory):
  base, channels = request.param
  root = tmp_path_factory.mktemp(f'u64_{base}')
  _write_folder(root / 'train', 24, 64, channels, seed=0)
  cfg = root / f'tiny_{base}.py'
  cfg.write_text(CONFIG.format(base=base, path=str(root / 'train')))
  proc = run_cli('train.py', f'--config={cfg}', f'--workdir={root / "w"}', '--noprogress')
  assert proc.returncode == 0, proc.stderr[-3000:]
  return dict(root=root, cfg=cfg, workdir=root / 'w', channels=channels, base=base)


def test_users_own_64px_folder_is_restored(trained64):
  t = trained64
  mine = t['root'] / 'mine'
  _write_folder(mine, 5, 64, t['channels'], seed=1)
  n = 5
  if t['channels'] == 1:  # a 16-bit micro-CT slice in a subfolder comes back 16-bit, at the same place
    os.makedirs(mine / 'deep')
    Image.fromarray((np.random.default_rng(4).random((64, 64)) * 65535).astype(np.uint16)).save(mine / 'deep' / 's.tif')
    n = 6
  # Already-corrupted images (no task) on the RGB model only: loading the folder, the part that
  # differs between the two models, runs in both models' denoising runs.
  runs = ([('none', [])] if t['channels'] == 3 else []) + [('denoise', ['--task=denoise'])]
  for task, args in runs:
    out = t['root'] / f'out_{task}'
    proc = run_cli('solve.py', '--batch', f'--config={t["cfg"]}', f'--workdir={t["workdir"]}', f'--input={mine}',
                   f'--outdir={out}', '--methods=ae,gan,ge', '--noprogress', *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.load(open(out / 'metrics.json'))
    assert m['task'] == task and m['n_images'] == n
    with np.load(out / 'reconstructions.npz') as f:
      assert f['ge'].shape == (n, 64, 64, t['channels']) and np.isfinite(f['ge']).all()
      recon = {k: f[k] for k in ('ae', 'gan', 'ge')}
    assert os.path.getsize(out / 'grid.png') > 0
    # each restoration as a file like its input: same relative path, size, channels and bit depth
    files = sorted(os.path.relpath(os.path.join(r, f), mine) for r, _, fs in os.walk(mine) for f in fs)
    for method, images in recon.items():
      for rel, x in zip(files, images):
        src, dst = Image.open(mine / rel), Image.open(out / method / rel)
        assert (dst.size, dst.mode, dst.format) == (src.size, src.mode, src.format), (method, rel)
        depth = 65535 if src.mode.startswith('I') else 255
        want = np.round((np.clip(x.astype(np.float64), -1, 1) + 1) / 2 * depth)
        np.testing.assert_array_equal(np.asarray(dst).reshape(want.shape), want)
  # With clean images (a task corrupts them here), the scores are there, rock errors for the rock config.
  ge = m['methods']['ge']
  assert np.isfinite(ge['psnr_mean'])
  assert 'on random features' in proc.stdout and 'accuracy' not in proc.stdout  # no labels: no empty accuracy column
  assert proc.stdout.index('\ninput ') < proc.stdout.index('\nAE only ')  # the input first, then the recommended
  assert ('porosity_error_mean' in ge) == (t['base'] == 'rock64')


def test_images_that_do_not_fit_the_model_are_refused(trained64):
  t = trained64
  small = t['root'] / 'small'
  _write_folder(small, 2, 32, t['channels'], seed=2)
  other = t['root'] / 'other_channels'
  _write_folder(other, 2, 64, 4 - t['channels'], seed=3)
  kind = 'colour (RGB)' if t['channels'] == 3 else 'grayscale'
  for folder, said in ((small, f'is a 32x32 {kind} image'), (other, 'image, but the model')):
    proc = run_cli('solve.py', '--batch', f'--config={t["cfg"]}', f'--workdir={t["workdir"]}', f'--input={folder}',
                   f'--outdir={t["root"] / "never"}', '--noprogress')
    line = error_line(proc)
    assert said in line and f'takes 64x64 {kind} images' in line, line
  assert not os.path.exists(t['root'] / 'never')
