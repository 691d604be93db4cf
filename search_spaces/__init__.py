"""Concrete search spaces, registered by name in :mod:`workbench.spaces`."""

from search_spaces import einspace
from workbench.spaces import register_space

register_space("einspace", einspace.make_space, kind="grammar",
               description="einspace: PCFG over fundamental operations, im/col modes, 4 seeds")
