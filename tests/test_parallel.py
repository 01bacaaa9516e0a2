"""Multi-device and multi-host behaviour, on CPU.

This pytest process has one CPU device. The 8-device checks run in one child process started with
XLA_FLAGS=--xla_force_host_platform_device_count=8 (`python tests/test_parallel.py child DIR`); the
multi-host check runs train.py as 2 processes x 2 devices joined by jax.distributed. Both write
their results to DIR, and the tests here compare them with this process's one-device results.
"""

import json
import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_SOLVE = 13  # not a multiple of 8: the solver pads to 16 and drops the padding
TASK, METHODS = 'inpaint', ('ge', 'csgm')  # csgm: per-image operator parameters are sharded too
ONE_DONE = 'one.done'  # written when the 1-device run is trained, so the child can restore it
EIGHT = '--xla_force_host_platform_device_count=8'


# The tiny config cut to a few steps (1 vs 8 devices must agree to float tolerance), as one table for
# the in-process config and the CLIs' flags. GAN batches (16) split over 8 devices; the AE's 12 real
# images per batch (of 24) do not, so the AE phase trains with its batch replicated: both cases are
# compared with one device.
SHORT = {f'{phase}.{k}': v for phase in ('gan', 'ae')
         for k, v in (('steps', 4), ('ckpt_every', 4), ('sample_every', 4), ('log_every', 2))} | {
             'gan.batch_size': 16, 'ae.batch_size': 24, 'ae.generated_fraction': 0.5, 'solve.steps': 5,
             'solve.restarts': 2, 'solve.n_init': 4, 'solve.batch_size': 16}
SHORT_OVERRIDES = [f'--config.{k}={v}' for k, v in SHORT.items()]


def short_config():
  from configs import mnist_tiny
  c = mnist_tiny.get_config()
  for k, v in SHORT.items():
    block, name = k.split('.')
    c[block][name] = v
  return c


def _train(config, workdir, mesh):
  """Both phases (no final evaluation); the GAN's final state."""
  from ge_jax import data, pretrain
  ds = data.load(config.data)
  gan = pretrain.train_gan(config, workdir, ds, mesh=mesh, progress=False)
  pretrain.train_ae(config, workdir, ds, gan['g_ema'], mesh=mesh, progress=False)
  return gan


def _leaves(tree) -> list[np.ndarray]:
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _solve(config, params, place=None, plan=None):
  from ge_jax import data, experiment
  clean = data.load(config.data).test[:N_SOLVE]
  out = experiment.restore(config, params, task=TASK, clean=clean, methods=METHODS, progress=False, place=place,
                           plan=plan)
  return {m: out.recon[m] for m in METHODS} | {f'{m}_objective': out.objective[m] for m in METHODS}


# --- the 8-device child ------------------------------------------------------------------------------


def child(outdir: str) -> None:
  """Runs under 8 CPU devices: trains, restores the 1-device run, solves; writes what it saw."""
  from ge_jax import cli, data, parallel, pretrain, solver
  from ge_jax.models import Nets
  cli.enable_compilation_cache()  # as the pytest process: a rerun loads the 8-device programs
  report = dict(device_count=jax.device_count())
  mesh8 = parallel.make_mesh()
  c = short_config()

  batch = parallel.shard_batch(np.zeros((c.gan.batch_size, 28, 28, 1), np.float32), mesh8)
  report['batch_devices'] = len(batch.sharding.device_set)
  report['batch_shard_rows'] = sorted({s.data.shape[0] for s in batch.addressable_shards})
  odd = parallel.shard_batch(np.zeros((12, 28, 28, 1), np.float32), mesh8)
  report['odd_batch_devices'] = len(odd.sharding.device_set)
  report['odd_batch_replicated'] = odd.sharding.is_fully_replicated

  # Data-parallel training on 8 devices (compared with the 1-device run by the parent).
  state = _train(c, os.path.join(outdir, 'eight'), mesh8)
  report['state_devices'] = sorted({len(x.sharding.device_set) for x in jax.tree.leaves(state)})

  # A 1-device checkpoint restored on 8 devices: every leaf replicated on all 8.
  _wait_for(os.path.join(outdir, ONE_DONE))
  params = pretrain.load_trained(c, os.path.join(outdir, 'one'), mesh=mesh8)
  report['restored_devices'] = sorted({len(x.sharding.device_set) for x in jax.tree.leaves(params)})
  report['restored_replicated'] = all(x.sharding.is_fully_replicated for x in jax.tree.leaves(params))
  np.savez(os.path.join(outdir, 'one_on_8.npz'), *_leaves(params))

  # Sharded solving of 13 images (padded to 16); the parent compares with its one device.
  place = parallel.solver_place(mesh8)
  np.savez(os.path.join(outdir, 'solve_8.npz'), **_solve(c, params, place))
  # Each CPU device solving its share in pieces (1 image x 2 restarts each), the pieces that hold
  # only padding skipped (13 of 16 rows are real): the same results.
  plan = solver.ExecutionPlan(piece_rows=2, mesh=mesh8)
  assert solver.ExecutionPlan.auto() == solver.ExecutionPlan(piece_rows=solver.CPU_PIECE_ROWS, mesh=mesh8)
  np.savez(os.path.join(outdir, 'solve_8_pieces.npz'), **_solve(c, params, plan=plan))
  report['piece_plan'] = plan.pieces(2, 2)

  # What the solver really gets and returns: arrays spread over the 8 devices.
  nets = Nets(c)
  spec = solver.SolverSpec(objective='gan', steps=1, restarts=1, n_init=0)
  x = data.load(c.data).test[:N_SOLVE]
  inputs = place(dict(target=x, op_params={}, indices=np.arange(N_SOLVE, dtype=np.int32),
                      lr=np.full(N_SOLVE, 0.05, np.float32), lam=np.zeros(N_SOLVE, np.float32)))
  res = solver.make_solver(nets, spec)(params, key=jax.random.key(0), **inputs)
  report['solver_input_devices'] = len(inputs['target'].sharding.device_set)
  report['solver_input_rows'] = int(inputs['target'].shape[0])
  report['solver_output_devices'] = len(res.x.sharding.device_set)
  report['solver_output_shard_rows'] = sorted({s.data.shape[0] for s in res.x.addressable_shards})
  with open(os.path.join(outdir, 'report.json'), 'w') as f:
    json.dump(report, f)


def _wait_for(path: str, timeout: float = 600) -> None:
  t0 = time.time()
  while not os.path.exists(path):
    if time.time() - t0 > timeout:
      raise TimeoutError(f'{path} did not appear in {timeout} s')
    time.sleep(0.2)


# --- fixtures ------------------------------------------------------------------------------------------


def _start(args, env):
  from conftest import xla_flags  # here, not at the top: the child process runs this file too
  full = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED='1', JAX_PLATFORMS='cpu', **env)
  if 'XLA_FLAGS' in env:
    full['XLA_FLAGS'] = xla_flags(env['XLA_FLAGS'])  # the session's flags, and the child's own
  return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=full, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def _finish(procs, timeout=600) -> list[str]:
  """Waits for the processes; kills any left over (e.g. when one failed); returns their output."""
  outs = []
  try:
    for p in procs:
      outs.append(p.communicate(timeout=timeout)[0])
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  return outs


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """The 8-device child and this process's 1-device run, side by side (the child waits for ours).

  Returns {'dir', 'config', 'one' (params trained here), 'solve_1' (solved here), 'report' and
  'output' (what the child saw and printed)}.
  """
  from ge_jax import parallel, pretrain
  d = str(tmp_path_factory.mktemp('parallel'))
  c = short_config()
  proc = _start(['tests/test_parallel.py', 'child', d], dict(XLA_FLAGS=EIGHT))
  try:
    mesh1 = parallel.make_mesh(jax.devices()[:1])
    _train(c, os.path.join(d, 'one'), mesh1)
    one = pretrain.load_trained(c, os.path.join(d, 'one'), mesh=mesh1)
    open(os.path.join(d, ONE_DONE), 'w').close()
    solve_1 = _solve(c, one)  # this process: one device, no sharding
  except BaseException:
    proc.kill()  # it would wait for our run in vain
    proc.wait()
    raise
  (output,) = _finish([proc])
  assert proc.returncode == 0, f'8-device child failed:\n{output[-5000:]}'
  with open(os.path.join(d, 'report.json')) as f:
    report = json.load(f)
  return dict(dir=d, config=c, one=one, solve_1=solve_1, report=report, output=output)


# --- tests ---------------------------------------------------------------------------------------------


def test_batches_and_state_are_really_on_8_devices(runs):
  r = runs['report']
  assert r['device_count'] == 8
  assert r['batch_devices'] == 8 and r['batch_shard_rows'] == [runs['config'].gan.batch_size // 8]
  assert r['state_devices'] == [8]


def test_training_on_8_devices_equals_1_device(runs):
  """8 -> 1: the 8-device checkpoint restores here, and matches the 1-device training."""
  from ge_jax import pretrain
  eight = pretrain.load_trained(runs['config'], os.path.join(runs['dir'], 'eight'))
  for a, b in zip(_leaves(eight), _leaves(runs['one'])):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
  logs = [json.loads(l) for l in open(os.path.join(runs['dir'], 'eight', 'gan', 'log.jsonl'))]
  assert [l['step'] for l in logs] == [2, 4]


def test_1_device_checkpoint_restores_replicated_on_8(runs):
  r = runs['report']
  assert r['restored_devices'] == [8] and r['restored_replicated']
  with np.load(os.path.join(runs['dir'], 'one_on_8.npz')) as f:
    restored = [f[f'arr_{i}'] for i in range(len(f.files))]
  for a, b in zip(restored, _leaves(runs['one'])):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('name', ['solve_8', 'solve_8_pieces'])
def test_sharded_solve_of_13_images_equals_1_device(runs, name):
  r = runs['report']
  assert r['solver_input_devices'] == 8 and r['solver_input_rows'] == 16  # 13 padded to 16
  assert r['solver_output_devices'] == 8 and r['solver_output_shard_rows'] == [2]
  assert r['piece_plan'] == [2, 1]  # a device's 2 images: 2 pieces of 1
  with np.load(os.path.join(runs['dir'], name + '.npz')) as f:
    for k, v in runs['solve_1'].items():
      assert f[k].shape[0] == N_SOLVE
      np.testing.assert_allclose(f[k], v, atol=1e-4, rtol=1e-5, err_msg=k)


def test_batch_not_a_multiple_of_devices_is_replicated(runs):
  """The AE's 12 real images per step do not split over 8 devices: replicated, same training."""
  r = runs['report']
  assert r['odd_batch_devices'] == 8 and r['odd_batch_replicated']
  assert 'the real part of config.ae.batch_size=12 is not a multiple of the 8 devices' in runs['output']


def test_helpers_on_one_device():
  from ge_jax import parallel
  assert [parallel.pad_to_multiple(n, 8) for n in (1, 8, 13, 16)] == [8, 8, 16, 16]
  mesh = parallel.make_mesh()
  assert parallel.local_rows(12, mesh) == slice(0, 12)
  placed = parallel.solver_place(mesh)(dict(x=np.ones((3, 2)), op={}))
  assert placed['x'].shape == (3, 2) and placed['op'] == {}
  assert parallel.is_primary() and not parallel.initialize(False)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _multihost(args: list[str], n_proc: int = 2, n_dev: int = 2) -> list[str]:
  """Runs `python <args> --multihost` as n_proc processes x n_dev CPU devices; their outputs."""
  port = _free_port()
  # No compilation cache: the processes would write the same entries at once.
  env = lambda i: dict(XLA_FLAGS=f'--xla_force_host_platform_device_count={n_dev}', GE_JAX_CACHE='',
                       JAX_COORDINATOR_ADDRESS=f'localhost:{port}', JAX_NUM_PROCESSES=str(n_proc),
                       JAX_PROCESS_ID=str(i))
  procs = [_start([*args, '--multihost'], env(i)) for i in range(n_proc)]
  outs = _finish(procs)
  for i, (p, out) in enumerate(zip(procs, outs)):
    assert p.returncode == 0, f'process {i} failed:\n{out[-3000:]}'
  return outs


def _solve_args(workdir: str, outdir: str) -> list[str]:
  return ['solve.py', '--config=configs/mnist_tiny.py', f'--workdir={workdir}', f'--outdir={outdir}', '--batch',
          f'--task={TASK}', f'--n={N_SOLVE}', f'--methods={",".join(METHODS)}', '--noprogress', *SHORT_OVERRIDES]


def _check_solve_npz(path: str, expected: dict) -> None:
  with np.load(path) as f:
    for m in METHODS:
      np.testing.assert_allclose(f[m], expected[m], atol=1e-4, rtol=0, err_msg=m)


def test_solve_cli_batch_on_8_devices_equals_1_device(runs):
  """solve.py --batch with 8 devices: 13 images spread over them, the 1-device results."""
  outdir = os.path.join(runs['dir'], 'solve_cli_8')
  (out,) = _finish([_start(_solve_args(os.path.join(runs['dir'], 'one'), outdir),
                           dict(XLA_FLAGS=EIGHT))])
  assert os.path.exists(os.path.join(outdir, 'metrics.json')), out[-3000:]
  _check_solve_npz(os.path.join(outdir, 'reconstructions.npz'), runs['solve_1'])


def test_multihost_without_a_cluster_is_one_clear_error(tmp_path):
  proc = _start(['train.py', '--config=configs/mnist_tiny.py', f'--workdir={tmp_path / "w"}', '--multihost'], {})
  (out,) = _finish([proc], timeout=120)
  assert proc.returncode == 2
  assert 'error: multi-host start failed' in out and 'JAX_COORDINATOR_ADDRESS' in out
  assert 'Traceback' not in out and not (tmp_path / 'w').exists()


@pytest.mark.slow  # two more processes compiling everything: ~30-60 s on 2 CPU cores
def test_multihost_training_equals_1_device(runs):
  """train.py --multihost as 2 processes x 2 CPU devices: one global run, written once."""
  from ge_jax import pretrain
  workdir = os.path.join(runs['dir'], 'multi')
  outs = _multihost(['train.py', '--config=configs/mnist_tiny.py', f'--workdir={workdir}', '--noprogress',
                     *SHORT_OVERRIDES])
  assert 'multi-host: 4 CPU device(s)' in outs[0] and 'in 2 process(es)' in outs[0]
  multi = pretrain.load_trained(runs['config'], workdir)
  for a, b in zip(_leaves(multi), _leaves(runs['one'])):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
  for phase in ('gan', 'ae'):  # only process 0 wrote the log: no line twice
    steps = [json.loads(l)['step'] for l in open(os.path.join(workdir, phase, 'log.jsonl'))]
    assert steps == [2, 4]
  assert os.path.exists(os.path.join(workdir, 'summary.json'))


@pytest.mark.slow
def test_multihost_solve_equals_1_device(runs):
  """solve.py --batch --multihost as 2 processes x 2 devices; process 0 writes the 1-device results."""
  outdir = os.path.join(runs['dir'], 'solve_multi')
  _multihost(_solve_args(os.path.join(runs['dir'], 'one'), outdir))
  _check_solve_npz(os.path.join(outdir, 'reconstructions.npz'), runs['solve_1'])


if __name__ == '__main__':
  if len(sys.argv) == 3 and sys.argv[1] == 'child':
    child(sys.argv[2])
  else:
    sys.exit('usage: python tests/test_parallel.py child OUTDIR (started by pytest)')


def _split_cpu_child(env: dict) -> str:
  code = ('from ge_jax import parallel, errors\n'
          'try:\n  print(parallel.split_cpu())\nexcept errors.UserError as e:\n  print("error:", e)\n'
          'import jax; print(jax.device_count())')
  full = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'GE_JAX_CPU_DEVICES')}
  full.update(PYTHONPATH=ROOT, JAX_PLATFORMS='cpu', **env)
  return subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=full, capture_output=True, text=True,
                        timeout=120).stdout.split()


def test_split_cpu_one_device_per_core_unless_told():
  cores = len(os.sched_getaffinity(0))
  assert _split_cpu_child({}) == ([str(cores), str(cores)] if cores > 1 else ['None', '1'])
  assert _split_cpu_child({'GE_JAX_CPU_DEVICES': '3'}) == ['3', '3']
  assert _split_cpu_child({'GE_JAX_CPU_DEVICES': '1'}) == ['None', '1']
  # The user's own XLA flag wins.
  assert _split_cpu_child({'XLA_FLAGS': '--xla_force_host_platform_device_count=5'}) == ['None', '5']
  out = _split_cpu_child({'GE_JAX_CPU_DEVICES': 'many'})
  assert out[0] == 'error:' and 'GE_JAX_CPU_DEVICES' in ' '.join(out)
