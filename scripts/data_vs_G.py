"""One picture to judge a trained model by eye: 16 test images, 16 samples of G, 8 AE pairs.

  python scripts/data_vs_G.py --config=configs/photos64.py --workdir=runs/photos64 \
      --out=docs/img/photos64_data_vs_G.jpg

Rows, top to bottom: two rows of test images; two rows of G(z), z ~ N(0, I) (seed 7); two rows of
pairs (test image, Dec(E(image))). JPEG for photographs, PNG otherwise (by the extension).
--fd N also prints the Frechet distance, on the fixed random CNN's features (ge_jax.perception),
between N samples of G and N test images, beside that of the test images to N validation images
(two real sets: the floor a perfect G would reach at this N).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _rows(x: np.ndarray) -> np.ndarray:
  """16 images (N, S, S, C) in [-1, 1] -> two rows of 8 with a 1-pixel white frame, uint8 RGB."""
  x = ((np.clip(x, -1, 1) + 1) * 127.5).round().astype(np.uint8)
  if x.shape[-1] == 1:
    x = np.repeat(x, 3, axis=-1)
  x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=255)
  s = x.shape[1]
  return x.reshape(2, 8, s, s, 3).transpose(0, 2, 1, 3, 4).reshape(2 * s, 8 * s, 3)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--config', required=True)
  ap.add_argument('--workdir', required=True)
  ap.add_argument('--out', required=True)
  ap.add_argument('--fd', type=int, default=0, help='also print the random-CNN FD of N G samples to N test images')
  args = ap.parse_args()
  import jax
  from PIL import Image
  from ge_jax import api, data, load, models
  c = load.config_file(args.config)
  model = api.load(args.workdir, c)
  nets = models.Nets(c)
  ds = data.load(c.data)
  test = ds.test
  real = test[::max(1, len(test) // 16)][:16]
  fake = np.asarray(nets.G(model.params['generator'], jax.random.normal(jax.random.key(7), (16, nets.latent_dim))))
  rec = np.asarray(nets.reconstruct(model.params['autoencoder'], real[:8]))
  pairs = np.stack([real[:8], rec], 1).reshape((16,) + real.shape[1:])
  gap = np.full((6, 8 * (real.shape[1] + 2), 3), 255, np.uint8)
  img = np.concatenate([_rows(real), gap, _rows(fake), gap, _rows(pairs)])
  jpeg = args.out.lower().endswith(('.jpg', '.jpeg'))
  Image.fromarray(img).save(args.out, **(dict(quality=92) if jpeg else dict(optimize=True)))
  print(f'wrote {args.out} ({img.shape[1]}x{img.shape[0]})')
  if args.fd:
    _print_fd(ds, nets, model, args.fd)


def _print_fd(ds, nets, model, n: int) -> None:
  import jax
  from ge_jax import models, perception
  n = min(n, len(ds.test), len(ds.val))
  ext = perception.random_extractor(nets.image_shape)
  z = jax.random.normal(jax.random.key(8), (n, nets.latent_dim))
  samples = models.apply_batched(nets.G, model.params['generator'], np.asarray(z), 250)
  test, val, fake = (ext.features(x) for x in (ds.test[:n], ds.val[:n], samples))
  fd = lambda a, b: (perception.frechet_distance(a, b), perception.frechet_distance_se(a, b))
  (g, g_se), (v, v_se) = fd(test, fake), fd(test, val)
  print(f'random-CNN FD to {n} test images: G samples {g:.3g} +- {g_se:.2g}; '
        f'{n} validation images {v:.3g} +- {v_se:.2g}')


if __name__ == '__main__':
  main()
