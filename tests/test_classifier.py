"""The offline sample-quality score: Frechet distance on classifier features, confidence."""

import json
import os



def test_classifier_learns_and_scores_g(tiny_workdir, tiny_config):
  from ge_jax import classifier, sample_quality, data
  r = sample_quality.sample_quality(tiny_config, tiny_workdir, n_samples=64, steps=150)
  assert os.path.exists(os.path.join(tiny_workdir, 'classifier', 'params.msgpack'))
  j = json.load(open(os.path.join(tiny_workdir, 'classifier', 'sample_quality.json')))
  assert j['fd_test_vs_g'] >= 0 and j['fd_test_vs_val'] >= 0 and 0 < j['confidence_g'] <= 1
  assert abs(sum(j['class_histogram_g']) - 1) < 1e-3 and j['n_samples'] == 64
  if r['test_accuracy'] is not None:
    assert r['test_accuracy'] > 0.5  # 150 steps already beat chance (0.1) by far
  ds = data.load(tiny_config.data)
  params = classifier.load_or_train(tiny_workdir, ds)  # cached: loads, does not retrain
  probs, feats = classifier.apply(params, ds.test[:5])
  assert probs.shape == (5, 10) and feats.shape == (5, classifier.FEATURES)
