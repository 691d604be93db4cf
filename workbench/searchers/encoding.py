"""Feature encodings of any :class:`~workbench.architecture.Architecture`, for surrogate models.

An architecture becomes a sparse bag of named features:

* ``d:<path>=<choice>`` -- one-hot of each discrete decision, by path (continuous ones give
  ``c:<path>``, the value scaled to [0, 1] over its range);
* ``op:<symbol>`` -- how often each operation occurs in the derivation tree;
* ``op:<parent>><child>`` -- parent/child operation bigrams of the tree;
* ``sh:<symbol>@<out shape>`` -- operations with the shape they produce (shape-path unigrams), so
  in shape-dependent spaces (einspace) the same operation at different resolutions is told apart;
* ``size:nodes`` and ``size:depth`` -- tree size and depth.

Names are strings, so architectures from different shapes of a define-by-run space share exactly
the features they have in common. :class:`Encoder` turns a list of architectures into a dense
matrix over a vocabulary built from the architectures it is given to *fit*, in order (features a
candidate has that no training architecture had carry no information and are dropped).

>>> from workbench.spaces import get_space
>>> space = get_space("nb201", (3, 8, 8), 10)
>>> arch = space.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")
>>> f = features(space, arch)
>>> f["d:root/edge_1_0=nor_conv_3x3"], f["op:nor_conv_3x3"], f["op:nb201>skip_connect"]
(1.0, 2.0, 2.0)
>>> enc = Encoder(space)
>>> X = enc.fit([arch, space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")])
>>> X.shape[0], X.shape[1] == len(enc.vocab)
(2, True)
"""

from __future__ import annotations

from collections.abc import Sequence

from workbench.architecture import Architecture
from workbench.searchers._common import record_points


def features(space, arch: Architecture) -> dict[str, float]:
    """The named features of one architecture (see the module docstring)."""
    out: dict[str, float] = {}
    for point, choice in record_points(space, arch):
        if point.continuous:
            assert point.low is not None and point.high is not None  # continuous: has bounds
            lo, hi = float(point.low), float(point.high)
            out[f"c:{point.path}"] = (float(choice) - lo) / (hi - lo) if hi > lo else 0.0
        elif len(point.options) > 1:
            out[f"d:{point.path}={choice}"] = 1.0

    def bump(key: str) -> None:
        out[key] = out.get(key, 0.0) + 1.0

    nodes = 0
    for node in arch.tree.walk():
        nodes += 1
        bump(f"op:{node.symbol}")
        bump(f"sh:{node.symbol}@{'x'.join(map(str, node.out_shape))}")
        for child in node.children:
            bump(f"op:{node.symbol}>{child.symbol}")
    out["size:nodes"] = float(nodes)
    out["size:depth"] = float(arch.tree.depth)
    return out


class Encoder:
    """Dense matrices over a vocabulary of features; caches each architecture's features."""

    def __init__(self, space):
        self.space = space
        self.vocab: dict[str, int] = {}
        self._cache: dict[str, dict[str, float]] = {}

    def features(self, arch: Architecture) -> dict[str, float]:
        f = self._cache.get(arch.hash)
        if f is None:
            f = self._cache[arch.hash] = features(self.space, arch)
        return f

    def fit(self, archs: Sequence[Architecture]):
        """Build the vocabulary from ``archs`` (in order) and return their matrix."""
        self.vocab = {}
        for a in archs:
            for key in self.features(a):
                if key not in self.vocab:
                    self.vocab[key] = len(self.vocab)
        return self.transform(archs)

    def transform(self, archs: Sequence[Architecture]):
        import numpy as np

        X = np.zeros((len(archs), max(len(self.vocab), 1)))
        for i, a in enumerate(archs):
            for key, v in self.features(a).items():
                j = self.vocab.get(key)
                if j is not None:
                    X[i, j] = v
        return X
