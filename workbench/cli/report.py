"""``workbench report NAME --out report.html``: a study's self-contained offline HTML report."""

from __future__ import annotations

from pathlib import Path

import typer

from workbench.cli import app


@app.command()
def report(name: str = typer.Argument(..., help="The study."),
           out: Path = typer.Option(Path("report.html"), "--out", help="The HTML file to write."),
           view: str = typer.Option("macro", "--view", help="Diagram view: macro (repeated "
                                    "blocks drawn once), dataflow (every module) or tree."),
           storage: str | None = typer.Option(None, "--storage", help="SQLAlchemy URL (default: "
                                              "sqlite file ./workbench.db, or "
                                              "$WORKBENCH_STORAGE).")) -> None:
    """Write one HTML file (plots, top trials, diagrams, config) that opens offline."""
    from storage import Storage
    from workbench.report import study_report

    with Storage(storage) as db:
        text = study_report(db, name, view=view)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out} ({len(text) // 1024} KiB)")
