"""Small commands: `presets` (the built-in models) and `import` (results from elsewhere)."""

from __future__ import annotations

from typing import Annotated

import typer

from offline_bench.cli.flags import command
from offline_bench.cli.options import PATH, Fmt, Opt
from offline_bench.cli.terminal import finish
from offline_bench.core import validate as v
from offline_bench.model import presets as presets_mod
from offline_bench.report.formats import render
from offline_bench.results.importers import import_file
from offline_bench.results.run import check_writable


@command()
def presets(*, fmt: Fmt("presets") = "table") -> None:
    """List the built-in models (shipped configs, dummy weights).

    Example: offline-bench presets --format md
    """
    typer.echo(render("presets", fmt, presets_mod.preset_rows()))


@command("import")
def import_results(
    *, source: Annotated[str, typer.Argument(help="`vllm bench serve --save-result` JSON, or hand-entered "
                                                 "YAML/JSON figures."), PATH],
    output_dir: Annotated[str, Opt("--output-dir", help="Where the converted results go."), v.Text("DIR")] = ".",
) -> None:
    """Convert serving figures from elsewhere into result files.

    Into this tool's result schema; what the source does not say stays unknown.

    Example: offline-bench import report.yaml --output-dir imported/
    """
    check_writable(output_dir, "--output-dir", is_dir=True)
    kept = import_file(source, output_dir)
    for k in kept:  # where each converted result is (a file that could not be written: its copy, then an error)
        if k.where:
            typer.echo(k.where)
    finish([k.unwritten for k in kept if k.unwritten])
