"""train.py as a user runs it: a tiny run, resume, kill -9, and bad input."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, error_line as _error_line, run_cli

TINY = '--config=configs/mnist_tiny.py'




def test_tiny_run_then_rerun_resumes_without_retraining(tmp_path):
  w = str(tmp_path / 'w')
  t0 = time.time()
  first = run_cli('train.py', TINY, f'--workdir={w}', '--noprogress')
  assert first.returncode == 0, first.stderr[-3000:]
  assert time.time() - t0 < 120  # the issue asks < 60 s on an idle machine; CI may be loaded
  for phase in ('gan', 'ae'):
    assert os.path.isdir(os.path.join(w, phase, 'checkpoints', '40'))
    assert os.path.exists(os.path.join(w, phase, 'log.jsonl'))
  assert os.path.exists(os.path.join(w, 'gan', 'samples.png'))
  assert 'PSNR' in first.stdout
  second = run_cli('train.py', TINY, f'--workdir={w}', '--noprogress')
  assert second.returncode == 0, second.stderr[-3000:]
  assert '[gan] already trained' in second.stdout and '[ae] already trained' in second.stdout
  # (another AE learning-rate schedule on a trained workdir: a row of tests/test_bad_inputs.py)


def test_kill_minus_9_then_rerun_resumes(tmp_path):
  w = str(tmp_path / 'w')
  cmd = [sys.executable, 'train.py', TINY, f'--workdir={w}', '--noprogress', '--config.gan.steps=300',
         '--config.gan.ckpt_every=10', '--config.gan.log_every=10']
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  first_ckpt = os.path.join(w, 'gan', 'checkpoints', '10')
  deadline = time.time() + 120
  while not os.path.isdir(first_ckpt) and time.time() < deadline and proc.poll() is None:
    time.sleep(0.05)
  assert proc.poll() is None, 'training ended before it could be killed'
  time.sleep(random.uniform(0.0, 1.5))  # a random moment: mid-step or mid-save
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'resuming from step' in again.stdout or 'already trained' in again.stdout, again.stdout
  steps = [json.loads(l)['step'] for l in open(os.path.join(w, 'gan', 'log.jsonl'))]
  assert steps == list(range(10, 301, 10))  # nothing repeated, nothing skipped
  assert os.path.isdir(os.path.join(w, 'ae', 'checkpoints', '40'))


@pytest.mark.slow  # the same rows run in tests/test_bad_inputs.py's table, in one process
def test_unknown_config_key(tmp_path):
  line = _error_line(run_cli('train.py', TINY, '--config.gan.stepz=3', f'--workdir={tmp_path}'))
  assert 'stepz' in line


@pytest.mark.slow  # the same rows run in tests/test_bad_inputs.py's table, in one process
def test_workdir_of_another_config(tiny_workdir):
  line = _error_line(run_cli('train.py', TINY, '--config.ae.code_dim=3', f'--workdir={tiny_workdir}'))
  assert 'ae.code_dim' in line and 'different config' in line


@pytest.mark.slow  # the same rows run in tests/test_bad_inputs.py's table, in one process
def test_missing_and_empty_image_folder(tmp_path):
  line = _error_line(run_cli('train.py', TINY, '--config.data.source=folder',
                             f'--config.data.path={tmp_path}/nope', f'--workdir={tmp_path}/w'))
  assert 'nope' in line
  (tmp_path / 'empty').mkdir()
  line = _error_line(run_cli('train.py', TINY, '--config.data.source=folder',
                             f'--config.data.path={tmp_path}/empty', f'--workdir={tmp_path}/w'))
  assert 'empty' in line


@pytest.mark.slow  # the same rows run in tests/test_bad_inputs.py's table, in one process
def test_images_of_wrong_size_channels_or_unreadable(tmp_path):
  folder = tmp_path / 'imgs'
  folder.mkdir()
  for i in range(5):
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / f'{i}.png')
  args = [TINY, '--config.data.source=folder', f'--config.data.path={folder}', f'--workdir={tmp_path}/w']
  line = _error_line(run_cli('train.py', *args, '--config.data.resize=False'))
  assert '32' in line and '28' in line
  line = _error_line(run_cli('train.py', *args, '--config.data.channels=3'))
  assert 'channels' in line
  (folder / 'broken.png').write_bytes(b'not a png')
  line = _error_line(run_cli('train.py', *args))
  assert 'broken.png' in line
