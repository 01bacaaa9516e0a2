"""The restoration methods, each one object: what it needs, whether it applies, its settings, its rows, its run.

A `Method` is a frozen dataclass of pure pieces:
  needs        what it reads of a problem: the code E(y), the observed image y, the operator A;
  why_not      why it does not apply to a task (None: it applies);
  settings     its settings, read from config.solve and validated here, once (the solver below
               never names a config key);
  run          the restoration, given the inputs and those settings; it returns its rows
               (GE+pixels returns two: the chains' mean and one chain's sample);
  description  one line, read by solve.py's table, the report and api.restore's docstring.

`TABLE`'s order is the order of every results table, grid and --methods default. Adding a method is
one entry here (and its test). `experiment.restore` loops over the chosen entries.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import numpy as np

from ge_jax import classical, models, rules, solver, tasks
from ge_jax.errors import UserError

KINDS = ('blind', 'known', 'reference')
NEEDS = ('code', 'image', 'operator')
_G_RANDOM_STREAM = 2_000_003  # fold_in tag of g_random's latents, apart from the solver's draws

# ge_pix's settings for configs that do not set them (e.g. saved before the method existed):
# pixel_var as chosen on validation for the corruption-trained AE and the VAE; the largest step on
# the pixel term, lr / (2 pixel_var), as found stable on MNIST validation (docs/FIDELITY.md, section 5).
DEFAULT_PIXEL_VAR = 0.3
DEFAULT_MAX_PIXEL_STEP = 0.05


# --- what a method is told and what it returns --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Task:
  """The task as a method sees it.

  Attributes:
    name: the operator name (ge_jax.operators.TASKS), or 'none' for already-corrupted input.
    code_only: only the code E(x) is given (compression).
    noise_sigma: the operator's additive Gaussian noise (0: none).
    ops: config.ops (the classical restorations' tuned settings depend on it).
  """
  name: str
  code_only: bool = False
  noise_sigma: float = 0.0
  ops: Any = None

  @property
  def known(self) -> bool:
    """Whether the operator is known: not for input that came already corrupted."""
    return self.name != 'none'

  @classmethod
  def of(cls, name: str, op, ops_cfg) -> 'Task':
    return cls(name=name, code_only=op.code_only, noise_sigma=op.noise_sigma, ops=ops_cfg)


@dataclasses.dataclass(frozen=True)
class Latent:
  """A latent method's resolved settings: the solver spec, its learning rate and prior weight."""
  spec: solver.SolverSpec
  lr: Any
  lam: Any


@dataclasses.dataclass(frozen=True)
class Inputs:
  """What a method's run reads: the networks, the observation and how the solve is executed."""
  nets: Any
  params: dict
  key: Any                       # the solver's key; image i draws from fold_in(key, indices[i])
  indices: np.ndarray
  batch_size: int
  corrupted: np.ndarray | None   # the observed image y (None when only its code is given)
  codes: np.ndarray | None       # E(y), or E(x) for a code-only task
  forward: Callable | None       # the operator's A(x, params)
  op_params: Any                 # per-image operator parameters
  task: Task
  progress: bool = True
  place: Any = None
  plan: Any = None


@dataclasses.dataclass
class Output:
  """A method's rows: row name -> (N, H, W, C) images, and the solver's records where it ran one."""
  recon: dict[str, np.ndarray]
  objective: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  loss_trace: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  diverged: dict[str, list[int]] = dataclasses.field(default_factory=dict)
  z_trace: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  # row -> (posterior mean, per-pixel posterior std) over a sampling method's chains
  uncertainty: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Row:
  """A row a method returns beside its own (`field`: the solver Result field it holds)."""
  name: str
  label: str
  short: str
  description: str
  field: str


@dataclasses.dataclass(frozen=True)
class Method:
  """One restoration method (see the module docstring).

  Attributes:
    name: the key in --methods, Outcome.recon and results.json.
    label: its name in results.md and the figures; short: its row label in grid.png.
    kind: 'blind' (needs no knowledge of the operator) | 'known' (the operator is known and used) |
      'reference' (never a restoration: G's own realism at the same N).
    description: one line: what it computes.
    needs: a subset of NEEDS.
    resolve: (method, config, task, record_every) -> its settings (None where it has none).
    restore: (method, inputs, settings) -> Output.
    objective: the solver's objective for a latent method, else None; sampled: a Langevin chain.
    ge_form: fits the code E(y) through G (the generative encoder's blind forms).
    pixels: fits the observed pixels beside the code.
    on_code_only: what it says of a code-only task, where it does not apply (None: it applies).
    extra_rows: rows its run returns beside its own.
    recommended_for: operators for which it is the recommended blind method (README's guide).
    color: its colour in the convergence figure (the blind latent methods).
    task_check: task -> why it does not apply to that task beyond the above (None: it applies).
  """
  name: str
  label: str
  short: str
  kind: str
  description: str
  needs: frozenset[str]
  resolve: Callable[..., Any]
  restore: Callable[..., Output]
  objective: str | None = None
  sampled: bool = False
  ge_form: bool = False
  pixels: bool = False
  on_code_only: str | None = None
  extra_rows: tuple[Row, ...] = ()
  recommended_for: tuple[str, ...] = ()
  color: str | None = None
  task_check: Callable[[Task], str | None] | None = None

  @property
  def rows(self) -> tuple[str, ...]:
    return (self.name,) + tuple(r.name for r in self.extra_rows)

  def why_not(self, task: Task) -> str | None:
    """Why this method does not apply to `task`, or None."""
    if 'operator' in self.needs and not task.known:
      return 'not applicable: the operator is unknown for already-corrupted input'
    if task.code_only and self.on_code_only:
      return self.on_code_only
    return self.task_check(task) if self.task_check else None

  def settings(self, config, task: Task, record_every: int = 0):
    """Its settings for `task`, read from `config` and validated (UserError: one sentence)."""
    return self.resolve(self, config, task, record_every)

  def run(self, inputs: Inputs, settings) -> Output:
    return self.restore(self, inputs, settings)


# --- settings: read and checked here, once ----------------------------------------------------------


def _get(block, key: str, default=None):
  return block.get(key, default) if hasattr(block, 'get') else getattr(block, key, default)


def _solve_fields(s) -> dict:
  """The solver fields every latent method starts from (config.solve's steps, restarts, ...)."""
  fields = {}
  for key, low in (('steps', 1), ('restarts', 1), ('n_init', 0)):
    v = _get(s, key)
    if v is None:
      raise UserError(f'config.solve.{key} is missing; set it to a positive integer.')
    fields[key] = rules.check(f'solve.{key}', v, rules.int_at_least(low))
  for key, default, allowed in (('prior', 'l2', solver.PRIORS), ('schedule', 'constant', solver.SCHEDULES),
                                ('output', 'best', solver.OUTPUTS), ('sampler', 'adam', solver.SAMPLERS)):
    fields[key] = rules.check(f'solve.{key}', _get(s, key, default), rules.one_of(*allowed))
  every = rules.check('solve.record_every', _get(s, 'record_every', 0), rules.int_at_least(0))
  if every > fields['steps']:
    raise UserError(f'config.solve.record_every={every} exceeds config.solve.steps={fields["steps"]}; '
                    'use 0 (off) or a value <= steps.')
  if fields['output'] == 'mean' and fields['restarts'] < 2:
    raise UserError("config.solve.output='mean' averages over restarts; set config.solve.restarts >= 2.")
  return fields


def setting(s, key: str, method: str, rule: rules.Rule | None = None):
  """config.solve.<key>_<method> when set (lam_ge, lam_gan, ...), else config.solve.<key>; checked
  against `rule` when given."""
  own = _get(s, f'{key}_{method}')
  name, value = (f'solve.{key}_{method}', own) if own is not None else (f'solve.{key}', _get(s, key))
  if value is None:
    raise UserError(f'config.solve.{key}_{method} is not set; give it a value (see configs/mnist.py).')
  if rule is None:
    return value
  return rules.check(name, value, rules.optional(rule) if own is not None else rule)  # <key>_<m> may be unset


def _spec(objective: str, fields: dict, record_every: int, **changes) -> solver.SolverSpec:
  fields = {**fields, **changes}
  return solver.SolverSpec(objective=objective, **fields,
                           record_every=min(record_every, fields['steps']))


def _adam(m: Method, config, task: Task, record_every: int, **changes) -> Latent:
  s = config.solve
  fields = _solve_fields(s)
  lr = setting(s, 'lr', m.name, rules.positive())
  lam = setting(s, 'lam', m.name, rules.non_negative())
  return Latent(_spec(m.objective, fields, record_every, **changes), lr, lam)


def _compress(s, key: str, default):
  """config.solve.compress.<key>: GE's MAP on a code-only task; unset (no block, or None): default."""
  value = _get(_get(s, 'compress', None) or {}, key)
  if value is None:
    return default
  if key == 'lam':
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float('inf'):
      raise UserError(f'config.solve.compress.lam={value!r} must be a number >= 0 (the prior weight on a code-only task).')
    return float(value)
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise UserError(f'config.solve.compress.{key}={value!r} must be an integer >= 1 (GE\'s {key} on a code-only task).')
  return value


def _ge(m: Method, config, task: Task, record_every: int) -> Latent:
  """GE's MAP; on a code-only task (the code given exactly: nothing to overfit) with
  config.solve.compress's steps, restarts and lam, run to convergence (docs/FIDELITY.md, section 2)."""
  if not task.code_only:
    return _adam(m, config, task, record_every)
  s = config.solve
  fields = _solve_fields(s)
  steps, restarts = _compress(s, 'steps', fields['steps']), _compress(s, 'restarts', fields['restarts'])
  if fields['output'] == 'mean' and restarts < 2:
    raise UserError("config.solve.output='mean' averages over restarts; set config.solve.compress.restarts >= 2.")
  lat = _adam(m, config, task, record_every, steps=steps, restarts=restarts)
  return dataclasses.replace(lat, lam=_compress(s, 'lam', lat.lam))


def _csgm(m: Method, config, task: Task, record_every: int) -> Latent:
  """CSGM; with config.solve.likelihood='censored' the clipped values' likelihood at the task's noise."""
  likelihood = rules.check('solve.likelihood', _get(config.solve, 'likelihood', 'gaussian'),
                           rules.one_of('gaussian', 'censored'))
  sigma = task.noise_sigma if likelihood == 'censored' else 0.0  # 0 for tasks without Gaussian noise
  return _adam(m, config, task, record_every, censor_sigma=sigma)


def chains(s, method: str) -> tuple[int, str]:
  """A sampled method's (chains per image, output): config.solve.<method>'s, each else
  config.solve.ge_sample's (a config saved before ge_pix existed has no block of its own)."""
  block, base = _get(s, method) or {}, s.ge_sample
  restarts = _get(block, 'restarts', _get(base, 'restarts'))
  output = _get(block, 'output', _get(base, 'output'))
  if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
    raise UserError(f'config.solve.{method}.restarts={restarts!r} must be an integer >= 1 (chains per image).')
  if output not in solver.OUTPUTS:
    raise UserError(f'config.solve.{method}.output={output!r} is not one of {", ".join(map(repr, solver.OUTPUTS))}.')
  if output == 'mean' and restarts < 2:
    raise UserError(f"config.solve.{method}.output='mean' averages over chains; set config.solve.{method}.restarts >= 2.")
  return restarts, output


def _langevin(m: Method, config, task: Task, record_every: int) -> Latent:
  """A posterior sample by Langevin dynamics, from config.solve.ge_sample (chains: `chains`)."""
  s = config.solve
  g = s.ge_sample
  for key, rule in (('steps', rules.int_at_least(1)), ('n_init', rules.int_at_least(0)), ('lr', rules.positive()),
                    ('lam', rules.positive()), ('temperature', rules.positive()),
                    ('lam_count', (lambda v: v is None or (rules.is_num(v) and v > 0), 'None (lam fixed) or a number > 0'))):
    if key in ('steps', 'lr', 'lam') or _get(g, key) is not None:
      rules.check(f'solve.ge_sample.{key}', _get(g, key), rule)
  restarts, output = chains(s, m.name)
  fields = dict(_solve_fields(s), sampler='langevin', prior='l2', steps=g.steps, restarts=restarts,
                n_init=g.n_init, output=output, schedule='constant')
  spec = _spec(m.objective, fields, record_every, lam_count=_get(g, 'lam_count'),
               temperature=_get(g, 'temperature', 1.0))
  return Latent(spec, g.lr, g.lam)


def _ge_pix_setting(s, key: str, default: float, what: str) -> float:
  value = _get(_get(s, 'ge_pix') or {}, key)
  value = default if value is None else value  # unset (absent or None): the default
  if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float('inf')):
    raise UserError(f'config.solve.ge_pix.{key}={value!r} must be a number > 0 ({what}).')
  return float(value)


def pixel_var(s) -> float:
  """ge_pix's pixel error variance s2 (config.solve.ge_pix.pixel_var, else DEFAULT_PIXEL_VAR)."""
  return _ge_pix_setting(s, 'pixel_var', DEFAULT_PIXEL_VAR, "the variance of a pixel's error on [-1, 1]")


def max_pixel_step(s) -> float:
  """ge_pix's cap on lr / (2 s2) (config.solve.ge_pix.max_pixel_step, else DEFAULT_MAX_PIXEL_STEP)."""
  return _ge_pix_setting(s, 'max_pixel_step', DEFAULT_MAX_PIXEL_STEP, 'the largest Langevin step on the pixel term')


def _ge_pix(m: Method, config, task: Task, record_every: int) -> Latent:
  """ge_sample's chain with the observed pixels, error variance s2, beside the code: its own lam where
  set (the two chains were tuned apart), pixel weight lam / s2, and lr capped so that the step on
  the stiff pixel term, lr / (2 s2), stays stable (docs/FIDELITY.md, section 5)."""
  s = config.solve
  lat = _langevin(m, config, task, record_every)
  lam = _ge_pix_setting(s, 'lam', float(lat.lam), "the code error's variance, as ge_sample's lam")
  s2, cap = pixel_var(s), max_pixel_step(s)
  temperature = _ge_pix_setting(s, 'temperature', 1.0, 'the Langevin temperature, 1 = the posterior')
  spec = dataclasses.replace(lat.spec, pixel_weight=float(lam) / s2, temperature=temperature)
  return Latent(spec, min(float(lat.lr), 2.0 * s2 * cap), lam)


def classical_setting(op_name: str, ops_cfg) -> tuple[str | None, Any]:
  """(method, parameter) tuned on validation for the evaluation task these ops make, else defaults."""
  ops = dict(ops_cfg.items()) if hasattr(ops_cfg, 'items') else dict(ops_cfg)
  # The most specific task these ops make: 'deblur-noisy' (blur_noise_sigma 0.1) before 'deblur'.
  matches = [(len(spec.overrides), name) for name, spec in tasks.EVAL_TASKS.items()
             if spec.operator == op_name and all(ops.get(k) == v for k, v in spec.overrides)
             and name in classical.MNIST_VALIDATION]
  if not matches:
    return None, None
  method, param, _ = classical.MNIST_VALIDATION[max(matches)[1]]
  return method, param


def _has_classical(task: Task) -> str | None:
  return None if classical.has_classical(task.name) else f'no classical restoration for {task.name!r}'


def _none(m: Method, config, task: Task, record_every: int) -> None:
  return None


def _classical_settings(m: Method, config, task: Task, record_every: int):
  return classical_setting(task.name, task.ops if task.ops is not None else config.ops)


# --- runs -------------------------------------------------------------------------------------------


def _finite(x: np.ndarray) -> np.ndarray:
  return np.isfinite(x.reshape(len(x), -1)).all(axis=1)


def _solve(m: Method, inp: Inputs, s: Latent) -> Output:
  """A latent method: fit its target (the code, else the image) through G, by the solver."""
  known = 'operator' in m.needs
  side = inp.op_params if known else ({'observed': inp.corrupted} if m.pixels else None)
  res = solver.solve_all(
      inp.nets, s.spec, inp.params, inp.codes if 'code' in m.needs else inp.corrupted, inp.key,
      lr=s.lr, lam=s.lam, batch_size=inp.batch_size, op_params=side, indices=inp.indices,
      forward=inp.forward if known else None, progress=inp.progress, place=inp.place, plan=inp.plan)
  out = Output(recon={m.name: res.x}, objective={m.name: res.objective}, loss_trace={m.name: res.loss_trace},
               diverged={m.name: [int(i) for i in inp.indices[res.diverged]]})
  for row in m.extra_rows:
    x = getattr(res, row.field)
    if x is not None:
      out.recon[row.name] = x
      out.diverged[row.name] = [int(i) for i in inp.indices[~_finite(x)]]
  if res.z_trace is not None:
    out.z_trace[m.name] = res.z_trace
  if res.post_std is not None:
    out.uncertainty[m.name] = (res.post_mean, res.post_std)
  return out


def _decode(m: Method, inp: Inputs, s) -> Output:
  return Output(recon={m.name: solver.decode_all(inp.nets, inp.params, inp.codes, inp.batch_size)})


def _classical(m: Method, inp: Inputs, s) -> Output:
  name, param = s
  return Output(recon={m.name: classical.restore(inp.task.name, inp.corrupted, inp.op_params, inp.task.ops,
                                                 param, name)})


def g_random(nets, params, key, indices: np.ndarray, batch_size: int) -> np.ndarray:
  """G(z_i), z_i ~ N(0, I) drawn from (key, image index i): one random sample of G per image."""
  stream = jax.random.fold_in(key, _G_RANDOM_STREAM)
  z = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(stream, i), (nets.latent_dim,)))(
      np.asarray(indices, np.int32))
  return models.apply_batched(nets.G, params['generator'], z, batch_size)


def _g_random(m: Method, inp: Inputs, s) -> Output:
  return Output(recon={m.name: g_random(inp.nets, inp.params, inp.key, inp.indices, inp.batch_size)})


# --- the table --------------------------------------------------------------------------------------

# The recommended blind method per operator, for the quick-start model (configs/mnist.py): on the
# PSNR / FD front, the lowest FD within 1 dB of the best PSNR (results/README.md, 'Which method').
_GE_PIX_FOR = ('denoise', 'saltpepper', 'inpaint', 'none')
_AE_FOR = ('speckle', 'deblur', 'motionblur', 'superres')

TABLE = (
    Method('ae', 'AE only', 'AE', 'blind', 'Dec(E(y)): the autoencoder alone',
           frozenset({'code'}), _none, _decode, recommended_for=_AE_FOR),
    Method('gan', 'GAN only', 'GAN', 'blind', 'argmin_z ||G(z) - y||^2 + lam ||z||^2: the GAN alone, fit to the pixels',
           frozenset({'image'}), _adam, _solve, objective='gan', color='tab:blue',
           on_code_only='not applicable: compression gives only the code E(x), no image to match'),
    Method('ge', 'GE', 'GE', 'blind', "argmin_z ||E(G(z)) - E(y)||^2 + lam ||z||^2: the Generative Encoder's MAP (the paper)",
           frozenset({'code'}), _ge, _solve, objective='ge', ge_form=True, recommended_for=('compress',),
           color='tab:red'),
    Method('ge_sample', 'GE sample', 'GE sample', 'blind',
           "a Langevin sample of GE's posterior given the code: realistic where the MAP is an average",
           frozenset({'code'}), _langevin, _solve, objective='ge', sampled=True, ge_form=True, color='tab:orange'),
    Method('ge_pix', 'GE+pixels', 'GE+pixels', 'blind',
           "GE's posterior given the code and the observed pixels (an extension, still blind): the chains' mean",
           frozenset({'code', 'image'}), _ge_pix, _solve, objective='ge', sampled=True, ge_form=True, pixels=True,
           on_code_only='identical to GE sample for compression: no image is observed, only its code',
           extra_rows=(Row('ge_pix_one', 'GE+pixels, one chain', 'GE+pix 1 chain',
                           "GE+pixels' first chain: one posterior sample from the same run", 'x_one'),),
           recommended_for=_GE_PIX_FOR, color='tab:green'),
    Method('csgm', 'CSGM (A known)', 'CSGM', 'known',
           'argmin_z ||A(G(z)) - y||^2 + lam ||z||^2 with the operator A known (Bora et al. 2017)',
           frozenset({'image', 'operator'}), _csgm, _solve, objective='csgm',
           on_code_only='identical to GE for compression (the operator is E itself)'),
    Method('ge_op', 'GE-op (A known)', 'GE-op', 'known',
           'argmin_z ||E(A(G(z))) - E(y)||^2 + lam ||z||^2: the operator inside the encoder (2019 preprint)',
           frozenset({'code', 'operator'}), _adam, _solve, objective='ge_op',
           on_code_only='identical to GE for compression (the operator is E itself)'),
    Method('classical', 'classical (A known)', 'classical', 'known',
           'scikit-image with the known kernel, mask or factor (Wiener, TV, inpainting, ...), tuned on validation',
           frozenset({'image', 'operator'}), _classical_settings, _classical, task_check=_has_classical),
    Method('g_random', 'G random (no input)', 'G random', 'reference',
           "G(z), z ~ N(0, I), the input ignored: G's own realism at the same N, a reference, not a restoration",
           frozenset(), _none, _g_random),
)

BY_NAME = {m.name: m for m in TABLE}
METHODS = tuple(BY_NAME)                                       # what --methods accepts
ROWS = tuple(r for m in TABLE for r in m.rows)                 # what runs return, in table order
_ROW_METHOD = {r: m for m in TABLE for r in m.rows}            # row -> the method that returns it
_EXTRA = {r.name: r for m in TABLE for r in m.extra_rows}
LABELS = {r: _EXTRA[r].label if r in _EXTRA else _ROW_METHOD[r].label for r in ROWS}
SHORT_LABELS = {r: _EXTRA[r].short if r in _EXTRA else _ROW_METHOD[r].short for r in ROWS}
DESCRIPTIONS = {r: _EXTRA[r].description if r in _EXTRA else _ROW_METHOD[r].description for r in ROWS}
BLIND = tuple(r for r in ROWS if _ROW_METHOD[r].kind == 'blind')
KNOWN = tuple(r for r in ROWS if _ROW_METHOD[r].kind == 'known')
REFERENCE = tuple(r for r in ROWS if _ROW_METHOD[r].kind == 'reference')
GE_FORMS = tuple(r for r in ROWS if _ROW_METHOD[r].ge_form)
PIXELS = tuple(r for r in ROWS if _ROW_METHOD[r].pixels)
OBJECTIVE = {m.name: m.objective for m in TABLE if m.objective}
SAMPLED = tuple(m.name for m in TABLE if m.sampled)
SOLVER_METHODS = tuple(m.name for m in TABLE if m.objective and not m.sampled)  # those with lr_<m> / lam_<m>
PAPER = 'ge'               # the paper's GE: the report's GE - AE / GE - GAN columns compare it
BASELINES = ('ae', 'gan')  # the same networks alone: the paper's claim is that GE beats both
PEER = 'csgm'              # the operator-known peer (Bora et al.) the report counts GE's wins against
# The config keys the methods' settings read (validated by `settings`, not by config_check's table).
SETTING_PREFIXES = ('solve.steps', 'solve.restarts', 'solve.n_init', 'solve.prior', 'solve.schedule',
                    'solve.output', 'solve.sampler', 'solve.record_every', 'solve.likelihood', 'solve.lr',
                    'solve.lam', 'solve.ge_sample', 'solve.ge_pix', 'solve.compress')


def select(names) -> tuple[Method, ...]:
  """The methods named (UserError for an unknown name), in the table's order."""
  names = tuple(names)
  unknown = [m for m in names if m not in BY_NAME]
  if unknown:
    raise UserError(f'unknown method(s) {unknown}; choose from {", ".join(METHODS)}.')
  return tuple(m for m in TABLE if m.name in names)


def recommended(task: str) -> str | None:
  """The recommended blind method for an operator (README, 'Which method'), or None."""
  return next((m.name for m in TABLE if task in m.recommended_for), None)


def describe(rows=ROWS) -> str:
  """One line per row: its name, label and description."""
  return '\n'.join(f'{r:<10} {LABELS[r]}: {DESCRIPTIONS[r]}' for r in rows)


def is_setting(key: str) -> bool:
  """Whether config.<key> is one of the methods' settings (read and checked by them)."""
  return any(key == p or key.startswith(p + '_') or key.startswith(p + '.') for p in SETTING_PREFIXES)
