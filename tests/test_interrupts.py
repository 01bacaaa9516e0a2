"""Ctrl-C at random moments: the last completed step is saved, exit 130, one line, and a rerun resumes."""

import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

LONG = ['train.py', '--config=configs/mnist_tiny.py', '--noprogress', '--config.gan.steps=100000',
        '--config.gan.ckpt_every=25', '--config.gan.log_every=5']


def _start(workdir):
  env = dict(os.environ, PYTHONUNBUFFERED='1')
  return subprocess.Popen([sys.executable, *LONG, f'--workdir={workdir}'], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_training(proc, workdir, timeout=180):
  """Returns once the GAN loop has logged a step (the process is inside the loop)."""
  log = os.path.join(workdir, 'gan', 'log.jsonl')
  deadline = time.time() + timeout
  start = os.path.getsize(log) if os.path.exists(log) else 0
  while time.time() < deadline and proc.poll() is None:
    if os.path.exists(log) and os.path.getsize(log) > start:
      return
    time.sleep(0.05)
  raise AssertionError(f'training did not start: {proc.poll()}')


def _one_line(stderr):
  lines = [l for l in stderr.splitlines() if l.strip()]
  assert 'Traceback' not in stderr, stderr[-3000:]
  assert len(lines) == 1 and lines[0].startswith('interrupted'), stderr[-3000:]
  return lines[0]


def _steps(workdir):
  d = os.path.join(workdir, 'gan', 'checkpoints')
  return sorted(int(s) for s in os.listdir(d) if s.isdigit())


@pytest.mark.parametrize('tries', [2, pytest.param(12, marks=pytest.mark.slow)])
def test_ctrl_c_at_random_moments_saves_the_last_step_and_resumes(tmp_path, tries):
  rng = random.Random()
  w = str(tmp_path / 'w')
  saved = 0
  for attempt in range(tries):
    proc = _start(w)
    _wait_for_training(proc, w)
    time.sleep(rng.uniform(0.0, 1.5))  # mid-step, mid-save or mid-log
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, err[-3000:])
    line = _one_line(err)
    step = int(re.search(r'step (\d+) of', line).group(1))
    assert step > saved and step in _steps(w), (line, _steps(w))
    if attempt:
      assert f'resuming from step {saved} ' in out, out[-2000:]
    saved = step


def test_second_ctrl_c_exits_at_once(tmp_path):
  w = str(tmp_path / 'w')
  proc = _start(w)
  _wait_for_training(proc, w)
  proc.send_signal(signal.SIGINT)
  time.sleep(0.02)
  proc.send_signal(signal.SIGINT)
  t0 = time.time()
  _, err = proc.communicate(timeout=60)
  assert proc.returncode == 130 and time.time() - t0 < 10, (proc.returncode, err[-3000:])
  assert 'Traceback' not in err and 'Exception' not in err, err[-3000:]
  assert 1 <= len([l for l in err.splitlines() if l.strip()]) <= 2, err


@pytest.mark.parametrize('delay', [1.0, 2.0, 4.0])
def test_ctrl_c_while_starting(tmp_path, delay):
  """Before the loop (imports, data, compilation): exit 130 with one line and nothing half-written.

  (Not earlier than 1 s: Python's own start-up, before the first line of train.py, is out of reach.)
  """
  w = str(tmp_path / 'w')
  proc = _start(w)
  time.sleep(delay)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, (proc.returncode, err[-3000:])
  _one_line(err)
  ck = os.path.join(w, 'gan', 'checkpoints')
  if os.path.isdir(ck):
    assert all(s.isdigit() or s.endswith('.json') for s in os.listdir(ck)) or not os.listdir(ck), os.listdir(ck)
