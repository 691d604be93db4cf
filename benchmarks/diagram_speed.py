"""Diagram rendering speed: each einspace seed at full depth and at the default depth, in the
dataflow, macro (repeats drawn once) and tree views, with the drawing's height in pixels.

Target: every seed renders to SVG in under a second. Prints a table:

    .venv/bin/python benchmarks/diagram_speed.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import time

from workbench.diagrams import DEFAULT_DEPTH, render_svg, to_dot
from workbench.spaces import get_space

SEEDS = ("resnet18", "wrn16_4", "vit", "mixer")


def measure(arch, depth: int | None, view: str, repeat: int
            ) -> tuple[float, float, float, int, int]:
    """Best-of-``repeat`` times (ms) for DOT generation and for the whole render; SVG kB; nodes;
    height in CSS pixels (graphviz writes points: 1 pt = 4/3 px)."""
    dot_ms = render_ms = float("inf")
    svg = ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        to_dot(arch, view=view, depth=depth)
        t1 = time.perf_counter()
        svg = render_svg(arch, view=view, depth=depth)
        t2 = time.perf_counter()
        dot_ms, render_ms = min(dot_ms, (t1 - t0) * 1e3), min(render_ms, (t2 - t1) * 1e3)
    nodes = svg.count('class="node"') - 1 - (view == "dataflow") * 2  # minus legend, input, output
    height_pt = float(re.search(r'<svg width="[\d.]+pt" height="([\d.]+)pt"', svg).group(1))
    return dot_ms, render_ms, len(svg.encode()) / 1024, nodes, round(height_pt * 4 / 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    space = get_space("einspace", (3, 32, 32), 10)
    header = (f"{'seed':<10} {'view':<9} {'depth':>5} {'tree nodes':>10} {'drawn':>6} "
              f"{'to_dot ms':>9} {'render ms':>9} {'svg kB':>7} {'height px':>9}  target<1000ms")
    print(header)
    print("-" * len(header))
    for name in SEEDS:
        arch = space.seed(name)
        for view, depth in (("dataflow", None), ("dataflow", DEFAULT_DEPTH), ("macro", None),
                            ("macro", DEFAULT_DEPTH), ("tree", None)):
            dot_ms, ms, kb, nodes, px = measure(arch, depth, view, args.repeat)
            shown = "all" if depth is None else str(depth)
            ok = "ok" if ms < 1000 else "SLOW"
            print(f"{name:<10} {view:<9} {shown:>5} {arch.nodes:>10} {nodes:>6} "
                  f"{dot_ms:>9.1f} {ms:>9.1f} {kb:>7.1f} {px:>9}  {ok}")


if __name__ == "__main__":
    main()
