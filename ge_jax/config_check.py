"""Whole-config validation before any work: one sentence naming the key, the value and what is allowed.

`validate(config, base)` checks every block (data, model, gan, ae, solve, ops, eval), not only the one the
command uses first, so a typo in the AE block is reported before the GAN trains for an hour. Keys
must exist in the base config (a misspelt key assigned inside a config file is caught with a
did-you-mean), unless they are optional (`OPTIONAL_KEYS`) or the config declares them in
`config.declared_keys` (a tuple of dotted names).
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

from ge_jax import data, experiment, models, operators, pretrain
from ge_jax import methods as method_table
from ge_jax.errors import UserError
from ge_jax.methods import METHODS
from ge_jax.rules import boolean, int_at_least, is_num, non_negative, one_of, positive, show, string, unit
from ge_jax.rules import name as name_rule, value_range

# Keys a config may add although the base config does not have them (read with .get elsewhere).
OPTIONAL_KEYS = frozenset({'note', 'declared_keys', 'solve.record_every', 'ops.inpaint_fill'})


def _phase_rules(phase: str) -> dict:
  return {f'{phase}.steps': int_at_least(1), f'{phase}.batch_size': int_at_least(1),
          f'{phase}.lr': positive(), f'{phase}.ckpt_every': int_at_least(1),
          f'{phase}.sample_every': int_at_least(1), f'{phase}.log_every': int_at_least(1),
          f'{phase}.keep': int_at_least(1)}


def rules() -> dict[str, tuple[Callable[[Any], bool], str]]:
  """dotted key -> (check, what is allowed). Keys of the base config not listed here are only
  type-checked; the methods' settings (config.solve's solver keys) are checked by the methods."""
  r = {
      'name': name_rule(),
      'seed': int_at_least(0),
      'data.source': one_of(*data.SOURCES),
      'data.image_size': int_at_least(2),
      'data.channels': one_of(1, 3),
      'data.resize': boolean(),
      'data.value_range': one_of(*data.VALUE_RANGES),
      'data.test_size': int_at_least(1),
      'data.val_size': int_at_least(0),
      'data.path': string(),
      'data.name': string(),
      'model.latent_dim': int_at_least(1),
      'model.g_width': int_at_least(1),
      'model.d_width': int_at_least(1),
      'model.base_size': int_at_least(1),
      'model.g_final': one_of('conv', 'subpixel'),
      'model.g_norm': one_of('none', 'pixel'),
      'model.g_upsample': one_of('subpixel', 'resize'),
      'model.conv_impl': one_of('auto', *models.CONV_IMPLS),
      'gan.b1': unit(False),
      'gan.b2': unit(False),
      'gan.r1_weight': non_negative(),
      'gan.r1_every': int_at_least(1),
      'gan.ema_decay': unit(False),
      'ae.kind': one_of('ae', 'vae'),
      'ae.lr_schedule': one_of('constant', 'cosine'),
      'ae.lr_final_fraction': unit(True),
      'ae.code_dim': int_at_least(1),
      'ae.code_size': int_at_least(0),
      'ae.width': int_at_least(1),
      'ae.kl_weight': non_negative(),
      'ae.generated_fraction': unit(True),
      'ae.generated_scale': value_range(),
      'ae.augment': string(),
      'ae.augment_recon': non_negative(),
      'ae.augment_weight': non_negative(),
      'solve.task': one_of(*operators.TASKS),
      'solve.n_images': int_at_least(1),
      'solve.batch_size': int_at_least(1),
      'solve.seed': int_at_least(0),
      'ops.seed': int_at_least(0),
      'eval.domain_metrics': one_of(*experiment.DOMAIN_METRICS),
  }
  r.update(_phase_rules('gan'))
  r.update(_phase_rules('ae'))
  return r


def _flatten(d, prefix: str = '') -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    key = f'{prefix}{k}'
    if hasattr(v, 'items') and not isinstance(v, (str, bytes)):
      out[key] = _SECTION
      out.update(_flatten(v, key + '.'))
    else:
      out[key] = v
  return out


_SECTION = object()


def check_keys(config, base) -> None:
  """Raises UserError for a key the base config does not have (with a did-you-mean)."""
  have, known = _flatten(config), _flatten(base)
  declared = set(OPTIONAL_KEYS) | set(config.get('declared_keys', None) or ())
  for key, value in have.items():
    if key in known or key in declared or any(key.startswith(d + '.') for d in declared):
      if key in known and (known[key] is _SECTION) != (value is _SECTION):
        kind = 'a block of settings' if known[key] is _SECTION else 'a single value'
        raise UserError(f'config.{key} must be {kind}, as in the base config; got {show(value) if value is not _SECTION else "a block"}.')
      continue
    parent, _, leaf = key.rpartition('.')
    siblings = [k.rpartition('.')[2] for k in known if k.rpartition('.')[0] == parent]
    close = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.6)
    hint = f'did you mean config.{parent + "." if parent else ""}{close[0]}? ' if close else ''
    raise UserError(f'config.{key} is not a setting of the base config; {hint}'
                    f'(a config that needs a new key lists it in config.declared_keys).')
  missing = [k for k, v in known.items() if k not in have]
  if missing:
    raise UserError(f'config.{missing[0]} is missing; derive the config from the base config '
                    '(e.g. configs/mnist.py get_config()) so every setting has a value.')


def check_values(config, base) -> None:
  """Each value against its rule (range or choice); others must keep the base value's type."""
  have, known = _flatten(config), _flatten(base)
  table = rules()
  for key, value in have.items():
    if value is _SECTION or method_table.is_setting(key):
      continue  # the methods check their own settings (check_together)
    if key in table:
      check, what = table[key]
      if not check(value):
        raise UserError(f'config.{key}={show(value)} is not allowed; it must be {what}.')
    elif key in known and known[key] is not None and value is not None:
      want = type(known[key])
      if not isinstance(value, want) and not (want is float and is_num(value)):
        raise UserError(f'config.{key}={show(value)} has the wrong type; it must be a {want.__name__} '
                        f'like the base value {show(known[key])}.')


def check_together(config, base, methods=METHODS) -> None:
  """Settings that are each valid but meaningless together, or that the libraries reject; and every
  method's settings, resolved as a run resolves them, on an image task and on a code-only one."""
  models.num_upsamplings(config.data.image_size, config.model.base_size)
  ae = config.ae
  n_gen = pretrain.generated_count(ae)
  if ae.batch_size - n_gen < 0:
    raise UserError(f'config.ae.batch_size={ae.batch_size} is too small for generated_fraction={ae.generated_fraction}.')
  shape = (config.data.image_size,) * 2 + (config.data.channels,)
  pretrain.augment_operators(ae, config.ops, shape)  # unknown task names in config.ae.augment
  for task in operators.TASKS:
    operators.make(task, config.ops, shape)
  for code_only in (False, True):
    task = method_table.Task(name='compress' if code_only else 'denoise', code_only=code_only, ops=config.ops)
    for m in method_table.TABLE:
      m.settings(config, task)
  # Found here, not when the first batch is scored after the solve. ('auto' gives rock only for
  # data.source='rock', whose loader states its own one-channel rule.)
  if config.eval.domain_metrics == 'rock' and config.data.channels != 1:
    raise UserError(f"config.eval.domain_metrics='rock' segments grayscale slices, but config.data.channels="
                    f"{config.data.channels}; set config.eval.domain_metrics='none' (or 'auto') for colour images.")


# (key, when it is ignored, why): a value changed from the base config's while ignored is an error.
_IGNORED = (
    ('data.path', lambda c: c.data.source not in ('folder', 'npz'),
     "it is read only with config.data.source='folder' or 'npz'"),
    ('data.name', lambda c: c.data.source in ('folder', 'npz', 'builtin', 'rock', 'photos'),
     "it names a TFDS dataset, read only with config.data.source='auto' or 'tfds'"),
    ('data.tfds_data_dir', lambda c: c.data.source not in ('auto', 'tfds'),
     "it is TFDS's data folder, read only with config.data.source='auto' or 'tfds'"),
    ('data.resize', lambda c: c.data.source != 'folder', "it is read only with config.data.source='folder'"),
    ('data.crop', lambda c: c.data.source != 'folder', "it is read only with config.data.source='folder'"),
    ('data.crops_per_image', lambda c: c.data.source != 'folder' or c.data.get('crop', 'center') != 'random',
     "it is read only with config.data.source='folder' and config.data.crop='random'"),
    ('data.value_range', lambda c: c.data.source != 'npz', "it reads float arrays of config.data.source='npz' only"),
    ('ae.kl_weight', lambda c: c.ae.kind != 'vae', "it weighs the KL term of config.ae.kind='vae' only"),
    ('ae.augment_weight', lambda c: not c.ae.augment, 'config.ae.augment is empty (no augmentation)'),
    ('ae.augment_recon', lambda c: not c.ae.augment, 'config.ae.augment is empty (no augmentation)'),
    ('gan.r1_every', lambda c: c.gan.r1_weight == 0, 'config.gan.r1_weight is 0 (no R1 penalty)'),
)


def _get(config, dotted: str):
  for part in dotted.split('.'):
    config = config.get(part) if hasattr(config, 'get') else None
  return config


def check_no_effect(config, base) -> None:
  """A setting changed from the base value where it is ignored is almost surely a mistake."""
  for key, ignored, why in _IGNORED:
    value = _get(config, key)
    if value != _get(base, key) and ignored(config):
      raise UserError(f'config.{key}={show(value)} has no effect: {why}.')


def validate(config, base, methods=METHODS) -> None:
  """Raises UserError (one sentence) for the first problem of `config`; `base` defines the keys."""
  check_keys(config, base)
  check_values(config, base)
  check_together(config, base, methods)
  check_no_effect(config, base)
