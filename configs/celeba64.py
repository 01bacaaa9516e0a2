"""CelebA faces (the paper's data) at 64x64 RGB, from TFDS `celeb_a`; needs a prepared download.

  python train.py --config=configs/celeba64.py --config.data.tfds_data_dir=/data/tfds

TFDS's CelebA download often fails its checksum; a folder of aligned CelebA JPEGs works too:
--config.data.source=folder --config.data.path=/data/img_align_celeba (centre square crop). The
GAN literature's crop (DCGAN, WGAN-GP, BEGAN code: the central 108x108 of the 178x218 aligned
images, resized to 64) is `celeb_a_crop='dcgan'`; the original GE code's 128x128 box around
(89, 121) is `celeb_a_crop='ge'`.
"""

import ml_collections

from configs import photos64


def get_config() -> ml_collections.ConfigDict:
  c = photos64.get_config()
  c.name = 'celeba64'
  c.data.source = 'tfds'
  c.data.name = 'celeb_a'
  c.data.celeb_a_crop = 'dcgan'  # dcgan (108x108 centre) | ge (128x128 at (89, 121))
  c.declared_keys = (*c.declared_keys, 'data.celeb_a_crop')
  c.data.val_size = 500         # carved from TFDS's train split; TFDS's test split is the test split
  return c
