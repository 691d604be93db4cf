"""Reference graph helpers for the DSL tests (an independent oracle for cell wiring)."""

from __future__ import annotations


def reachable(edges, src, dst) -> bool:
    seen, todo = {src}, [src]
    while todo:
        u = todo.pop()
        for a, b in edges:
            if a == u and b not in seen:
                seen.add(b)
                todo.append(b)
    return dst in seen


def live_edges(edges, out) -> int:
    """Edges on some path from vertex 0 to ``out``."""
    return sum(1 for a, b in edges if reachable(edges, 0, a) and reachable(edges, b, out))
