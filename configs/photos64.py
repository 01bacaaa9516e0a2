"""RGB 64x64, offline: patches of the photographs bundled with scikit-image and scikit-learn.

  python train.py --config=configs/photos64.py

10,000 train / 500 val / 500 test patches (scales 1, 1.5 and 2, left-right flips) from disjoint
tiles of six photographs (ge_jax/photos.py). Networks, solver and operators: configs/base64.py, in
colour. Your own photos instead: --config.data.source=folder --config.data.path=/data/photos (centre
crop and resize; or --config.data.crop=random --config.data.crops_per_image=16 for 64x64 windows).
Results and how the settings were chosen: results/photos64/NOTE.md.
"""

import ml_collections

from configs import base64


def get_config() -> ml_collections.ConfigDict:
  c = base64.get_config()
  c.name = 'photos64'
  c.data.source = 'photos'
  c.data.channels = 3
  c.data.seed = 0               # patch positions, scales and flips
  c.declared_keys = (*c.declared_keys, 'data.seed')
  c.ae.code_dim = 128           # code 128, width 16, constant lr: rock's first AE (results/rock64/NOTE.md)
  c.ae.width = 16
  c.ae.lr_schedule = 'constant'
  c.ae.generated_fraction = 0.5  # share of each batch sampled from G
  # The steps the committed results were measured with; twice the GAN steps tried and not kept
  # (results/photos64/NOTE.md).
  c.gan.steps = 6000
  # Nearest x2 + conv (models.Upsample) instead of the sub-pixel upsampling, whose G drew a
  # checkerboard here (results/photos64/NOTE.md; docs/img/photos64_data_vs_G_subpixel.jpg).
  c.model.g_upsample = 'resize'
  return c
