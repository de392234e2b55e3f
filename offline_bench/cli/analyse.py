"""Commands that read results already written: `compare`, `scaling`, `startup` and `report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from offline_bench.analysis import scaling as scaling_mod
from offline_bench.analysis.compare import load_runs, order
from offline_bench.cli.flags import command
from offline_bench.cli.options import INTS, OUT, PATH, File, Fmt, Html, Opt, PlotOut
from offline_bench.cli.terminal import finish, write_file, write_html
from offline_bench.core import validate as v
from offline_bench.core.config import parse_int_list
from offline_bench.core.errors import BenchError
from offline_bench.report import html as htmlreport
from offline_bench.report.formats import check_format, render
from offline_bench.report.inputs import load_items
from offline_bench.report.plots import compare_plot
from offline_bench.results import startup as startup_mod
from offline_bench.results.load import Item
from offline_bench.results.run import check_writable


@command()
def startup(
    *, logfile: Annotated[str, typer.Argument(help="A vLLM log file (offline or `vllm serve`), or - for stdin."),
                          PATH],
    fmt: Fmt("startup") = "table",
) -> None:
    """Where a vLLM start-up's memory and time went, from its log.

    Example: vllm serve MODEL 2>&1 | tee vllm.log; offline-bench startup vllm.log --format md
    """
    check_format("startup", fmt)
    typer.echo(render("startup", fmt, startup_mod.read_log(logfile)))


@command()
def compare(
    *, results: Annotated[list[str], typer.Argument(help="Result files (run, serve-probe, import) or directories "
                                                         "of them (a sweep's: its points)."), PATH],
    baseline: Annotated[File, Opt(help="The run ratios are taken against (default: the first).")] = None,
    fmt: Fmt("compare") = "table", plot: PlotOut = None, html: Html = None,
) -> None:
    """Put runs side by side, with ratios to a baseline.

    Metrics x runs (a directory: the run results in it, a sweep's points), and a warning for every condition
    that differs from the baseline.

    Example: offline-bench compare offline-c10.json serving-c10.json --baseline offline-c10.json --format md
    """
    check_format("compare", fmt)
    check_writable(plot, "--plot")
    check_writable(html, "--html")
    if baseline and baseline not in results and not any(Path(p).is_dir() for p in results):
        raise BenchError(f"--baseline {baseline} is not one of the compared files")  # before reading them all
    runs = load_runs(results)
    base = next((r for r in runs if Path(r.path) == Path(baseline)), None) if baseline else runs[0]
    if base is None:
        raise BenchError(f"--baseline {baseline} is not one of the compared files")
    typer.echo(render("compare", fmt, order(runs), base))
    lost = write_file("plot", plot, lambda p: compare_plot(order(runs), p))
    finish(lost + write_html(html, [Item("run", r.path, r.result, Path(r.path).stem) for r in runs]))


@command()
def scaling(
    *, results: Annotated[list[str], typer.Argument(help="Offline run results and phases results (JSON)."), PATH],
    baseline: Annotated[File, Opt(help="The run efficiencies are taken against (default: the run on "
                                       "the fewest GPUs).")] = None,
    batch_sizes: Annotated[str, Opt(help="Decode batch sizes to show from phases results."), INTS] = "1",
    fmt: Fmt("scaling") = "table",
) -> None:
    """What more GPUs bought: per-GPU throughput and efficiency.

    Runs of one workload on different layouts (TP x PP x DP) with output tokens/s per
    GPU and scaling efficiency against a baseline, and phases' decode step against the TP group's floor (the gap,
    charged to the all-reduces as an upper bound).

    Example: offline-bench scaling tp1.json tp2.json dp2.json phases-tp2.json phases-tp4.json --format md
    """
    check_format("scaling", fmt)
    sizes = tuple(parse_int_list(batch_sizes, "--batch-sizes"))
    typer.echo(render("scaling", fmt, scaling_mod.scaling_report(load_items(results), baseline, sizes)))


@command("report")
def report(
    *, inputs: Annotated[list[str], typer.Argument(help="Result files (run, serve-probe, import, phases, "
                                                       "explain-gap, startup JSON or vLLM logs, plan JSON) and "
                                                       "directories of them (a sweep's --output-dir is one "
                                                       "sweep)."), PATH],
    output: Annotated[str, Opt("--output", "-o", help="The HTML file to write (one self-contained page)."), OUT],
    title: Annotated[Optional[str], Opt(help="Page title."), v.Text("H100 runs")] = None,
) -> None:
    """Write one self-contained HTML page of the results given.

    Grouped by kind: open it in a browser, send it, attach
    it to an issue (no network needed to view it).

    Example: offline-bench report docs/results/h100-run docs/results/h100-sweep docs/results/h100-phases
    --output report.html
    """
    check_writable(output, "--output")
    items = load_items(inputs)
    path = htmlreport.write_items(items, output, title)
    skipped = sum(i.kind == "skipped" for i in items)
    typer.echo(f"HTML report written to {path} ({path.stat().st_size / 2**20:.2f} MiB)"
               + (f"; {skipped} input(s) not shown (listed under 'Not shown')" if skipped else ""), err=True)
