"""Parser for the bracket string form: ``label[child, child, ...]`` where a label is
``name`` or ``name(arg,arg)``. Purely syntactic; :class:`workbench.spaces.GrammarSpace` then checks
the tree against its grammar (labels, arity, shapes) and reports errors at the same positions.

>>> parse_tree("sequential[computation[linear(64)], computation[relu]]").children[0].children[0]
PNode(label='linear(64)', children=(), pos=23)
>>> parse_tree("a[" * 30000 + "b" + "]" * 30000)
Traceback (most recent call last):
...
workbench.errors.ParseError: line 1, column 1001: nesting deeper than 500 levels
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.errors import ParseError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ARGS = re.compile(r"\(([^()\[\],]*(?:,[^()\[\],]*)*)\)")
MAX_NESTING = 500  # bracket levels (einspace's depth limit of 48 modules needs about 100)


@dataclass(frozen=True)
class PNode:
    label: str
    children: tuple[PNode, ...]
    pos: int


class _Parser:
    def __init__(self, text: str):
        self.text, self.i = text, 0

    def error(self, expected: str, pos: int | None = None) -> ParseError:
        pos = self.i if pos is None else pos
        found = repr(self.text[pos]) if pos < len(self.text) else "end of input"
        return ParseError(f"expected {expected}, found {found}", text=self.text, pos=pos)

    def skip(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def node(self, depth: int = 0) -> PNode:
        if depth >= MAX_NESTING:
            raise ParseError(f"nesting deeper than {MAX_NESTING} levels", text=self.text,
                             pos=self.i)
        self.skip()
        start = self.i
        m = _NAME.match(self.text, self.i)
        if not m:
            raise self.error("an operation or module name")
        self.i = m.end()
        label = m.group(0)
        if self.i < len(self.text) and self.text[self.i] == "(":
            a = _ARGS.match(self.text, self.i)
            if not a:
                close = self.text.find(")", self.i)
                raise self.error("arguments like (3,1,1) closed by ')'",
                                 close if close >= 0 else len(self.text))
            args = [x.strip() for x in a.group(1).split(",")]
            if any(not x for x in args):
                raise self.error("a non-empty argument", self.i + 1)
            label += "(" + ",".join(args) + ")"
            self.i = a.end()
        self.skip()
        children: list[PNode] = []
        if self.i < len(self.text) and self.text[self.i] == "[":
            self.i += 1
            while True:
                children.append(self.node(depth + 1))
                self.skip()
                if self.i < len(self.text) and self.text[self.i] == ",":
                    self.i += 1
                    continue
                if self.i < len(self.text) and self.text[self.i] == "]":
                    self.i += 1
                    break
                raise self.error("',' or ']'")
        return PNode(label, tuple(children), start)


def parse_tree(text: str) -> PNode:
    """Parse the bracket syntax into a label tree with source positions."""
    p = _Parser(text)
    root = p.node()
    p.skip()
    if p.i != len(text):
        raise p.error("end of input")
    return root
