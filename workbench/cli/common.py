"""What the CLI modules share: the options declared once, opening the database, shortening text.

>>> short("x" * 200, 20)
'xxxxxxxxxxxxxxxxx...'
>>> parse_shape("3,32,32")
(3, 32, 32)
"""

from __future__ import annotations

import typer

from workbench.errors import ConfigError

# -- options every command group shares (declared once) ---------------------------------------
STORAGE = typer.Option(None, "--storage", help="SQLAlchemy URL (default: sqlite file "
                       "./workbench.db, or $WORKBENCH_STORAGE).")
SPACE = typer.Option("einspace", "--space", "-s",
                     help="Search space: a name from `workbench spaces`, or module:function.")
INPUT = typer.Option("3,32,32", "--input", help="Input shape C,H,W (no batch).")
CLASSES = typer.Option(10, "--classes", help="Number of classes.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")
PROXIES = typer.Option("", "--proxies", help="Zero-cost proxies recorded as metrics before "
                       "training: some of synflow, naswot, snip, grad_norm (comma-separated); "
                       "usable as objectives, e.g. --objectives acc,naswot:max.")
PREFILTER = typer.Option(None, "--prefilter", help="PROXY:topF, e.g. naswot:top0.25: ask "
                         "1/F proposals per evaluation, train the best by PROXY, record the "
                         "others as pruned.")
CONSTRAINT = typer.Option([], "--constraint", help="PROXY>=X or PROXY<=X (repeatable), e.g. "
                          "naswot>=400; also params<=N, flops<=N. Checked before training.")

SHOWN = 100  # characters of an architecture string a summary prints (`workbench show` has all)


def open_storage(url: str | None, *, create: bool = False):
    """The study database. Only commands that create studies create a missing SQLite file;
    the others say there is none (a typo must not leave an empty database behind)."""
    from storage import Storage

    return Storage(url, create=create)


def short(text: str, n: int = SHOWN) -> str:
    """``text`` cut to ``n`` characters with an ellipsis (architecture strings can be long)."""
    return text if len(text) <= n else text[: n - 3] + "..."


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3,32,32"`` -> ``(3, 32, 32)``."""
    try:
        dims = tuple(int(x) for x in text.replace("x", ",").split(",") if x.strip())
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise ConfigError(f"--input: expected positive integers like 3,32,32, found {text!r}")
    return dims
