"""Are the sampling methods' intervals calibrated? Fit on validation, measure on test (issue 30).

  python scripts/calibration.py --config=configs/mnist_eval.py --workdir=runs/mnist \
      --tasks=denoise-0.3,inpaint-center,superres-x4 --chains=16 --out=results/mnist_paper/calibration

Per task and sampling method (K chains per image, in the one compiled solve): the share of the
clean test pixels inside mean +- z std (nominal 50% and 90%; all pixels and the pixels the
corruption changed), then the same after split-conformal scaling fitted on validation images only
(ge_jax.uncertainty.conformal_scale); how the per-image score ranks the errors (Spearman with
per-image MSE); and how often the 10% most uncertain restorations are another digit than the clean
one, by the project classifier, against the rest. Writes <out>.json and <out>.md.
"""

import argparse
import importlib.util
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from ge_jax import api, classifier, cli, data, fileio, metrics, uncertainty  # noqa: E402
from ge_jax.errors import UserError  # noqa: E402

SAMPLED = ('ge_sample', 'ge_pix')


def _config(path: str):
  spec = importlib.util.spec_from_file_location('calibration_config', path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config()


def _with_chains(model, k: int):
  c = model.config.copy_and_resolve_references()
  for m in SAMPLED:
    c.solve[m].restarts = k
  return api.Model(config=c, params=model.params, workdir=model.workdir)


def run(config_path: str, workdir: str, tasks, chains: int, n_val: int, n_test: int) -> dict:
  cli.setup_jax()
  config = _config(config_path)
  ds = data.load(config.data)
  model = _with_chains(api.load(workdir, config), chains)
  clf = classifier.load_or_train(workdir, ds) if ds.test_labels is not None else None
  val, test = ds.val[:n_val], ds.test[:n_test]
  labels = None if ds.test_labels is None else np.asarray(ds.test_labels)[:n_test]
  rows = []
  for task in tasks:
    t0 = time.time()
    fit = api.restore(model, val, task=task, methods=SAMPLED, indices=np.arange(n_val))
    out = api.restore(model, test, task=task, methods=SAMPLED, indices=np.arange(n_test))
    for m in SAMPLED:
      if m not in fit.uncertainty:
        continue
      mean_v, std_v = fit.uncertainty[m]
      scales = {lv: uncertainty.conformal_scale(mean_v, std_v, val, lv) for lv in uncertainty.LEVELS}
      mean, std = out.uncertainty[m]
      s = uncertainty.summary(mean, std, out.recon[m], test, out.corrupted, out.indices, scales)
      row = dict(task=task, method=m, chains=chains, n_val=n_val, n_test=n_test, scales=scales,
                 psnr=float(np.mean(np.asarray(metrics.psnr(metrics.to_unit(out.recon[m]), metrics.to_unit(test))))),
                 **{k: v for k, v in s.items() if k not in ('per_image', 'flagged')})
      if clf is not None:
        wrong = classifier.apply(clf, out.recon[m])[0].argmax(1) != labels
        score = np.asarray(s['per_image'])
        top = score >= np.quantile(score, 1 - uncertainty.FLAG_FRACTION)
        row.update(wrong_top10=float(wrong[top].mean()), wrong_rest=float(wrong[~top].mean()))
      rows.append(row)
    print(f'{task}: {time.time() - t0:.0f} s', flush=True)
  return dict(config=config.name, workdir=workdir, chains=chains, rows=rows)


def markdown(r: dict) -> str:
  lines = [f'# Calibration of the chains\' intervals: {r["config"]} ({r["workdir"]}), {r["chains"]} chains per image',
           '', 'Coverage of the clean test pixels by mean ± z·std (nominal 50% / 90%), over all pixels and over the '
           'pixels the corruption changed, before and after the split-conformal scale c fitted on validation. '
           'Rank corr.: Spearman of the per-image mean std with the per-image MSE. Wrong digit: the project '
           "classifier's reading, for the 10% most uncertain restorations against the rest.", '',
           '| task | method | PSNR | cov. 50 / 90 | changed 50 / 90 | c (50, 90) | calibrated 50 / 90 | calibrated changed 90 '
           '| rank corr. | wrong digit: top 10% / rest |', '|' + '---|' * 10]
  pct = lambda v: f'{100 * v:.1f}%'
  for w in r['rows']:
    lines.append(f'| {w["task"]} | {w["method"]} | {w["psnr"]:.2f} | {pct(w["coverage_50"])} / {pct(w["coverage_90"])} '
                 f'| {pct(w.get("coverage_50_changed", float("nan")))} / {pct(w.get("coverage_90_changed", float("nan")))} '
                 f'| {w["scales"][0.5]:.2f}, {w["scales"][0.9]:.2f} '
                 f'| {pct(w["calibrated_coverage_50"])} / {pct(w["calibrated_coverage_90"])} '
                 f'| {pct(w.get("calibrated_coverage_90_changed", float("nan")))} '
                 f'| {w.get("rank_correlation_mse", float("nan")):.2f} '
                 f'| {pct(w.get("wrong_top10", float("nan")))} / {pct(w.get("wrong_rest", float("nan")))} |')
  return '\n'.join(lines) + '\n'


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--config', required=True)
  p.add_argument('--workdir', required=True)
  p.add_argument('--tasks', default='denoise-0.3,inpaint-center,superres-x4')
  p.add_argument('--chains', type=int, default=16)
  p.add_argument('--n_val', type=int, default=100)
  p.add_argument('--n_test', type=int, default=200)
  p.add_argument('--out', required=True)
  a = p.parse_args()
  try:
    r = run(a.config, a.workdir, a.tasks.split(','), a.chains, a.n_val, a.n_test)
  except UserError as e:
    sys.exit(f'error: {e}')
  os.makedirs(os.path.dirname(a.out) or '.', exist_ok=True)
  fileio.write_json(a.out + '.json', r)
  with open(a.out + '.md', 'w') as f:
    f.write(markdown(r))
  print(markdown(r))


if __name__ == '__main__':
  main()
