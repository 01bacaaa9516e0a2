"""The restoration methods and the rows they return: one table, from which every list of names is derived.

What each method does is experiment.py's; here are only its name, its labels and the facts that sort
it into the tables and checks (blind or operator known, a GE form, ...). The table's order is the
order of every results table, grid and flag default. Imports nothing heavy: the CLIs and
config_check read it before JAX loads.
"""

from __future__ import annotations

import dataclasses

KINDS = ('blind', 'known', 'reference')


@dataclasses.dataclass(frozen=True)
class Method:
  """One method, or one extra row that another method's run returns beside its own.

  Attributes:
    name: the key in --methods, Outcome.recon and results.json.
    label: its name in results.md and the figures.
    short: its row label in grid.png (narrow).
    kind: 'blind' (needs no knowledge of the operator) | 'known' (the operator is known and used) |
      'reference' (never a restoration: G's own realism at the same N).
    ge_form: fits the code E(y) through G: the generative encoder's forms (GE-op, which fits E(A(G(z))),
      is counted with the operator-known methods instead).
    pixels: fits the observed pixels beside the code (the extension, apart from the paper's forms).
    objective: the solver's objective (solver.OBJECTIVES) for a latent method, else None.
    sampled: a Langevin chain with its settings in config.solve.<name> (config.solve.ge_sample's
      where unset); else a latent method is Adam-solved with config.solve.lr_<name> / lam_<name>.
    row_of: not a method to run but a row that method's run returns beside its own.
  """
  name: str
  label: str
  short: str
  kind: str
  ge_form: bool = False
  pixels: bool = False
  objective: str | None = None
  sampled: bool = False
  row_of: str | None = None


TABLE = (
    Method('ae', 'AE only', 'AE', 'blind'),
    Method('gan', 'GAN only', 'GAN', 'blind', objective='gan'),
    Method('ge', 'GE', 'GE', 'blind', ge_form=True, objective='ge'),
    Method('ge_sample', 'GE sample', 'GE sample', 'blind', ge_form=True, objective='ge', sampled=True),
    Method('ge_pix', 'GE+pixels', 'GE+pixels', 'blind', ge_form=True, pixels=True, objective='ge', sampled=True),
    # With output 'mean' ge_pix also returns its first chain's sample: one posterior sample, at no cost.
    Method('ge_pix_one', 'GE+pixels, one chain', 'GE+pix 1 chain', 'blind', ge_form=True, pixels=True,
           row_of='ge_pix'),
    Method('csgm', 'CSGM (A known)', 'CSGM', 'known', objective='csgm'),
    Method('ge_op', 'GE-op (A known)', 'GE-op', 'known', objective='ge_op'),
    Method('classical', 'classical (A known)', 'classical', 'known'),
    Method('g_random', 'G random (no input)', 'G random', 'reference'),
)

ROWS = tuple(m.name for m in TABLE)                            # what runs return, in table order
METHODS = tuple(m.name for m in TABLE if m.row_of is None)     # what --methods accepts
BLIND = tuple(m.name for m in TABLE if m.kind == 'blind')
KNOWN = tuple(m.name for m in TABLE if m.kind == 'known')
REFERENCE = tuple(m.name for m in TABLE if m.kind == 'reference')
GE_FORMS = tuple(m.name for m in TABLE if m.ge_form)
PIXELS = tuple(m.name for m in TABLE if m.pixels)
OBJECTIVE = {m.name: m.objective for m in TABLE if m.objective}  # latent methods -> solver objective
SAMPLED = tuple(m.name for m in TABLE if m.sampled)
SOLVER_METHODS = tuple(m.name for m in TABLE if m.objective and not m.sampled)  # those with lr_<m> / lam_<m>
LABELS = {m.name: m.label for m in TABLE}
SHORT_LABELS = {m.name: m.short for m in TABLE}
