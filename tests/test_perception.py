"""Perception scores: FD / KID algebra, the random feature extractor, and its ranking on MNIST."""

import json
import math
import os

import numpy as np
import pytest

from ge_jax import perception
from ge_jax.errors import UserError


def test_frechet_distance_known_values():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(4000, 3))
  assert abs(perception.frechet_distance(a, a)) < 1e-6
  shift = np.array([1.0, 2.0, 0.0])
  assert abs(perception.frechet_distance(a, a + shift) - 5.0) < 1e-6  # same covariance: ||mu_a - mu_b||^2
  # Isotropic Gaussians N(0, I) and N(0, 4 I) in 3-d: tr(I + 4I - 2 * 2I) = 3.
  b = rng.normal(size=(200000, 3))
  assert abs(perception.frechet_distance(b, 2 * b) - 3.0) < 0.05


def test_fd_bootstrap_se_is_zero_for_identical_sets_and_shrinks_with_n():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(400, 4))
  assert perception.frechet_distance_se(a, a) < 1e-9
  ses = [perception.frechet_distance_se(a[:n], a[:n] + 0.5 + rng.normal(size=(n, 4)), n_boot=60)
         for n in (100, 400)]
  assert ses[0] > ses[1] > 0


def _kid_brute(a, b):
  d = a.shape[1]
  k = lambda x, y: (x @ y.T / d + 1)**3
  n = len(a)
  kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
  return ((kaa.sum() - np.trace(kaa)) / (n * (n - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1))
          - 2 * kab.mean())


def test_kid_matches_the_unbiased_formula_and_its_jackknife():
  rng = np.random.default_rng(2)
  a = rng.normal(size=(37, 5))
  b = rng.normal(size=(37, 5)) * 1.3 + 0.2
  value, se = perception.kid(a, b, blocks=5, seed=3)
  s = math.sqrt(np.mean(np.sum(a * a, 1)) / 5)  # features are scaled by the reference's RMS
  assert abs(value - _kid_brute(a / s, b / s)) < 1e-9
  block = np.random.default_rng(3).permutation(37) % 5
  loo = np.array([_kid_brute(a[block != j] / s, b[block != j] / s) for j in range(5)])
  assert abs(se - math.sqrt(4 / 5 * np.sum((loo - loo.mean())**2))) < 1e-9


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
  rng = np.random.default_rng(4)
  a, b = rng.normal(size=(500, 16)), rng.normal(size=(500, 16))
  same, se_same = perception.kid(a, b)
  diff, se_diff = perception.kid(a, rng.normal(size=(500, 16)) + 0.5)
  assert abs(same) < 3 * se_same + 1e-3
  assert diff > 5 * se_diff > 0


def test_feature_distance_and_bad_shapes():
  d = perception.feature_distance(np.array([[3.0, 4.0], [1.0, 1.0]]), np.zeros((2, 2)))
  np.testing.assert_allclose(d, [5.0, math.sqrt(2)])
  with pytest.raises(UserError):
    perception.feature_distance(np.zeros((2, 2)), np.zeros((3, 2)))
  with pytest.raises(UserError):
    perception.kid(np.zeros((3, 2)), np.zeros((3, 2)))


@pytest.mark.parametrize('shape', [(28, 28, 1), (64, 64, 1), (64, 64, 3), (12, 20, 2)])
def test_random_extractor_shapes_determinism_and_batch_independence(shape):
  rng = np.random.default_rng(5)
  x = rng.uniform(-1, 1, (7,) + shape).astype(np.float32)
  ext = perception.random_extractor(shape, batch_size=4)
  f = ext.features(x)
  assert f.shape == (7, ext.num_features) and np.isfinite(f).all() and f.std() > 0
  again = perception.random_extractor(shape, batch_size=4).features(x[2:6])  # new instance, other batch-mates
  np.testing.assert_allclose(again, f[2:6], rtol=1e-5, atol=1e-6)
  other_seed = perception.random_extractor(shape, seed=1).features(x)
  assert np.abs(other_seed - f).max() > 1e-3


def test_random_extractor_rejects_bad_input():
  with pytest.raises(UserError):
    perception.random_extractor((4, 4, 1))
  ext = perception.random_extractor((28, 28, 1))
  with pytest.raises(UserError):
    ext.features(np.zeros((28, 28, 1), np.float32))


@pytest.fixture(scope='module')
def mnist():
  from configs import mnist
  from ge_jax import data
  return data.load(mnist.get_config().data)


def _shifted_sets(ds, n):
  from configs import mnist
  from ge_jax import operators
  test = ds.test[:n]
  rng = np.random.default_rng(0)
  blur = np.asarray(operators.make('deblur', mnist.get_config().ops, test.shape[1:]).forward(test, {}))
  noisy = np.clip(test + 0.3 * rng.standard_normal(test.shape), -1, 1).astype(np.float32)
  uniform = rng.uniform(-1, 1, test.shape).astype(np.float32)
  return test, dict(val=ds.val[:n], blurred=blur, noisy=noisy, uniform=uniform)


def test_random_features_rank_distribution_shifts_on_mnist(mnist):
  test, sets = _shifted_sets(mnist, 300)
  s = perception.perception_scores(sets, test, extractors=[perception.random_extractor(test.shape[1:])])
  fd = {m: s['methods'][m]['random']['fd'] for m in sets}
  kid = {m: s['methods'][m]['random']['kid'] for m in sets}
  # Two real splits are far closer than any corruption, and all are far closer than pure noise.
  assert 10 * fd['val'] < min(fd['blurred'], fd['noisy'])
  assert 5 * max(fd['blurred'], fd['noisy']) < fd['uniform']
  assert 10 * max(kid['val'], 0) < min(kid['blurred'], kid['noisy']) < max(kid['blurred'], kid['noisy']) < kid['uniform']


@pytest.mark.slow
def test_classifier_features_rank_and_classify(mnist, tmp_path):
  test, sets = _shifted_sets(mnist, 500)
  ext = perception.classifier_extractor(str(tmp_path), mnist)
  sets['clean'] = test
  s = perception.perception_scores(sets, test, mnist.test_labels[:500], [ext])
  e = {m: s['methods'][m]['classifier'] for m in sets}
  assert e['clean']['fd'] < 1e-6 and e['clean']['accuracy'] > 0.9
  assert 2 * e['val']['fd'] < min(e['blurred']['fd'], e['noisy']['fd'])
  assert 2 * max(e['blurred']['fd'], e['noisy']['fd']) < e['uniform']['fd']
  assert e['uniform']['accuracy'] < 0.3


def _toy_apply(params, x):
  """A toy classifying extractor: 2 features, then 3 logits read from pixel (0, 0) = label / 10."""
  import jax
  import jax.numpy as jnp
  del params
  flat = x.reshape(x.shape[0], -1)
  return jnp.concatenate([flat[:, :2], jax.nn.one_hot(jnp.round(flat[:, 0] * 10), 3)], axis=1)


def test_perception_scores_json_diverged_rows_and_accuracy():
  rng = np.random.default_rng(6)
  labels = rng.integers(0, 3, 12)
  clean = rng.uniform(-1, 1, (12, 16, 16, 1)).astype(np.float32)
  clean[:, 0, 0, 0] = labels / 10
  bad = clean.copy()
  bad[3] = np.nan
  wrong = clean.copy()
  wrong[:, 0, 0, 0] = (labels + 1) % 3 / 10
  toy = perception.FeatureExtractor('toy', 'toy', _toy_apply, None, num_features=2, num_classes=3)
  s = perception.perception_scores(dict(same=clean, bad=bad, wrong=wrong), clean, labels,
                                   [toy, perception.random_extractor((16, 16, 1))])
  json.dumps(s)
  assert set(s['methods']['same']) == {'toy', 'random'}
  same = s['methods']['same']['random']
  assert same['fd'] < 1e-6 and same['feature_distance_mean'] == 0 and same['n_scored'] == 12
  assert s['methods']['same']['toy']['accuracy'] == 1.0 and s['methods']['wrong']['toy']['accuracy'] == 0.0
  assert 'accuracy' not in same  # the random CNN does not classify
  bad_r = s['methods']['bad']['random']
  assert bad_r['n_scored'] == 11 and len(bad_r['feature_distance']) == 11 and np.isfinite(bad_r['fd'])
  assert 'same' in perception.perception_table(s)
  with pytest.raises(UserError):
    perception.perception_scores(dict(x=clean[:5]), clean)
  with pytest.raises(UserError):
    perception.perception_scores(dict(x=clean), clean, labels[:3])


def test_pareto_front():
  pts = dict(ae=(20.0, 50.0), gan=(18.0, 30.0), ge=(17.0, 40.0), csgm=(21.0, 10.0), tie=(21.0, 10.0))
  assert perception.pareto_front(pts) == ['csgm', 'tie']  # equal points do not dominate each other
  pts = dict(a=(20.0, 50.0), b=(18.0, 30.0), c=(17.0, 40.0), d=(float('nan'), 1.0))
  assert perception.pareto_front(pts) == ['a', 'b']
  assert perception.pareto_front(dict(a=(1.0, 1.0), b=(1.0, 2.0))) == ['a']  # equal PSNR, worse FD


def test_perception_distortion_figure_and_front_line(tmp_path):
  from PIL import Image
  from ge_jax import pd_plot
  pts = dict(ae=(20.7, 13.0), gan=(18.0, 32.0), ge=dict(cpu=(18.0, 260.0), gpu=(18.4, 20.0)),
             csgm=(19.0, 32.0), broken=(float('nan'), 1.0))
  path = str(tmp_path / 'pd.png')
  front = pd_plot.perception_distortion_figure(path, pts, errors=dict(ae=(0.1, 1.0), ge=dict(gpu=(0.2, 2.0))),
                                               title='denoise-0.6', log_y=True)
  assert front == ['ae']
  assert Image.open(path).size[0] > 300
  assert pd_plot.front_line('t', dict(ae=(20.0, 13.0), ge=dict(gpu=(18.0, 5.0)))) == \
      't: on the PSNR / FD Pareto front: ae, ge@gpu'
  with pytest.raises(UserError):
    pd_plot.perception_distortion_figure(path, {})
  scores = dict(methods=dict(ae=dict(random=dict(fd=3.0, fd_se=0.5, kid=0.1)), gan=dict(random={})))
  pts, errs = pd_plot.points_from_scores(dict(ae=(20.0, 0.1), gan=(18.0, 0.2)), scores, 'random')
  assert pts == dict(ae=(20.0, 3.0)) and errs == dict(ae=(0.1, 0.5))


def test_variants_table_shows_both_axes_and_the_front(tmp_path):
  import json
  from ge_jax import report

  def method(psnr, fd):
    return dict(psnr_mean=psnr, psnr_se=0.1, perception=dict(classifier=dict(fd=fd, fd_se=1.0)))
  ext = dict(classifier='the features')
  tasks = [dict(task='a', extractors=ext, methods=dict(ae=method(20.0, 50.0), gan=method(18.0, 60.0),
                                                       ge=method(17.0, 40.0))),
           dict(task='b', extractors=ext, methods=dict(ae=method(22.0, 10.0), gan=method(18.0, 60.0),
                                                       ge=method(16.0, 40.0)))]
  for name, note in (('v1', 'lam 0.01'), ('v2', '')):
    os.makedirs(tmp_path / 'variants' / name)
    r = dict(split='val', n_images=10, note=note, command='x --config.solve.lam_ge=1.0', tasks=tasks)
    (tmp_path / 'variants' / name / 'results.json').write_text(json.dumps(r))
  lines = report.variants_table(str(tmp_path))
  rows = [l for l in lines if l.startswith(('| v1 ', '| v2 '))]
  assert len(rows) == 2
  cells = [c.strip() for c in rows[0].split('|')[1:-1]]
  # GE is on the front of task a only (lower FD than AE); means over the 2 tasks on both axes.
  assert cells[:4] == ['v1', 'val, 10', 'lam 0.01', '2'] and cells[-1] == '1/2'
  assert cells[4] == '21.00 / 30' and cells[6] == '16.50 / 40' and cells[7] == 'n/a'
  assert 'solve.lam_ge=1.0' in rows[1]  # no note: the run's config overrides say what changed
  # A run without GE (e.g. CSGM alone) has no front to count.
  os.makedirs(tmp_path / 'variants' / 'v3')
  only = [dict(t, methods=dict(csgm=method(19.0, 30.0))) for t in tasks]
  (tmp_path / 'variants' / 'v3' / 'results.json').write_text(json.dumps(dict(split='val', n_images=10, tasks=only)))
  row = [l for l in report.variants_table(str(tmp_path)) if l.startswith('| v3 ')][0]
  assert row.rstrip().endswith('| 19.00 / 30 | n/a |'), row
  # Nor does a run of GE alone (no AE-only or GAN-only to be compared with).
  os.makedirs(tmp_path / 'variants' / 'v4')
  alone = [dict(t, methods=dict(ge_pix=method(19.0, 30.0))) for t in tasks]
  (tmp_path / 'variants' / 'v4' / 'results.json').write_text(json.dumps(dict(split='val', n_images=10, tasks=alone)))
  row = [l for l in report.variants_table(str(tmp_path)) if l.startswith('| v4 ')][0]
  assert row.rstrip().endswith('| 19.00 / 30 | n/a | n/a | n/a |'), row  # GE+pixels, its one chain, CSGM, front
  assert report.variants_table(str(tmp_path / 'none')) == []


def test_front_lines_count_the_paper_forms_apart_from_ge_pix():
  from ge_jax import report

  def method(psnr, fd):
    return dict(psnr_mean=psnr, psnr_se=0.1, perception=dict(classifier=dict(fd=fd, fd_se=1.0)))
  tasks = [
      # a: only GE+pixels escapes the AE's dominance
      dict(task='a', methods=dict(ae=method(20.0, 50.0), gan=method(18.0, 60.0), ge=method(17.0, 70.0),
                                  ge_pix=method(17.0, 40.0))),
      # b: GE+pixels dominates the code-only sample; without it the sample is on the front
      dict(task='b', methods=dict(ae=method(22.0, 10.0), ge_sample=method(16.0, 5.0), ge_pix=method(17.0, 4.0))),
      # c: no GE form on the front
      dict(task='c', methods=dict(ae=method(22.0, 10.0), ge=method(16.0, 12.0), ge_pix=method(16.5, 11.0))),
  ]
  lines = report.front_lines(tasks, 'classifier')
  assert lines[0] == ("GE (MAP or sample) is on the blind methods' PSNR / FD front on 1 of 3 tasks; "
                      'with the GE+pixels extension, GE (any form) on 2 of 3.')
  assert 'GE+pixels' in lines[1] and '(**GE not on the blind front**)' in lines[3]
  without = [dict(t, methods={m: e for m, e in t['methods'].items() if m != 'ge_pix'}) for t in tasks]
  assert report.front_lines(without, 'classifier')[0].endswith('front on 1 of 3 tasks.')


def test_realism_lines_compare_ge_with_g_at_the_same_n():
  from ge_jax import report

  def method(fd, se=1.0):
    return dict(psnr_mean=15.0, psnr_se=0.1, perception=dict(classifier=dict(fd=fd, fd_se=se)))
  tasks = [
      dict(task='a', methods=dict(ge=method(90.0), ge_sample=method(40.0), g_random=method(50.0))),   # at most
      dict(task='b', methods=dict(ge_sample=method(55.0, 4.0), g_random=method(50.0, 2.0))),          # within SE
      dict(task='c', methods=dict(ge_sample=method(80.0), ge_pix=method(70.0), g_random=method(50.0))),  # above
      dict(task='d', methods=dict(ge_sample=method(10.0))),                                            # no reference
  ]
  lines = report.realism_lines(tasks, 'classifier')
  assert lines[0].startswith("GE's most realistic form has an FD at most that of G's own random samples")
  assert 'on 1 of 3 tasks; above it but within one standard error each on 1 more.' in lines[0]
  assert lines[1].startswith('- a: GE sample 40.0') and lines[1].endswith('at most')
  assert lines[2].endswith('above, within one SE each') and lines[3].startswith('- c: GE+pixels 70.0')
  assert lines[3].endswith('**above**') and len(lines) == 4
  assert report.realism_lines([tasks[3]], 'classifier') == []
