"""One table path: the table model, the one number formatter, the writers, and every kind of output in every
format from committed results (docs/results); the renderings that were committed match byte for byte."""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
from pathlib import Path

import pytest

from offline_bench.analysis.compare import Labeled, label_for, load_runs, order
from offline_bench.analysis.scaling import scaling_report
from offline_bench.analysis.sweep import SUMMARY_FILES, analyze, load_rows, summarize
from offline_bench.core.errors import BenchError
from offline_bench.core.gpus import gpu_spec
from offline_bench.model.info import ModelInfo
from offline_bench.model.presets import preset_config, preset_rows
from offline_bench.predict import plan as kvplan
from offline_bench.predict.roofline import roofline
from offline_bench.report.formats import BUILDERS, check_format, formats_of, render
from offline_bench.report.inputs import load_items
from offline_bench.report.table import (
    AUTO,
    KNOWN,
    NUM,
    RATIO,
    SIG4,
    TEXT,
    Column,
    Document,
    Style,
    Table,
    decimals,
    fmt,
    heading,
    warnings,
)
from offline_bench.report.writers import Writer
from offline_bench.results.gap import GapReport
from offline_bench.results.load import load
from offline_bench.results.phases import PhasesResult
from offline_bench.results.run import RunResult, result_name
from offline_bench.results.sweep import SweepSummary

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
FORMATS = ("table", "md", "csv", "json")

# ---------------------------------------------------------------- the formatter


@pytest.mark.parametrize("value,style,shown", [
    (None, NUM, ""), (None, KNOWN, "unknown"), (1234.5, NUM, "1,234.50"), (1234, NUM, "1,234"),
    (0.18739, RATIO, "0.187x"), (1, RATIO, "1.000x"), (None, RATIO, "unknown"),
    (0.5, AUTO, "0.5"), (0.0123456, AUTO, "0.0123"), (0.0, AUTO, "0.00"), (12.345, AUTO, "12.35"), (-0.5, AUTO, "-0.5"),
    (22.5977, SIG4, "22.6"), (131072, SIG4, "131,072"), (4096, TEXT, "4096"), (2.680584, TEXT, "2.680584"),
    (True, NUM, "True"), ("text", NUM, "text"), (-12, Style("+,.1f", ints=None), "-12.0"),
    (1234.5, Style("+,.1f"), "+1,234.5"), (0.1234, Style(".1%"), "12.3%"), (30970.6, decimals(0), "30,971"),
    (73.66, Style(".1f", suffix="%"), "73.7%"), (15, Style(".4g", ints=None), "15"),
])
def test_one_formatter_styles(value, style, shown):
    assert fmt(value, style) == shown
    assert style(value) == shown


def test_default_style_is_two_decimals():
    assert fmt(3.14159) == "3.14" and fmt(None) == "" and fmt(10**6) == "1,000,000"


# ---------------------------------------------------------------- the writers on a small table

SMALL = Table([Column("name"), Column("latency", "ms", decimals(2), "decimal"), Column("note", wrap=8)],
              [["a", 1.5, "short"], ["bb", 1234.5678, "a longer note"], ["c", None, None]], title="Latency",
              notes=["one note"])
DOC = Document([heading("Head", 3), SMALL, warnings(["w1", "w2"])])


def test_every_format_has_a_writer():
    assert Writer.names() == FORMATS
    assert all(Writer.get(f).name == f for f in FORMATS)


def test_console_writer():
    assert Writer.get("table").write(DOC) == (
        "Head\n\nLatency\n"
        "name      latency  note\n"
        "------  ---------  --------\n"
        "a            1.50  short\n"
        "bb       1,234.57  a longer\n"
        "                   note\n"
        "c\n\n"
        "one note\n\nwarning: w1\nwarning: w2\n")


def test_markdown_writer():
    assert Writer.get("md").write(DOC) == (
        "### Head\n\n## Latency\n"
        "| name   |   latency | note          |\n"
        "|--------|-----------|---------------|\n"
        "| a      |      1.50 | short         |\n"
        "| bb     |  1,234.57 | a longer note |\n"
        "| c      |           |               |\n\n"
        "one note\n\nwarning: w1\nwarning: w2\n")


def test_csv_writer_raw_values_and_warnings():
    text = Writer.get("csv").write(DOC)
    assert text == ("name,latency,note\r\na,1.5,short\r\nbb,1234.5678,a longer note\r\nc,,\r\n"
                    "# warning: w1\n# warning: w2\n")
    two = Writer.get("csv").write(Document([SMALL, Table([Column("x")], [[1]])]))
    assert two.endswith("c,,\r\n\r\nx\r\n1\r\n")  # tables apart by an empty row


def test_csv_sections_one_table_led_by_titles():
    doc = Document([Table([Column(""), Column("")], [["k", "v"]], title="A"),
                    Table([Column("m"), Column("mean")], [["ttft", "1.00"]], title="B")],
                   csv_sections=["section", "a", "b"])
    assert Writer.get("csv").write(doc) == "section,a,b\r\nA,k,v\r\nB,ttft,1.00\r\n"


def test_json_writer_tables_or_own_json():
    out = json.loads(Writer.get("json").write(DOC))
    assert out["warnings"] == ["w1", "w2"] and out["notes"] == []
    (t,) = out["tables"]
    assert t["title"] == "Latency" and t["columns"] == ["name", "latency", "note"] and t["units"][1] == "ms"
    assert t["rows"][1] == ["bb", 1234.5678, "a longer note"] and t["notes"] == ["one note"]
    untitled = Document([heading("concurrency 1"), Table([Column("a")], [[1]])])
    assert json.loads(Writer.get("json").write(untitled))["tables"][0]["title"] == "concurrency 1"  # its heading
    assert Writer.get("json").write(Document([], own_json=lambda: '{"x": 1}')) == '{"x": 1}'


def test_key_value_table_without_header_and_final_newline():
    doc = Document([Table([Column(""), Column("")], [["model", "m"], ["GPU", "h100"]], header=False)],
                   final_newline=False)
    assert Writer.get("table").write(doc) == "-----  ----\nmodel  m\nGPU    h100\n-----  ----"
    assert Writer.get("md").write(doc) == "|-------|------|\n| model | m    |\n| GPU   | h100 |"


# ---------------------------------------------------------------- every kind, every format

def _runs() -> list[Labeled]:
    paths = [next((RESULTS / "h100-offline-vs-serving").glob(f"{n}-c10.json*")) for n in ("offline", "serving")]
    return order([Labeled(label_for(p, r), r) for p in paths for r in [RunResult.load(p)]])


def _sweep(name: str = "70b-tp4") -> SweepSummary:
    spec, rows = load_rows(RESULTS / name)
    return SweepSummary(spec=spec, rows=rows, analysis=analyze(spec, rows))


def _objects(kind: str) -> tuple:
    """Small objects of each kind, from committed results."""
    if kind == "run":
        return (RunResult.load(RESULTS / "h100-run" / "run-1000x512-256.json.gz"),)
    if kind == "plan":
        info = ModelInfo.from_config(preset_config("llama-3.1-8b"))
        points = kvplan.grid({"gpu_memory_utilization": [0.5, 0.9], "max_model_len": [4096]})
        return (kvplan.plan_rows(info, points, "cuda", 79.18, None),)
    if kind == "roofline":
        info = ModelInfo.from_config(preset_config("llama-3.1-8b"))
        return (roofline("preset:llama-3.1-8b", info, gpu_spec("h100-sxm"), [1, 8, 128], 1024),)
    if kind == "startup":
        return ((RESULTS / "h100-offline-vs-serving" / "server.log").read_text(),)
    if kind == "phases":
        return (PhasesResult.model_validate_json((RESULTS / "h100-phases" / "phases.json").read_text()),)
    if kind == "gap":
        doc = json.loads(gzip.decompress((RESULTS / "h100-offline-vs-serving" / "gap.json.gz").read_bytes()))
        return ([GapReport.model_validate(x) for x in doc["reports"]],)
    if kind == "presets":
        return (preset_rows(),)
    if kind == "scenario":
        return (RunResult.load(RESULTS / "h100-rate" / "seed-10.json.gz"),)
    if kind == "compare":
        runs = _runs()
        return runs, runs[0]
    if kind == "scaling":
        paths = [RESULTS / "70b-tp4" / n for n in ("dp2tp2-8b.json.gz", "tp4-8b.json.gz", "phases-70b-tp4.json")]
        return (scaling_report(load_items([str(p) for p in paths])),)
    if kind == "tune":
        return (load(ROOT / "tests" / "fixtures" / "results" / "tune.json"),)
    assert kind == "sweep"
    return (_sweep(),)


def test_every_kind_lists_the_same_formats():
    assert set(BUILDERS) == {"run", "plan", "roofline", "startup", "phases", "gap", "presets", "scenario", "compare",
                             "scaling", "sweep", "tune"}
    assert {formats_of(k) for k in BUILDERS} == {FORMATS}
    with pytest.raises(BenchError, match="^--format xml is not one of table, md, csv, json$"):
        check_format("gap", "xml")
    with pytest.raises(KeyError):
        formats_of("no-such-kind")


@pytest.mark.parametrize("fmt_name", FORMATS)
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_every_kind_renders_in_every_format(kind, fmt_name):
    text = render(kind, fmt_name, *_objects(kind))
    assert text.strip()
    if fmt_name == "json":
        json.loads(text)
    elif fmt_name == "csv":
        rows = [r for r in csv.reader(io.StringIO(text)) if r and not r[0].startswith("# warning")]
        assert len(rows) >= 2 and all(len(r) > 1 for r in rows)
    else:
        assert ("|---" in text) == (fmt_name == "md")


# ---------------------------------------------------------------- the renderings are those committed

@pytest.mark.parametrize("kind,objects,committed", [
    ("run", lambda: (RunResult.load(RESULTS / "70b-tp4" / "tp4-8b.json.gz"),), "70b-tp4/tp4-8b.md"),
    ("phases", lambda: _objects("phases"), "h100-phases/phases.md"),
    ("gap", lambda: _objects("gap"), "h100-offline-vs-serving/gap.md"),
    ("sweep", lambda: (_sweep("70b-tp4"),), "70b-tp4/summary.md"),
])
def test_markdown_as_committed(kind, objects, committed):
    """Files the CLI wrote (`> file.md`: the echo's newline at the end; summary.md as written)."""
    text = render(kind, "md", *objects())
    assert text + ("" if kind == "sweep" else "\n") == (RESULTS / committed).read_text()


def test_json_is_the_objects_own():
    r = _objects("roofline")[0]
    assert render("roofline", "json", r) == r.model_dump_json(indent=2)
    run = _objects("run")[0]
    assert json.loads(render("run", "json", run)) == json.loads(run.model_dump_json())
    assert json.loads(render("presets", "json", preset_rows())) == preset_rows()
    assert json.loads(render("sweep", "json", _sweep()))["spec"]["grid"]


def test_compare_json_holds_its_table_and_warnings():
    runs = _runs()
    out = json.loads(render("compare", "json", runs, runs[0]))
    (t,) = out["tables"]
    assert t["columns"][0] == "metric" and t["rows"][0][0] == "requests_per_s"
    assert isinstance(t["rows"][0][1], float) and t["notes"] == [f"baseline: {runs[0].label}"]
    assert any("max_num_seqs" in w for w in out["warnings"])


def test_startup_console_table_wraps_long_cells_markdown_does_not():
    text = _objects("startup")[0]
    table, md = render("startup", "table", text), render("startup", "md", text)
    assert "/root/.cache/offline-bench/presets/l " in table and "\n" + " " * 27 + "lama-3.1-8b-5b20142bc94a" in table
    assert "/root/.cache/offline-bench/presets/llama-3.1-8b-5b20142bc94a |" in md
    assert table.startswith("engine\n\n") and md.startswith("## engine\n\n")


def test_sweep_summary_files_come_from_the_writers(tmp_path):
    assert set(SUMMARY_FILES) >= {"summary.md", "summary.csv"}  # registered by importing report.formats
    out = tmp_path / "sweep"
    shutil.copytree(RESULTS / "70b-tp4", out, ignore=shutil.ignore_patterns("*.png", "plots"))
    summary = summarize(out)
    assert (out / "summary.md").read_text() == render("sweep", "md", summary)
    assert (out / "summary.csv").read_bytes().decode() == render("sweep", "csv", summary)


def test_cli_compare_json_in_process(capsys):
    from offline_bench.cli.main import run_app

    capsys.readouterr()
    paths = [str(RESULTS / "h100-run" / n) for n in ("run-1000x512-256.json.gz", "run-10x64-512.json")]
    assert run_app(["compare", *paths, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tables"][0]["columns"][1] == "run-10x64-512 [offline]"
    assert out["warnings"] and out["warnings"][0].startswith("run-10x64-512 [offline] vs run-1000x512-256")


# ---------------------------------------------------------------- plan and compare on a terminal

CONSOLE = 120  # columns: a console table fits a terminal this wide


def _plan_rows(**grid: list) -> list:
    info = ModelInfo.from_config(preset_config("llama-3.1-8b"))
    return kvplan.plan_rows(info, kvplan.grid(grid), "cuda", gpu_spec("a10").memory_gib, None)


def test_plan_console_leads_with_the_answer_within_a_terminal():
    rows = _plan_rows(gpu_memory_utilization=[0.3, 0.9], max_model_len=[4096, 131072], kv_cache_dtype=["auto", "fp8"])
    text = render("plan", "table", rows)
    head = text.splitlines()[0].split("  ")
    assert [h.strip() for h in head if h.strip()] == ["gmu", "max_model_len", "KV dtype", "KV tokens", "KV GiB",
                                                      "max concurrency", "fits", "why"]
    assert max(map(len, text.splitlines())) <= CONSOLE
    fits = [line.split()[-2 if line.endswith(")") else -1] for line in text.splitlines()[2:len(rows) + 2]]
    assert sorted(set(fits)) == ["no", "yes"] and "weights_gib" not in text
    reasons = sorted({r.reason for r in rows if r.reason})
    assert len(reasons) >= 2 and all(text.count("(" + str(i + 1) + ") ") == 1 for i in range(len(reasons)))
    assert "every row: batched tokens" in text  # the settings no row changes, said once


def test_plan_budget_terms_with_wide_and_always_in_csv_and_json():
    rows = _plan_rows(gpu_memory_utilization=[0.5, 0.9], max_model_len=[4096])
    budget = ("weights_gib", "peak_activation_gib", "non_torch_gib", "requested_gib")
    wide = render("plan", "table", rows, True)
    assert all(b in wide.splitlines()[0] for b in budget)
    header = next(csv.reader(io.StringIO(render("plan", "csv", rows))))
    assert all(b in header for b in budget) and "reason" in header and "max_num_seqs" in header
    assert all(b in json.loads(render("plan", "json", rows))["rows"][0] for b in budget)


def test_compare_leaves_out_the_rows_nobody_asked_for():
    runs = _runs()  # offline and serving: no SLO; itl measured by the server only
    names = [row[0] for row in json.loads(render("compare", "json", runs, runs[0]))["tables"][0]["rows"]]
    assert "goodput_requests_per_s" not in names and "good_requests_pct" not in names and "itl_ms p50" in names
    offline = [Labeled(label_for(p, r), r) for p in (RESULTS / "h100-run").glob("run-1*.json*")
               for r in [RunResult.load(p)]]
    data = json.loads(render("compare", "json", offline, offline[0]))["tables"][0]["rows"]
    assert "itl_ms p50" not in [row[0] for row in data]  # no offline run records it: its row is left out
    assert all(any(v is not None for v in row[1:len(offline) + 1]) for row in data)
    slo = runs[1].result.model_copy(deep=True)
    slo.goodput_slo_ms = {"ttft_ms": 500.0}
    slo.throughput.goodput_requests_per_s, slo.throughput.good_requests_pct = 1.5, 50.0
    text = render("compare", "md", [runs[0], Labeled("slo", slo)], runs[0])
    assert "goodput_requests_per_s" in text and "good_requests_pct" in text


def test_compare_of_a_sweep_fits_a_terminal_and_keeps_whole_labels_in_data():
    runs = load_runs([str(RESULTS / "h100-sweep")])  # a sweep directory: its points
    points = sorted(p.name for p in (RESULTS / "h100-sweep" / "points").glob("*.json*"))
    assert len(runs) == len(points) >= 9
    text = render("compare", "table", runs, runs[0]).split("\nwarning: ")[0]  # warnings: a line each, as ever
    assert max(map(len, text.splitlines())) <= CONSOLE  # before: 626-character lines
    assert "values (1 of " in text and "every run: offline" in text
    data = json.loads(render("compare", "json", runs, runs[0]))["tables"]
    assert len(data) == 1 and data[0]["columns"][1] == runs[0].label and len(data[0]["columns"]) == 2 * len(runs)
    table_csv = list(csv.reader(io.StringIO(render("compare", "csv", runs, runs[0]))))
    assert table_csv[0] == data[0]["columns"]


def test_compare_reads_the_runs_of_a_directory_and_skips_its_other_files():
    directory = RESULTS / "h100-offline-vs-serving"
    runs = load_runs([str(directory)])
    files = [p for p in directory.iterdir() if p.name.endswith((".json", ".json.gz"))]
    assert len(runs) == len(files) - 1  # gap.json.gz is a ladder, not a run
    assert {r.name for r in runs} == {result_name(p) for p in files} - {"gap"}
    with pytest.raises(BenchError, match="holds no run result"):
        load_runs([str(RESULTS / "h100-phases")])


def test_compare_of_a_sweep_lists_its_points_in_numeric_order():
    """A directory's results in the order of their numbers (mml-2048, 8192, 32768), not as text sorts them."""
    points = [x.label.split(" ")[0] for x in order(load_runs([str(RESULTS / "h100-sweep")]))]
    assert points == [f"gmu-{g}_mml-{m}" for g in ("0.5", "0.7", "0.9") for m in (2048, 8192, 32768)]
