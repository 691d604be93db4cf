"""The shipped search spaces, one module each, registered like any plug-in: through the
``workbench.spaces`` entry points in ``pyproject.toml``, each naming one :class:`SpaceEntry` below
(upper-case, so they never shadow the space modules of the same name).

An entry names its factory as ``"module:function"``, so listing the spaces imports none of them
(and no torch): a space module is imported when a space is first built.

>>> from workbench.spaces import get_space
>>> get_space("quickstart", (1, 8, 8), 10).size()
936
"""

from workbench.spaces import SpaceEntry

EINSPACE = SpaceEntry(
    "einspace", "search_spaces.einspace:make_space", kind="grammar",
    description="einspace: PCFG over fundamental operations, im/col modes, 4 seeds")
MLP = SpaceEntry(
    "mlp", "search_spaces.mlp:make_space", kind="grammar", example_input=(1, 8, 8),
    description="MLP blocks over the flattened input (the example grammar)")
NB201 = SpaceEntry(
    "nb201", "search_spaces.nb201:make_space", kind="cell",
    description="NAS-Bench-201 cell: 6 edges x 5 ops (15,625), tabular 12-epoch CIFAR-10 lookup")
DNN = SpaceEntry(
    "dnn", "search_spaces.dnn:make_space", kind="tree", example_input=(1, 8, 8),
    description="DeepArchitect MLP: 1-2 dense cells, shared nonlinearity, optional "
                "dropout/batchnorm in a chosen order")
DEEPCONV = SpaceEntry(
    "deepconv", "search_spaces.deepconv:make_space", kind="tree", example_input=(3, 32, 32),
    description="DeepArchitect conv space: strided convs + tied repeats of conv/relu/bn/dropout "
                "blocks")
GENETIC_CNN = SpaceEntry(
    "genetic_cnn", "search_spaces.genetic_cnn:make_space", kind="tree",
    example_input=(3, 32, 32),
    description="Genetic CNN: 3 stages of 3/4/5 conv nodes, one bit per node pair")
NASBENCH_CELL = SpaceEntry(
    "nasbench_cell", "search_spaces.nasbench_cell:make_space", kind="tree",
    example_input=(3, 32, 32),
    description="NAS-Bench-101-style cell (7 vertices, <= 9 edges), 3 stacks x 3 cells")
QUICKSTART = SpaceEntry(
    "quickstart", "search_spaces.quickstart:make_space", kind="tree", example_input=(1, 8, 8),
    description="small conv space (936 architectures) that trains in seconds on digits")
