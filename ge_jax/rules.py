"""Value rules for config settings: (check, what is allowed) pairs, and the one sentence a broken rule gives.

Shared by `config_check` (the blocks every command reads) and `methods` (the settings each method
resolves for itself), so a setting reads the same wherever it is checked.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import numpy as np

from ge_jax.errors import UserError

Rule = tuple[Callable[[Any], bool], str]


def is_int(v) -> bool:
  return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def is_num(v) -> bool:
  return (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
          and math.isfinite(float(v)))


def int_at_least(low: int) -> Rule:
  return (lambda v: is_int(v) and v >= low), f'an integer >= {low}'


def positive() -> Rule:
  return (lambda v: is_num(v) and v > 0), 'a finite number > 0'


def non_negative() -> Rule:
  return (lambda v: is_num(v) and v >= 0), 'a finite number >= 0'


def unit(closed_top: bool) -> Rule:
  if closed_top:
    return (lambda v: is_num(v) and 0 <= v <= 1), 'a number in [0, 1]'
  return (lambda v: is_num(v) and 0 <= v < 1), 'a number in [0, 1)'


def one_of(*choices) -> Rule:
  return (lambda v: v in choices), 'one of ' + ', '.join(repr(c) for c in choices)


def optional(rule: Rule) -> Rule:
  check, what = rule
  return (lambda v: v is None or check(v)), f'None (unset) or {what}'


def boolean() -> Rule:
  return (lambda v: isinstance(v, bool)), 'True or False'


def string() -> Rule:
  return (lambda v: isinstance(v, str)), 'a string'


def name() -> Rule:
  return ((lambda v: isinstance(v, str) and re.fullmatch(r'[A-Za-z0-9_.-]+', v) is not None),
          'a non-empty name of letters, digits, _ . -')


def value_range() -> Rule:
  ok = lambda v: (isinstance(v, (tuple, list)) and len(v) == 2 and all(is_num(x) for x in v)
                  and 0 <= v[0] <= v[1])
  return ok, 'two numbers (lo, hi) with 0 <= lo <= hi'


def show(v) -> str:
  return repr(v) if not isinstance(v, float) else f'{v:g}'


def check(key: str, value, rule: Rule):
  """`value` of config.<key> when it keeps `rule`, else UserError (one sentence); returns the value."""
  ok, what = rule
  if not ok(value):
    raise UserError(f'config.{key}={show(value)} is not allowed; it must be {what}.')
  return value
