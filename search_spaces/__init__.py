"""Concrete search spaces, registered by name in :mod:`workbench.spaces`.

Importing this package is cheap (no torch): spaces load their compiler builders lazily.
"""

from search_spaces import (
    deepconv,
    dnn,
    einspace,
    genetic_cnn,
    mlp,
    nasbench_cell,
    nb201,
    quickstart,
)
from workbench.spaces import register_space

register_space("einspace", einspace.make_space, kind="grammar",
               description="einspace: PCFG over fundamental operations, im/col modes, 4 seeds")
register_space("mlp", mlp.make_space, kind="grammar", example_input=(1, 8, 8),
               description="MLP blocks over the flattened input (the example grammar)")
register_space("nb201", nb201.make_space, kind="cell", description=nb201.NB201Space.description)
register_space("dnn", dnn.make_space, kind="tree", example_input=(1, 8, 8),
               description="DeepArchitect MLP: 1-2 dense cells, shared nonlinearity, optional "
                           "dropout/batchnorm in a chosen order")
register_space("deepconv", deepconv.make_space, kind="tree", example_input=(3, 32, 32),
               description="DeepArchitect conv space: strided convs + tied repeats of "
                           "conv/relu/bn/dropout blocks")
register_space("genetic_cnn", genetic_cnn.make_space, kind="tree", example_input=(3, 32, 32),
               description="Genetic CNN: 3 stages of 3/4/5 conv nodes, one bit per node pair")
register_space("nasbench_cell", nasbench_cell.make_space, kind="tree", example_input=(3, 32, 32),
               description="NAS-Bench-101-style cell (7 vertices, <= 9 edges), 3 stacks x 3 cells")
register_space("quickstart", quickstart.make_space, kind="tree", example_input=(1, 8, 8),
               description="small conv space (936 architectures) that trains in seconds on digits")
