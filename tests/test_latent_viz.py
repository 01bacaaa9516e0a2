"""Latent-space pictures on the tiny trained workdir."""

import os


def test_latent_pictures(tiny_workdir, tiny_config, tmp_path):
  from ge_jax import data, latent_viz, load
  ds = data.load(tiny_config.data)
  params = load.load_trained(tiny_config, tiny_workdir)
  stats = latent_viz.make_pictures(tiny_config, params, ds.test[:24], ds.test_labels[:24], str(tmp_path),
                                   n_ge=4, task='denoise-0.3', steps=5)
  for f in ('latent_pca.png', 'latent_interpolation.png', 'latent_stats.json'):
    assert os.path.getsize(tmp_path / f) > 0
  assert stats['n_ge'] == 4 and stats['mean_code_dist_clean_to_corrupted'] > 0
  assert stats['mean_z_norm_ge'] > 0
