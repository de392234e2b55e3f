"""Small commands: `presets` (the built-in models) and `import` (results from elsewhere)."""

from __future__ import annotations

from typing import Annotated

import typer

from offline_bench.cli.flags import command
from offline_bench.cli.options import Fmt, Opt
from offline_bench.model import presets as presets_mod
from offline_bench.report.formats import render
from offline_bench.results.importers import import_file
from offline_bench.results.run import check_writable


@command()
def presets(*, fmt: Fmt("presets") = "table") -> None:
    """List the built-in models (shipped configs, dummy weights, self-made tokenizers).

    Example: offline-bench presets --format md
    """
    typer.echo(render("presets", fmt, presets_mod.preset_rows()))


@command("import")
def import_results(
    *, source: Annotated[str, typer.Argument(help="`vllm bench serve --save-result` JSON, or hand-entered "
                                                 "YAML/JSON figures.")],
    output_dir: Annotated[str, Opt("--output-dir", help="Where the converted results go.")] = ".",
) -> None:
    """Convert serving figures from elsewhere into this tool's result schema (unknowns stay unknown).

    Example: offline-bench import report.yaml --output-dir imported/
    """
    check_writable(output_dir, "--output-dir", is_dir=True)
    for path in import_file(source, output_dir):
        typer.echo(str(path))
