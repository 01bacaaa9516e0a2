"""RGB 64x64, offline: patches of the photographs bundled with scikit-image and scikit-learn.

  python train.py --config=configs/photos64.py

10,000 train / 500 val / 500 test patches (scales 1, 1.5 and 2, left-right flips) from disjoint
tiles of six photographs (ge_jax/photos.py). rock64's G and D in colour, its first AE (code 128, width 16).
Your own photos instead: --config.data.source=folder --config.data.path=/data/photos (centre crop
and resize; or --config.data.crop=random --config.data.crops_per_image=16 for 64x64 windows).
"""

import ml_collections

from configs import rock64


def get_config() -> ml_collections.ConfigDict:
  c = rock64.get_config()
  c.name = 'photos64'
  del c.data.rock
  c.data.source = 'photos'
  # config.data.name keeps the base value (a TFDS name): data.source=folder for the user's own
  # photos then passes the config check, which flags a changed setting that the source ignores.
  c.data.channels = 3
  c.data.seed = 0               # patch positions, scales and flips
  c.declared_keys = ('data.train_size', 'data.seed')  # keys the base config lacks
  c.eval.domain_metrics = 'auto'  # not rock64's 'rock': photos are no porous medium
  c.ae.code_dim = 128           # rock64's first AE (test PSNR 22.9 dB), constant lr, half of each batch from G
  c.ae.width = 16
  c.ae.steps = 5000
  c.gan.steps = 6000            # not rock64's 12,000: measured and reported at 6,000 (twice tried, no visible gain)
  c.ae.lr_schedule = 'constant'
  c.ae.generated_fraction = 0.5
  # G's sub-pixel upsampling drew a checkerboard over blotches of colour (docs/img/photos64_data_vs_G_subpixel.jpg);
  # nearest x2 + conv draws none at the same FLOPs (models.Upsample). Training 15.8 min on the 2-core CPU.
  c.model.g_upsample = 'resize'
  # GE's prior weights: rock64's, scaled to the code errors (this AE's: 0.001-0.13 per value,
  # scripts/code_errors.py). On 64 validation patches, 7 tasks, against MNIST's weights: the sample
  # mean 15.11 -> 16.10 dB, random-CNN FD 9.1 -> 7.8; the MAP 18.27 -> 18.18 dB, FD 2.3 -> 2.1.
  # On the test patches the sample's PSNR gain held, its FD gain did not (results/photos64/NOTE.md).
  return c
