"""Concrete search spaces, registered by name in :mod:`workbench.spaces`."""

from search_spaces import einspace
from workbench.spaces import register_space

register_space("einspace", einspace.make_space, kind="grammar",
               description="einspace: PCFG over fundamental operations, im/col modes, 4 seeds")

from search_spaces import nb201  # noqa: E402

register_space("nb201", nb201.make_space, kind="cell", description=nb201.NB201Space.description)
