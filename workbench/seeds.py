"""One way to derive seeds: ``derive_seed(seed, purpose, i)``.

Every seeded stream in the workbench (a searcher's i-th ask, the training of trial i, a sample
drawn in the UI) takes its seed from the study's seed, a purpose and an index through this one
function, so streams never collide across purposes and the same (seed, purpose, i) gives the same
number in any process, on any machine, in any Python (no ``hash()`` randomisation).

>>> derive_seed(0, "trial", 3) == derive_seed(0, "trial", 3)
True
>>> derive_seed(0, "trial", 3) != derive_seed(0, "searcher:random", 3)
True
>>> 0 <= derive_seed(2**62, "trial", 10**9) < 2**63
True
"""

from __future__ import annotations

import hashlib
import random


def derive_seed(seed: int, purpose: str, i: int = 0) -> int:
    """A 63-bit seed for draw ``i`` of ``purpose`` in a study seeded with ``seed``."""
    digest = hashlib.sha256(f"{purpose}\x1f{int(seed)}\x1f{int(i)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def derive_rng(seed: int, purpose: str, i: int = 0) -> random.Random:
    """A :class:`random.Random` seeded with :func:`derive_seed`."""
    return random.Random(derive_seed(seed, purpose, i))
