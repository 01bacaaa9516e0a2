"""Perception scores of restored images: realism of the set, semantic fidelity, per-image distance.

Distortion (PSNR, SSIM: ge_jax.metrics) says how close each restoration is to its clean image;
these say whether the restored *set* looks like the clean set (Blau & Michaeli, CVPR 2018):

  fd                Frechet distance between Gaussian fits of the features (FID-like; biased
                    upwards at small N, so compare methods at the same N), with a paired
                    bootstrap standard error `fd_se`;
  kid               unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3
                    (KID, Binkowski et al. 2018), with a jackknife standard error `kid_se`;
  accuracy          share of restorations the classifier labels as the clean image's label
                    (only with labels and an extractor that classifies);
  feature_distance  per image, ||f(restored_i) - f(clean_i)||_2 in the extractor's features.

Both set scores are 0 for a perfect method (the restored set *is* the clean set).

Feature extractors (`FeatureExtractor`, images (N, H, W, C) in [-1, 1] -> (N, F)):

  classifier  the project's MNIST classifier (ge_jax.classifier: trained on the train split's
              labels; 128-d penultimate features). Semantic, needs labelled data.
  random      a fixed, seeded, randomly initialised multi-scale CNN, for any dataset. Why this
              one: no pretrained weights can be downloaded here, and the judge must not be any
              network the judged methods use (GE optimises E's codes, so E's features would
              favour GE; D was trained against G). Random convolutional features are a
              recognised offline embedding: Naeem et al. (ICML 2020, "Reliable fidelity and
              diversity metrics") propose randomly initialised CNN embeddings for domains where
              ImageNet features do not fit. Its weights come from numpy's PCG64
              with a fixed seed (stable across numpy and JAX versions), He-scaled so activations
              keep their size with depth: 3x3 convs, stride 1 then stride 2, with 16, 32, 64, 128,
              128, ... channels until the map is 4 px wide (4 stages at 28 px, receptive fields
              3, 7, 15 and 31 px: strokes, parts, whole digits; 5 at 64 px). Features are the
              global means of each stage's ReLU map, scaled by 10 / sqrt(channels) so every scale
              weighs the same and FDs read O(0.1)-O(100) (240-d at 28 px, 368-d at 64 px).
              It works for any H, W >= 8 and any channel count (weights depend on C).
              What it does not see: it has no notion of class; it is sensitive to noise and
              texture, which is what realism means at the pixel level.

FD, KID and the per-image distances of different extractors are not comparable with each other.
A sanity check on the built-in MNIST data is in tests/test_perception.py (val << blurred, noisy
<< uniform noise).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ge_jax import batching, classifier
from ge_jax.errors import UserError

RANDOM_SCALE = 10.0                 # fixed factor on the random CNN's features: FDs of O(0.1)-O(100)
KID_BLOCKS = 10                     # jackknife blocks of the KID standard error
FD_BOOTSTRAP = 20                   # bootstrap replicates of the FD standard error


# --- feature extractors --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
  """A fixed image embedding: `features(images) -> (N, F)`, batched and jitted.

  Attributes:
    name: short key used in score dicts ('classifier', 'random').
    description: one line saying what the features are.
    apply: jittable (params, x (B, H, W, C)) -> (B, F + K): F features, then K class logits
      (K = num_classes; 0 for extractors that do not classify).
    params: the pytree `apply` takes.
    num_features: F.
    num_classes: K (0: no classification).
    batch_size: images per compiled call (the last batch is padded).
  """
  name: str
  description: str
  apply: Callable[[Any, jax.Array], jax.Array]
  params: Any
  num_features: int
  num_classes: int = 0
  batch_size: int = 500

  def embed(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(features (N, F) float64, predicted labels (N,) or None) of images in [-1, 1]."""
    x = check_images(images, f'the images given to the {self.name} extractor')
    out = batching.map_batched(_jitted(self.apply), self.params, x, min(self.batch_size, len(x)))
    feats = np.asarray(out[:, :self.num_features], np.float64)
    labels = out[:, self.num_features:].argmax(1) if self.num_classes else None
    return feats, labels

  def features(self, images: np.ndarray) -> np.ndarray:
    return self.embed(images)[0]


@functools.cache
def _jitted(fn):
  """One jitted wrapper per apply function, so repeated calls reuse the compiled code."""
  return jax.jit(fn)


def check_images(images, what: str = 'the images') -> np.ndarray:
  x = np.asarray(images, np.float32)
  if x.ndim != 4 or x.shape[0] == 0:
    raise UserError(f'{what} must be a non-empty (N, H, W, C) array, got shape {x.shape}.')
  return x


def random_stages(height: int, width: int) -> tuple[int, ...]:
  """Channels per stage of the random CNN: stride-2 stages until the map is at most 4 px wide, so
  the last stage sees the whole image (receptive fields 3, 7, 15, 31, 63, ... px)."""
  n, side = 1, min(height, width)
  while side > 4:
    side, n = -(-side // 2), n + 1
  return tuple(min(16 * 2**s, 128) for s in range(n))


def _random_cnn_params(channels: int, stages: tuple[int, ...], seed: int) -> list[jax.Array]:
  """He-normal 3x3 conv weights (HWIO), one per stage, from numpy's PCG64 (stable across versions)."""
  rng = np.random.Generator(np.random.PCG64(seed))
  out, c_in = [], channels
  for c_out in stages:
    w = rng.standard_normal((3, 3, c_in, c_out)) * math.sqrt(2.0 / (9 * c_in))
    out.append(jnp.asarray(w.astype(np.float32)))
    c_in = c_out
  return out


def _conv(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
  # Edge padding, so a border is not seen as an edge (zero padding would add one on [-1, 1] images).
  x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='edge')
  return jax.lax.conv_general_dilated(x, w, (stride, stride), 'VALID',
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _random_cnn_apply(params: list[jax.Array], x: jax.Array) -> jax.Array:
  """Global means of each stage's ReLU map, scaled by RANDOM_SCALE / sqrt(the stage's channels)."""
  feats, h = [], x
  for s, w in enumerate(params):
    h = jax.nn.relu(_conv(h, w, 1 if s == 0 else 2))
    feats.append(jnp.mean(h, axis=(1, 2)) * (RANDOM_SCALE / math.sqrt(h.shape[-1])))
  return jnp.concatenate(feats, axis=-1)


def random_extractor(image_shape: tuple[int, int, int], seed: int = 0, batch_size: int = 500) -> FeatureExtractor:
  """The fixed random multi-scale CNN for images of shape (H, W, C) (see the module docstring)."""
  if len(image_shape) != 3 or not all(batching.is_int(d) and d >= 1 for d in image_shape) \
      or min(image_shape[:2]) < 8:
    raise UserError(f'image_shape must be (H, W, C) with H, W >= 8 and C >= 1, got {image_shape!r}.')
  h, w, c = (int(d) for d in image_shape)
  stages = random_stages(h, w)
  return FeatureExtractor(
      name='random', params=_random_cnn_params(c, stages, int(seed)), apply=_random_cnn_apply,
      num_features=sum(stages), batch_size=batch_size,
      description=f'fixed random CNN (seed {seed}, stages {stages}), global-mean ReLU features per stage, '
                  f'{sum(stages)}-d')


def _classifier_apply(params: dict, x: jax.Array) -> jax.Array:
  k = params['Dense_1']['bias'].shape[0]
  logits, feats = classifier.Classifier(num_classes=k).apply({'params': params}, x)
  return jnp.concatenate([feats, logits], axis=-1)


def classifier_extractor(workdir: str, dataset, batch_size: int = 500) -> FeatureExtractor:
  """The project's classifier (cached in <workdir>/classifier/, trained on dataset.train if absent)."""
  params = classifier.load_or_train(workdir, dataset)
  k = int(np.asarray(params['Dense_1']['bias']).shape[0])
  return FeatureExtractor(
      name='classifier', params=jax.tree.map(jnp.asarray, params), apply=_classifier_apply,
      num_features=classifier.FEATURES, num_classes=k, batch_size=batch_size,
      description=f'ge_jax.classifier (trained on the train split), {classifier.FEATURES}-d penultimate features')


def default_extractors(workdir: str | None, dataset, image_shape: tuple[int, int, int]) -> list[FeatureExtractor]:
  """The random CNN always; the classifier too when the dataset has train labels and a workdir."""
  out = [random_extractor(image_shape)]
  if workdir is not None and getattr(dataset, 'train_labels', None) is not None:
    out.insert(0, classifier_extractor(workdir, dataset))
  return out


# --- set distances -------------------------------------------------------------------------------


def _one_blas_thread(fn):
  """Runs fn with single-threaded BLAS: these matrices are small (D <= a few hundred), and on a
  busy CPU threaded BLAS made the bootstrap 25x slower (41 s against 1.7 s for 500 x 352)."""
  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    try:
      from threadpoolctl import threadpool_limits   # installed with scikit-learn
      ctx = threadpool_limits(1, user_api='blas')
    except ImportError:
      ctx = contextlib.nullcontext()
    with ctx:
      return fn(*args, **kwargs)
  return wrapped


def _gaussian(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  a = np.asarray(a, np.float64)
  if a.ndim != 2 or a.shape[0] < 2:
    raise UserError(f'a Frechet distance needs at least 2 feature vectors (N, D), got shape {a.shape}.')
  return a.mean(0), np.cov(a, rowvar=False).reshape(a.shape[1], a.shape[1])


def _sqrtm_psd(s: np.ndarray) -> np.ndarray:
  w, v = np.linalg.eigh(s)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _fd_from(mu_a, half_a, tr_a, mu_b, s_b) -> float:
  # tr((S_a S_b)^(1/2)) = sum of sqrt(eigenvalues of S_a^(1/2) S_b S_a^(1/2)), a symmetric PSD matrix.
  tr_covmean = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(half_a @ s_b @ half_a), 0, None)))
  value = float(np.sum((mu_a - mu_b)**2) + tr_a + np.trace(s_b) - 2 * tr_covmean)
  return max(value, 0.0)  # >= 0 in exact arithmetic; identical sets give -1e-12 from rounding


@_one_blas_thread
def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
  """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two feature sets (N, D)."""
  mu_a, s_a = _gaussian(a)
  mu_b, s_b = _gaussian(b)
  return _fd_from(mu_a, _sqrtm_psd(s_a), np.trace(s_a), mu_b, s_b)


def _bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, n, (n_boot, n))


@_one_blas_thread
def frechet_distance_se(ref: np.ndarray, x: np.ndarray, n_boot: int = FD_BOOTSTRAP, seed: int = 0,
                        _ref_cache: dict | None = None) -> float:
  """Paired bootstrap standard error of frechet_distance(ref, x): rows i of ref and x belong together
  (clean image i and its restoration) and are resampled together.

  The same seed draws the same resamples, so methods scored against the same reference get paired
  replicates. `_ref_cache` (internal) keeps the reference side of each replicate between methods.
  """
  ref, x = np.asarray(ref, np.float64), np.asarray(x, np.float64)
  if ref.shape != x.shape:
    raise UserError(f'paired features must have the same shape, got {ref.shape} and {x.shape}.')
  if n_boot < 2:
    return float('nan')
  cache = {} if _ref_cache is None else _ref_cache
  values = []
  for r, idx in enumerate(_bootstrap_indices(len(ref), n_boot, seed)):
    if r not in cache:
      mu, s = _gaussian(ref[idx])
      cache[r] = (mu, _sqrtm_psd(s), np.trace(s))
    mu_b, s_b = _gaussian(x[idx])
    values.append(_fd_from(*cache[r], mu_b, s_b))
  return float(np.std(values, ddof=1))


def _kid_block_sums(a: np.ndarray, b: np.ndarray, blocks: np.ndarray, g: int, chunk: int = 1024):
  """Block sums of the three kernel matrices (g x g) and of the self-kernel diagonals (g,), in row
  chunks so memory stays O(chunk * N)."""
  d = a.shape[1]
  onehot = np.eye(g)[blocks]                         # (N, g)
  sums = {k: np.zeros((g, g)) for k in ('aa', 'bb', 'ab')}
  for start, stop in batching.chunks(len(a), chunk):
    for key, left, right in (('aa', a, a), ('bb', b, b), ('ab', a, b)):
      k = (left[start:stop] @ right.T / d + 1.0)**3   # (chunk, N)
      sums[key] += onehot[start:stop].T @ (k @ onehot)
  diag = {k: np.bincount(blocks, ((v * v).sum(1) / d + 1.0)**3, g) for k, v in (('aa', a), ('bb', b))}
  return sums, diag


@_one_blas_thread
def kid(a: np.ndarray, b: np.ndarray, blocks: int = KID_BLOCKS, seed: int = 0) -> tuple[float, float]:
  """KID: (unbiased MMD^2 estimate, its standard error) of paired feature sets a, b (N, D).

  The estimate uses all pairs, k(x, y) = (x.y / d + 1)^3:
    sum_{i != j} k(a_i, a_j) / (n (n-1)) + sum_{i != j} k(b_i, b_j) / (n (n-1)) - 2 sum_{i, j} k(a_i, b_j) / n^2.
  Both sets are first divided by the RMS feature value of `a` (the reference: the clean images),
  so x.y / d is O(1) whatever the extractor's scale (the cubic kernel is not scale-invariant);
  KIDs are comparable between methods scored against the same reference.
  Binkowski et al. average it over random subsets of 1000 only to bound the cost at N = 50,000; at
  the project's N (hundreds to a few thousand) the all-pairs estimate is cheap (computed in row
  chunks) and has the lowest variance. Its standard error is a delete-one-block jackknife over
  `blocks` seeded random blocks of paired rows (the rows of a and b are dropped together).
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 2:
    raise UserError(f'KID needs two paired feature sets of the same shape (N, D), got {a.shape} and {b.shape}.')
  n = len(a)
  g = max(2, min(int(blocks), n // 2))
  if n < 4:
    raise UserError(f'KID needs at least 4 images, got {n}.')
  scale = math.sqrt(np.mean(np.sum(a * a, axis=1)) / a.shape[1]) or 1.0
  a, b = a / scale, b / scale
  block = np.random.default_rng(seed).permutation(n) % g
  sums, diag = _kid_block_sums(a, b, block, g)
  sizes = np.bincount(block, minlength=g).astype(np.float64)
  keep = np.vstack([np.ones(g), 1.0 - np.eye(g)])      # row 0: all blocks; row j+1: all but block j
  m = keep @ sizes

  def pair_sum(key):
    return np.einsum('rg,gh,rh->r', keep, sums[key], keep)
  within = lambda key: (pair_sum(key) - keep @ diag[key]) / (m * (m - 1))
  mmd = within('aa') + within('bb') - 2 * pair_sum('ab') / (m * m)
  full, leave_out = mmd[0], mmd[1:]
  se = math.sqrt((g - 1) / g * np.sum((leave_out - leave_out.mean())**2))
  return float(full), float(se)


def feature_distance(restored_features: np.ndarray, clean_features: np.ndarray) -> np.ndarray:
  """Per-image perceptual distance: ||f(restored_i) - f(clean_i)||_2, shape (N,)."""
  r, c = np.asarray(restored_features, np.float64), np.asarray(clean_features, np.float64)
  if r.shape != c.shape:
    raise UserError(f'paired features must have the same shape, got {r.shape} and {c.shape}.')
  return np.sqrt(np.sum((r - c)**2, axis=1))


def _mean_se(v: np.ndarray) -> tuple[float, float]:
  v = np.asarray(v, np.float64)
  se = float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
  return float(np.mean(v)), se


# --- one entry point -----------------------------------------------------------------------------


def perception_scores(restored: Mapping[str, np.ndarray], clean: np.ndarray, labels: np.ndarray | None = None,
                      extractors: Sequence[FeatureExtractor] = (), *, n_boot: int = FD_BOOTSTRAP,
                      kid_blocks: int = KID_BLOCKS, seed: int = 0, per_image: bool = True) -> dict:
  """Scores every method's restorations against the clean images, with every extractor.

  Args:
    restored: method -> (N, H, W, C) restorations in [-1, 1], row i restoring clean[i]. Rows that
      are not finite (a diverged solve) are left out of that method's scores (`n_scored` says).
    clean: (N, H, W, C) clean images in [-1, 1] (for the shift suite: the shifted clean images;
      the classifier's own accuracy on them is the ceiling, e.g. 0.53 on digits scaled by 0.7).
    labels: (N,) int labels of the clean images, or None (then no accuracy).
    extractors: FeatureExtractors (default: the random CNN only).
    n_boot: bootstrap replicates of the FD standard error (0: no SE).
    kid_blocks: jackknife blocks of the KID standard error.
    per_image: include the per-image feature distances.

  Returns (JSON-serialisable):
    {'n_images': N, 'extractors': {name: description},
     'methods': {method: {extractor name: {n_scored, fd, fd_se, kid, kid_se, feature_distance_mean,
                                           feature_distance_se, feature_distance[, accuracy, accuracy_se]}}}}
  """
  clean = check_images(clean, 'the clean images')
  n = len(clean)
  if not np.isfinite(clean).all():
    raise UserError('the clean images have NaN or Inf values; the reference set must be finite.')
  if labels is not None and len(labels) != n:
    raise UserError(f'got {len(labels)} labels for {n} clean images; give one label per image or none.')
  names = list(restored)
  for m in names:
    x = np.asarray(restored[m])
    if x.shape != clean.shape:
      raise UserError(f'restorations of {m!r} have shape {x.shape}, but the clean images {clean.shape}.')
  extractors = list(extractors) or [random_extractor(clean.shape[1:])]
  out: dict[str, Any] = dict(n_images=n, extractors={e.name: e.description for e in extractors},
                             methods={m: {} for m in names})
  finite = {m: np.isfinite(np.asarray(restored[m]).reshape(n, -1)).all(axis=1) for m in names}
  for ext in extractors:
    f_clean, _ = ext.embed(clean)
    cache: dict = {}
    for m in names:
      ok = finite[m]
      # Diverged rows are zeroed for the (fixed-shape) embedding call, then dropped.
      f_all, pred = ext.embed(np.where(ok[:, None, None, None], restored[m], 0.0))
      f, ref = f_all[ok], f_clean[ok]
      entry: dict[str, Any] = dict(n_scored=int(ok.sum()))
      if ok.sum() >= 4:
        entry['fd'] = frechet_distance(ref, f)
        entry['fd_se'] = frechet_distance_se(ref, f, n_boot, seed, _ref_cache=cache if ok.all() else None)
        entry['kid'], entry['kid_se'] = kid(ref, f, kid_blocks, seed)
      d = feature_distance(f, ref)
      if len(d):
        entry['feature_distance_mean'], entry['feature_distance_se'] = _mean_se(d)
      if per_image:
        entry['feature_distance'] = [round(float(v), 5) for v in d]
      if labels is not None and pred is not None and ok.any():
        correct = (pred[ok] == np.asarray(labels)[ok]).astype(np.float64)
        entry['accuracy'], entry['accuracy_se'] = _mean_se(correct)
      out['methods'][m][ext.name] = entry
  return out


def perception_table(scores: dict) -> str:
  """A plain-text table: one line per method and extractor (FD, KID x 1000, accuracy, distance)."""
  lines = [f'{"method":<12} {"features":<11} {"FD":>16} {"KID x 1e3":>16} {"accuracy":>15} {"feat. dist.":>16}']
  for m, per_ext in scores['methods'].items():
    for name, e in per_ext.items():
      fd = f'{e["fd"]:9.2f} +- {e["fd_se"]:<5.2f}' if 'fd' in e else 'n/a'
      k = f'{1e3 * e["kid"]:9.2f} +- {1e3 * e["kid_se"]:<5.2f}' if 'kid' in e else 'n/a'
      acc = f'{e["accuracy"]:7.3f} +- {e["accuracy_se"]:.3f}' if 'accuracy' in e else ''
      fdist = (f'{e["feature_distance_mean"]:8.3f} +- {e["feature_distance_se"]:.3f}'
               if 'feature_distance_mean' in e else 'n/a')
      lines.append(f'{m:<12} {name:<11} {fd:>16} {k:>16} {acc:>15} {fdist:>16}')
  return '\n'.join(lines)


# --- perception-distortion front -----------------------------------------------------------------


def pareto_front(points: Mapping[str, tuple[float, float]]) -> list[str]:
  """Methods on the perception-distortion front (higher PSNR and lower FD are better).

  A method is on the front unless another has PSNR >= and FD <= with at least one strict. Points
  with a NaN coordinate are never on it. Returned in the order given.
  """
  pts = {m: (float(p), float(f)) for m, (p, f) in points.items()}
  valid = {m: v for m, v in pts.items() if not (math.isnan(v[0]) or math.isnan(v[1]))}

  def dominated(m):
    p, f = valid[m]
    return any(q >= p and g <= f and (q > p or g < f) for o, (q, g) in valid.items() if o != m)
  return [m for m in pts if m in valid and not dominated(m)]
