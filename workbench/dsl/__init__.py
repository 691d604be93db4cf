"""A DeepArchitect-style tree DSL for hierarchical search spaces.

A space is a tree of *modules* whose *hyperparameters* are still open. Deriving an architecture
walks the tree in data-flow order and asks the policy at every hyperparameter it reaches; the
result is the same :class:`~workbench.architecture.Architecture` (decisions + tree of nodes the
compiler knows) that grammar spaces produce, so every searcher, exporter and the storage work on it.

Vocabulary (see ``docs/dsl.md`` for the exact semantics):

* hyperparameters: :func:`choice`, :func:`int_range`, :func:`float_range` (``log=True``),
  :func:`boolean`, :func:`dependent` (a function of others, never asked). Passing the *same
  object* to several places shares it: one decision, asked where the derivation first meets it.
* layers (lazy input sizes): :func:`conv2d`, :func:`linear`, :func:`batchnorm`, :func:`relu`,
  :func:`relu6`, :func:`elu`, :func:`softplus`, :func:`tanh`, :func:`crelu`, :func:`dropout`,
  :func:`maxpool`, :func:`avgpool`, :func:`global_pool`, :func:`flatten`, :func:`identity` and
  :func:`zero` (the zero op of cells).
* substitution modules: :func:`seq`, :func:`one_of`, :func:`repeat` (tied or untied),
  :func:`optional`, :func:`permutation`, :func:`split_combine`, :func:`residual` and the DAG cell
  :func:`dag_cell` with its wirings :func:`nb101_wiring`, :func:`genetic_wiring` and
  :func:`dense_wiring`.

The package, by role: :mod:`~workbench.dsl.core` (hyperparameters, the module base class,
specification), :mod:`~workbench.dsl.layers` (standard layers), :mod:`~workbench.dsl.modules`
(substitution modules), :mod:`~workbench.dsl.cells` (DAG cells and wirings),
:mod:`~workbench.dsl.space` (:class:`DSLSpace`, the text form), :mod:`~workbench.dsl.count`
(``space.size()``) and :mod:`~workbench.dsl.build` (compiler builders and torch modules; the
only one that imports torch, loaded by the compiler when it first meets a DSL node).

>>> import random
>>> act = choice(["relu", "tanh"], name="act")               # shared by every cell
>>> cell = lambda i: seq(linear(choice([16, 32])), one_of({"relu": relu(), "tanh": tanh()},
...                                                         choice=act))
>>> space = DSLSpace(seq(flatten(), repeat(cell, choice([1, 2]), name="cell")), (1, 4, 4), 3,
...                  name="mlp")
>>> arch = space.sample(random.Random(1))
>>> arch.text
'cell/n=1; cell[0]/units=32; act="tanh"'
>>> space.parse(arch.text) == arch and space.replay(arch.decisions) == arch
True
>>> space.size()  # n=1: 2 widths; n=2: 4 widths; times the shared activation
12
"""


from workbench.dsl.cells import (
    CellGraph,
    DenseWiring,
    GeneticWiring,
    NB101Wiring,
    dag_cell,
    dense_wiring,
    genetic_wiring,
    nb101_wiring,
)
from workbench.dsl.core import (
    Hyperparameter,
    Module,
    boolean,
    choice,
    dependent,
    float_range,
    int_range,
)
from workbench.dsl.layers import (
    avgpool,
    batchnorm,
    conv2d,
    crelu,
    dropout,
    elu,
    flatten,
    global_pool,
    identity,
    layer,
    linear,
    maxpool,
    relu,
    relu6,
    softplus,
    tanh,
    zero,
)
from workbench.dsl.modules import (
    one_of,
    optional,
    orders,
    permutation,
    repeat,
    residual,
    seq,
    split_combine,
)
from workbench.dsl.space import DSLSpace

__all__ = [
    "CellGraph", "DSLSpace", "DenseWiring", "GeneticWiring", "Hyperparameter", "Module",
    "NB101Wiring", "avgpool", "batchnorm", "boolean", "choice", "conv2d", "crelu", "dag_cell",
    "dense_wiring", "dependent", "dropout", "elu", "flatten", "float_range", "genetic_wiring",
    "global_pool", "identity", "int_range", "layer", "linear", "maxpool", "nb101_wiring",
    "one_of", "optional", "orders", "permutation", "relu", "relu6", "repeat", "residual", "seq",
    "softplus", "split_combine", "tanh", "zero",
]
