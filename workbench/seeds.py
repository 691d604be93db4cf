"""One way to derive seeds: ``derive_seed(seed, purpose, i)``.

Every seeded stream in the workbench (a searcher's i-th ask, the training of trial i, a sample
drawn in the UI) takes its seed from the study's seed, a purpose and an index through this one
function, so streams never collide across purposes and the same (seed, purpose, i) gives the same
number in any process, on any machine, in any Python (no ``hash()`` randomisation).

>>> derive_seed(0, "trial", 3) == derive_seed(0, "trial", 3)
True
>>> derive_seed(0, "trial", 3) != derive_seed(0, "random", 3)
True
>>> 0 <= derive_seed(2**62, "trial", 10**9) < 2**63
True
"""

from __future__ import annotations

import random


def derive_rng(seed: int, purpose: str, i: int = 0) -> random.Random:
    """The generator for draw ``i`` of ``purpose`` in a study seeded with ``seed``.

    Seeded with the string ``"purpose:seed:i"`` (CPython hashes a str seed with SHA-512, the same
    in every process), so searchers keep the streams they had before this module existed.
    """
    return random.Random(f"{purpose}:{int(seed)}:{int(i)}")


def derive_seed(seed: int, purpose: str, i: int = 0) -> int:
    """A 63-bit integer seed for draw ``i`` of ``purpose`` (for torch and numpy generators)."""
    return derive_rng(seed, purpose, i).getrandbits(63)
