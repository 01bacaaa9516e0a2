"""Whole-config validation before any work: one sentence naming the key, the value and what is allowed.

`validate(config, base)` checks every block (data, model, gan, ae, solve, ops, eval), not only the one the
command uses first, so a typo in the AE block is reported before the GAN trains for an hour. Keys
must exist in the base config (a misspelt key assigned inside a config file is caught with a
did-you-mean), unless they are optional (`OPTIONAL_KEYS`) or the config declares them in
`config.declared_keys` (a tuple of dotted names).
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any, Callable

from ge_jax.errors import UserError
from ge_jax.methods import METHODS, SAMPLED, SOLVER_METHODS

# Keys a config may add although the base config does not have them (read with .get elsewhere).
OPTIONAL_KEYS = frozenset({'note', 'declared_keys', 'solve.record_every', 'ops.inpaint_fill'})


def _is_int(v) -> bool:
  import numpy as np
  return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v) -> bool:
  import numpy as np
  return (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
          and math.isfinite(float(v)))


def _int_at_least(low: int) -> tuple[Callable[[Any], bool], str]:
  return (lambda v: _is_int(v) and v >= low), f'an integer >= {low}'


def _positive() -> tuple[Callable[[Any], bool], str]:
  return (lambda v: _is_num(v) and v > 0), 'a finite number > 0'


def _non_negative() -> tuple[Callable[[Any], bool], str]:
  return (lambda v: _is_num(v) and v >= 0), 'a finite number >= 0'


def _unit(closed_top: bool) -> tuple[Callable[[Any], bool], str]:
  if closed_top:
    return (lambda v: _is_num(v) and 0 <= v <= 1), 'a number in [0, 1]'
  return (lambda v: _is_num(v) and 0 <= v < 1), 'a number in [0, 1)'


def _one_of(*choices) -> tuple[Callable[[Any], bool], str]:
  return (lambda v: v in choices), 'one of ' + ', '.join(repr(c) for c in choices)


def _optional(rule) -> tuple[Callable[[Any], bool], str]:
  check, what = rule
  return (lambda v: v is None or check(v)), f'None (unset) or {what}'


def _bool() -> tuple[Callable[[Any], bool], str]:
  return (lambda v: isinstance(v, bool)), 'True or False'


def _str() -> tuple[Callable[[Any], bool], str]:
  return (lambda v: isinstance(v, str)), 'a string'


def _range() -> tuple[Callable[[Any], bool], str]:
  ok = lambda v: (isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_num(x) for x in v)
                  and 0 <= v[0] <= v[1])
  return ok, 'two numbers (lo, hi) with 0 <= lo <= hi'


def _phase_rules(phase: str) -> dict:
  return {f'{phase}.steps': _int_at_least(1), f'{phase}.batch_size': _int_at_least(1),
          f'{phase}.lr': _positive(), f'{phase}.ckpt_every': _int_at_least(1),
          f'{phase}.sample_every': _int_at_least(1), f'{phase}.log_every': _int_at_least(1),
          f'{phase}.keep': _int_at_least(1)}


def rules() -> dict[str, tuple[Callable[[Any], bool], str]]:
  """dotted key -> (check, what is allowed). Keys of the base config not listed here are only type-checked."""
  from ge_jax import data, operators
  from ge_jax.experiment import DOMAIN_METRICS
  from ge_jax.models import CONV_IMPLS
  from ge_jax.solver import OUTPUTS, PRIORS, SCHEDULES
  r = {
      'name': ((lambda v: isinstance(v, str) and re.fullmatch(r'[A-Za-z0-9_.-]+', v) is not None),
               'a non-empty name of letters, digits, _ . -'),
      'seed': _int_at_least(0),
      'data.source': _one_of(*data.SOURCES),
      'data.image_size': _int_at_least(2),
      'data.channels': _one_of(1, 3),
      'data.resize': _bool(),
      'data.value_range': _one_of(*data.VALUE_RANGES),
      'data.test_size': _int_at_least(1),
      'data.val_size': _int_at_least(0),
      'data.path': _str(),
      'data.name': _str(),
      'model.latent_dim': _int_at_least(1),
      'model.g_width': _int_at_least(1),
      'model.d_width': _int_at_least(1),
      'model.base_size': _int_at_least(1),
      'model.g_final': _one_of('conv', 'subpixel'),
      'model.g_norm': _one_of('none', 'pixel'),
      'model.g_upsample': _one_of('subpixel', 'resize'),
      'model.conv_impl': _one_of('auto', *CONV_IMPLS),
      'gan.b1': _unit(False),
      'gan.b2': _unit(False),
      'gan.r1_weight': _non_negative(),
      'gan.r1_every': _int_at_least(1),
      'gan.ema_decay': _unit(False),
      'ae.kind': _one_of('ae', 'vae'),
      'ae.lr_schedule': _one_of('constant', 'cosine'),
      'ae.lr_final_fraction': _unit(True),
      'ae.code_dim': _int_at_least(1),
      'ae.code_size': _int_at_least(0),
      'ae.width': _int_at_least(1),
      'ae.kl_weight': _non_negative(),
      'ae.generated_fraction': _unit(True),
      'ae.generated_scale': _range(),
      'ae.augment': _str(),
      'ae.augment_recon': _non_negative(),
      'ae.augment_weight': _non_negative(),
      'solve.task': _one_of(*operators.TASKS),
      'solve.n_images': _int_at_least(1),
      'solve.batch_size': _int_at_least(1),
      'solve.steps': _int_at_least(1),
      'solve.lr': _positive(),
      'solve.schedule': _one_of(*SCHEDULES),
      'solve.lam': _non_negative(),
      'solve.prior': _one_of(*PRIORS),
      'solve.likelihood': _one_of('gaussian', 'censored'),
      'solve.restarts': _int_at_least(1),
      'solve.output': _one_of(*OUTPUTS),
      'solve.n_init': _int_at_least(0),
      'solve.seed': _int_at_least(0),
      'solve.record_every': _int_at_least(0),
      'solve.ge_sample.steps': _int_at_least(1),
      'solve.ge_sample.restarts': _int_at_least(1),
      'solve.ge_sample.n_init': _int_at_least(0),
      'solve.ge_sample.lr': _positive(),
      'solve.ge_sample.lam': _positive(),
      'solve.ge_sample.output': _one_of(*OUTPUTS),
      'solve.ge_sample.temperature': _positive(),
      'solve.ge_sample.lam_count': ((lambda v: v is None or (_is_num(v) and 0 < v < float('inf'))),
                                    'None (lam fixed) or a number > 0'),
      'solve.ge_pix.lam': _optional(_positive()),
      'solve.ge_pix.pixel_var': _positive(),
      'solve.ge_pix.max_pixel_step': _positive(),
      'solve.ge_pix.temperature': _positive(),
      'solve.ge_pix.restarts': _int_at_least(1),
      'solve.ge_pix.output': _one_of(*OUTPUTS),
      'solve.compress.steps': _optional(_int_at_least(1)),
      'solve.compress.restarts': _optional(_int_at_least(1)),
      'solve.compress.lam': _optional(_non_negative()),
      'ops.seed': _int_at_least(0),
      'eval.domain_metrics': _one_of(*DOMAIN_METRICS),
  }
  r.update(_phase_rules('gan'))
  r.update(_phase_rules('ae'))
  for m in SOLVER_METHODS:
    r[f'solve.lr_{m}'] = _optional(_positive())
    r[f'solve.lam_{m}'] = _optional(_non_negative())
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


def _show(v) -> str:
  return repr(v) if not isinstance(v, float) else f'{v:g}'


def check_keys(config, base) -> None:
  """Raises UserError for a key the base config does not have (with a did-you-mean)."""
  have, known = _flatten(config), _flatten(base)
  declared = set(OPTIONAL_KEYS) | set(config.get('declared_keys', None) or ())
  for key, value in have.items():
    if key in known or key in declared or any(key.startswith(d + '.') for d in declared):
      if key in known and (known[key] is _SECTION) != (value is _SECTION):
        kind = 'a block of settings' if known[key] is _SECTION else 'a single value'
        raise UserError(f'config.{key} must be {kind}, as in the base config; got {_show(value) if value is not _SECTION else "a block"}.')
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
    if value is _SECTION:
      continue
    if key in table:
      check, what = table[key]
      if not check(value):
        raise UserError(f'config.{key}={_show(value)} is not allowed; it must be {what}.')
    elif key in known and known[key] is not None and value is not None:
      want = type(known[key])
      if not isinstance(value, want) and not (want is float and _is_num(value)):
        raise UserError(f'config.{key}={_show(value)} has the wrong type; it must be a {want.__name__} '
                        f'like the base value {_show(known[key])}.')


def check_together(config, base, methods=METHODS) -> None:
  """Settings that are each valid but meaningless together, or that the libraries reject."""
  from ge_jax import experiment, models, operators, pretrain
  from ge_jax.solver import SolverSpec
  models.num_upsamplings(config.data.image_size, config.model.base_size)
  ae = config.ae
  n_gen = pretrain.generated_count(ae)
  if ae.batch_size - n_gen < 0:
    raise UserError(f'config.ae.batch_size={ae.batch_size} is too small for generated_fraction={ae.generated_fraction}.')
  shape = (config.data.image_size,) * 2 + (config.data.channels,)
  pretrain.augment_operators(ae, config.ops, shape)  # unknown task names in config.ae.augment
  for task in operators.TASKS:
    operators.make(task, config.ops, shape)
  for m in SOLVER_METHODS:
    SolverSpec.from_config(config.solve, m)
  for m in SAMPLED:  # their chains and output, as the run reads them (a mean needs two chains)
    experiment.sampler_output(config.solve, m)
  # Found here, not when the first batch is scored after the solve. ('auto' gives rock only for
  # data.source='rock', whose loader states its own one-channel rule.)
  if config.eval.domain_metrics == 'rock' and config.data.channels != 1:
    raise UserError(f"config.eval.domain_metrics='rock' segments grayscale slices, but config.data.channels="
                    f"{config.data.channels}; set config.eval.domain_metrics='none' (or 'auto') for colour images.")


# (key, when it is ignored, why): a value changed from the base config's while ignored is an error.
_IGNORED = (
    ('data.path', lambda c: c.data.source not in ('folder', 'npz'),
     "it is read only with config.data.source='folder' or 'npz'"),
    ('data.name', lambda c: c.data.source in ('folder', 'npz', 'builtin'),
     "it names a TFDS dataset, read only with config.data.source='auto' or 'tfds'"),
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
      raise UserError(f'config.{key}={_show(value)} has no effect: {why}.')


def validate(config, base, methods=METHODS) -> None:
  """Raises UserError (one sentence) for the first problem of `config`; `base` defines the keys."""
  check_keys(config, base)
  check_values(config, base)
  check_together(config, base, methods)
  check_no_effect(config, base)
