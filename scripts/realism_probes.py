"""Probes of why GE's posterior samples are less realistic than G's own samples (docs/FIDELITY.md).

  python scripts/realism_probes.py --workdir=runs/mnist --probe=radius --n=200
  python scripts/realism_probes.py --workdir=runs/mnist --probe=chains --n=100 --tasks=deblur,superres-x4

Realism is the FD of the classifier's features (ge_jax.perception) against the first n clean
images of the split; every FD here is at that same n (an FD is biased upwards at small n).

  radius   G(r u), u uniform on the sphere, at radii r around sqrt(latent_dim), and G(z ~ N(0, I)),
           3 seeds each: is G less realistic where GE's chains end (|z| ~ 1.3 sqrt(d) on MNIST)?
  chains   R chains of GE's code-only posterior sample (ge_sample, the config's settings, one
           solver seed per chain), then per image: chain 0 (a posterior sample), the chain whose
           G(z) D scores most real (discriminator rejection, Azadi et al. 2019), the chain with the
           lowest code residual ||E(G(z)) - E(y)||^2; and the chain of D-guided Langevin, the
           energy -w D(G(z)) added (DDLS, Che et al. 2020), for each --weights w. PSNR and FD each.
Validation images only (a probe of the method, for tuning; never the test split).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def radius_probe(model, fd, n: int, radii=(6.0, 8.0, 10.0, 10.5, 12.0), seeds: int = 3) -> list[str]:
  import jax
  import jax.numpy as jnp
  from ge_jax import models
  from ge_jax.models import Nets
  nets = Nets(model.config)
  lines = []
  for r in (None,) + tuple(radii):
    vals = []
    for s in range(seeds):
      u = jax.random.normal(jax.random.key(200 + s), (n, nets.latent_dim))
      z = u if r is None else r * u / jnp.linalg.norm(u, axis=-1, keepdims=True)
      vals.append(fd(models.apply_batched(nets.G, model.params['generator'], z, 250)))
    name = 'z ~ N(0, I)' if r is None else f'|z| = {r:g}'
    lines.append(f'{name:>12}: FD {np.mean(vals):6.1f} (seeds {", ".join(f"{v:.0f}" for v in vals)})')
  return lines


def chains_probe(model, workdir: str, clean: np.ndarray, fd, psnr, task_names, chains: int, weights) -> list[str]:
  import jax
  import jax.numpy as jnp
  from ge_jax import api
  from ge_jax.models import Nets
  nets, cfg = Nets(model.config), model.config
  g_params, ae_params, d_params = (model.params[k] for k in ('generator', 'autoencoder', 'discriminator'))
  s = cfg.solve.ge_sample
  d_logit = jax.jit(lambda x: nets.D(d_params, x).reshape(x.shape[0]))
  code_res = jax.jit(lambda x, m: jnp.sum(jnp.square(nets.E(ae_params, x) - m), axis=-1))

  @jax.jit
  def guided(m, key, w):  # the solver's Langevin update on U = f / (2 lam) + |z|^2 / 2 - w D(G(z))
    def energy(z):
      x = nets.G(g_params, z)
      f = jnp.sum(jnp.square(nets.E(ae_params, x) - m), axis=-1)
      return jnp.sum(f / (2 * s.lam) + 0.5 * jnp.sum(z * z, axis=-1) - w * nets.D(d_params, x).reshape(len(z)))
    grad = jax.grad(energy)

    def step(z, t):
      noise = jax.random.normal(jax.random.fold_in(key, t), z.shape)
      return z - s.lr * grad(z) + jnp.sqrt(2 * s.lr) * noise, None
    z, _ = jax.lax.scan(step, jax.random.normal(key, (len(m), nets.latent_dim)), jnp.arange(s.steps))
    return nets.G(g_params, z)

  lines = []
  n = len(clean)
  for name in task_names:
    runs = []
    for c in range(chains):
      mc = api.Model(config=cfg.copy_and_resolve_references(), params=model.params, workdir=workdir)
      mc.config.solve.seed = int(cfg.solve.seed) + c
      mc.config.solve.ge_sample.update(restarts=1, output='best')  # one chain per seed, whatever the config returns
      runs.append(api.restore(mc, clean, task=name, methods=('ge_sample',)))
    xs = np.stack([r.recon['ge_sample'] for r in runs])               # (R, N, H, W, C)
    y = clean if runs[0].corrupted is None else runs[0].corrupted  # compression: the code of x itself
    m = nets.E(ae_params, jnp.asarray(y))
    ds = np.stack([np.asarray(d_logit(jnp.asarray(x))) for x in xs])
    cs = np.stack([np.asarray(code_res(jnp.asarray(x), m)) for x in xs])
    rows = np.arange(n)
    picks = {'chain 0': xs[0], 'max D of chains': xs[ds.argmax(0), rows],
             'min code residual': xs[cs.argmin(0), rows]}
    for w in weights:
      picks[f'D-guided, w {w:g}'] = np.asarray(guided(m, jax.random.key(5), float(w)))
    for label, x in picks.items():
      lines.append(f'{name:15s} {label:20s}: PSNR {psnr(x):5.2f}  FD {fd(x):6.1f}')
  return lines


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--workdir', required=True)
  ap.add_argument('--probe', choices=('radius', 'chains'), required=True)
  ap.add_argument('--n', type=int, default=100, help='validation images (default 100)')
  ap.add_argument('--tasks', default='deblur,superres-x4,inpaint-center')
  ap.add_argument('--chains', type=int, default=4)
  ap.add_argument('--weights', default='10,30', help='D-guidance weights w of the chains probe')
  args = ap.parse_args()
  from ge_jax import api, data, metrics, perception, tasks
  from ge_jax.errors import UserError
  try:
    model = api.load(args.workdir)
    ds = data.load(model.config.data)
    if ds.train_labels is None:
      raise UserError('these probes score realism on the classifier\'s features, which need labelled data.')
    if not 2 <= args.n <= len(ds.val):
      raise UserError(f'--n={args.n}: pick 2..{len(ds.val)} validation images.')
    names = [t for t in args.tasks.split(',') if t]
    for t in names:
      tasks.get(t)
    weights = [float(w) for w in args.weights.split(',') if w]
    clean = np.asarray(ds.val[:args.n], np.float32)
    ext = perception.classifier_extractor(args.workdir, ds)
    ref = ext.features(clean)
    fd = lambda x: perception.frechet_distance(ext.features(np.asarray(x)), ref)
    psnr = lambda x: float(np.mean(metrics.psnr(metrics.to_unit(np.asarray(x)), metrics.to_unit(clean))))
    if args.probe == 'radius':
      lines = radius_probe(model, fd, args.n)
    else:
      lines = chains_probe(model, args.workdir, clean, fd, psnr, names, args.chains, weights)
  except (UserError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  print(f'{args.probe} probe, {args.workdir}, {args.n} validation images (FD against them, at the same n):')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
