"""Every file the tool writes says what it is (`kind`) and reads back as its typed object through one `load`;
files written before kinds (everything in docs/results) read through the migration; a reader that takes one kind
refuses any other file in one line that names both."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from offline_bench.analysis.compare import load_runs
from offline_bench.analysis.gap import load_saved_serving
from offline_bench.analysis.sweep import calibrated
from offline_bench.core.config import WorkloadConfig
from offline_bench.core.errors import BenchError, NotAResult
from offline_bench.model.presets import resolve_model
from offline_bench.predict.plan import load_calibration
from offline_bench.predict.replay import Calibrated
from offline_bench.results.gap import GapLadder, save_ladder
from offline_bench.results.kinds import KINDS
from offline_bench.results.load import MODELS, REPORTED, classify, load, load_as, load_item
from offline_bench.results.phases import PhasesResult
from offline_bench.results.plan import PlanTable, plan_json
from offline_bench.results.run import RunResult, read_text, write_atomic
from offline_bench.results.scaling import ScalingReport
from offline_bench.results.startup import StartupFacts, parse_engines, startup_document
from offline_bench.results.sweep import FailedPoint, SweepSpec, SweepSummary
from offline_bench.results.tune import TuneResult

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "results"  # real docs/results files, trimmed; legacy/: as written before kinds
LOG = ROOT / "tests" / "fixtures" / "h100-vllm0.26-llama8b-startup.log"
DOCS = ROOT / "docs" / "results"

FIXTURES = {
    "run-offline.json": ("run", RunResult),
    "run-serving.json.gz": ("run", RunResult),
    "phases.json": ("phases", PhasesResult),
    "gap.json": ("gap", GapLadder),
    "summary.json": ("sweep", SweepSummary),
    "sweep.json": ("sweep-spec", SweepSpec),
    "failed-point.json": ("failed-point", FailedPoint),
    "plan.json": ("plan", PlanTable),
    "startup.json": ("startup", StartupFacts),
    "scaling.json": ("scaling", ScalingReport),
    "tune.json": ("tune", TuneResult),
}
LEGACY = {k: v for k, v in FIXTURES.items() if k != "tune.json"}  # tune came after kinds: always has one


def _doc(path: Path) -> object:
    return json.loads(read_text(path))


def test_every_kind_has_a_model_and_a_fixture():
    assert set(MODELS) == set(KINDS) == {kind for kind, _ in FIXTURES.values()}


@pytest.mark.parametrize("name", FIXTURES)
def test_each_kind_says_what_it_is_and_loads_as_its_type(name):
    kind, model = FIXTURES[name]
    assert _doc(FIX / name)["kind"] == kind
    result = load(FIX / name)
    assert type(result) is model and result.kind == kind
    assert load_as(FIX / name, kind, "a test") == result


@pytest.mark.parametrize("name", LEGACY)
def test_a_file_without_kind_loads_through_the_migration(name):
    kind, model = FIXTURES[name]
    old = _doc(FIX / "legacy" / name)
    assert isinstance(old, list) or "kind" not in old
    assert load(FIX / "legacy" / name) == load(FIX / name)  # the same object as the file written now


def test_migration_moves_a_plan_list_under_rows_and_reads_a_data_parallel_startup(tmp_path):
    rows = _doc(FIX / "legacy" / "plan.json")
    table = load(FIX / "legacy" / "plan.json")
    new = {"expected_kv_error_pct", "expected_kv_kind"}  # fields added since (issue 30), absent from old files
    assert isinstance(rows, list) and [r.model_dump(exclude=new) for r in table.rows] == rows
    engines = [{"dp_rank": r, "vllm_version": "0.26.0", "kv_cache_tokens": t} for r, t in ((0, 100), (1, 90))]
    (tmp_path / "dp.json").write_text(json.dumps({"engines": engines}))  # startup --format json of a DP log
    facts = load(tmp_path / "dp.json")
    assert isinstance(facts, StartupFacts) and len(facts.engines) == 2 and facts.facts["kv_cache_tokens"] == 100


def test_writers_put_the_kind_first(tmp_path):
    """Every writer: the models' save (run, phases, failed point), the ladder, plan and startup JSON."""
    run = load(FIX / "run-offline.json")
    run.save(tmp_path / "run.json")
    load(FIX / "phases.json").save(tmp_path / "phases.json")
    FailedPoint(settings={"max_model_len": 8192}, error="out of memory", elapsed_s=1.0).save(tmp_path / "fp.json")
    ladder = load(FIX / "gap.json")
    reports, runs = ladder.pair()
    save_ladder(str(tmp_path / "gap.json"), reports, {int(c): steps for c, steps in runs.items()})
    (tmp_path / "plan.json").write_text(plan_json(load(FIX / "plan.json").rows))
    (tmp_path / "startup.json").write_text(json.dumps(startup_document(parse_engines(LOG.read_text()))))
    for name, kind in (("run", "run"), ("phases", "phases"), ("fp", "failed-point"), ("gap", "gap"),
                       ("plan", "plan"), ("startup", "startup")):
        doc = _doc(tmp_path / f"{name}.json")
        assert next(iter(doc)) == "kind" and doc["kind"] == kind, name
        assert load(tmp_path / f"{name}.json").kind == kind
    assert load(tmp_path / "gap.json") == ladder
    assert "engine_log" not in _doc(tmp_path / "fp.json")  # only when the engine left one


def test_a_log_is_startup_facts():
    facts = load(LOG)
    assert isinstance(facts, StartupFacts) and facts.facts["kv_cache_tokens"] == 444_528
    assert load(FIX / "startup.json").facts["kv_cache_tokens"] == 444_528


# ---------------------------------------------------------------- one line for a file of another kind


def _line(excinfo: pytest.ExceptionInfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and "schema_version None" not in text
    return text


def test_load_as_names_what_the_file_is_and_what_the_reader_needs():
    with pytest.raises(BenchError) as e:
        load_as(FIX / "plan.json", "run", "predict")
    assert _line(e) == f"'{FIX / 'plan.json'}' is a plan table; predict needs a run result"
    with pytest.raises(BenchError) as e:
        load_as(FIX / "legacy" / "summary.json", "run", "compare")
    assert _line(e) == f"'{FIX / 'legacy' / 'summary.json'}' is a sweep summary; compare needs a run result"
    with pytest.raises(BenchError) as e:
        load_as(LOG, "run", "compare")
    assert _line(e) == f"'{LOG}' is start-up facts; compare needs a run result"
    with pytest.raises(BenchError) as e:
        load_as(FIX / "run-serving.json.gz", ("sweep-spec", "failed-point"), "sweep")
    assert _line(e) == (f"'{FIX / 'run-serving.json.gz'}' is a serving run result; sweep needs a sweep definition "
                        "or a failed sweep point")


@pytest.mark.parametrize("read,says", [
    (lambda p: RunResult.load(p), "this command needs a run result"),
    (lambda p: load_runs([str(FIX / "run-offline.json"), str(p)]), "compare needs a run result"),
    (lambda p: Calibrated(p), "predict needs a run result"),
    (lambda p: calibrated(SweepSpec.model_validate({**_doc(FIX / "sweep.json"), "calibrate": str(p)})),
     "sweep --calibrate needs a run result"),
    (lambda p: load_saved_serving([str(p)], [(1, None)], WorkloadConfig()),
     "explain-gap --serving-result needs a run result"),
    (lambda p: load_calibration(p, resolve_model("preset:llama-3.1-8b").info),
     "plan --calibrate needs a run result or a vLLM start-up log"),
])
@pytest.mark.parametrize("name", ["phases.json", "legacy/phases.json", "failed-point.json"])
def test_every_reader_of_one_kind_refuses_another_in_one_line(read, says, name):
    with pytest.raises(BenchError) as e:
        read(FIX / name)
    what = FIXTURES[Path(name).name][0]
    assert _line(e) == f"'{FIX / name}' is {KINDS[what]}; {says}"


def test_readers_still_take_their_kind_legacy_or_not():
    info = resolve_model("preset:llama-3.1-8b").info
    for name in ("run-offline.json", "legacy/run-offline.json"):
        assert load_calibration(FIX / name, info).num_blocks > 0
        assert [r.result.mode for r in load_runs([str(FIX / name), str(FIX / "run-serving.json.gz")])] == [
            "offline", "serving"]
    with pytest.raises(BenchError, match=r"is a serving result: predict needs a measured `run` \(offline\)"):
        Calibrated(FIX / "run-serving.json.gz")


def test_files_that_are_not_ours_or_not_whole(tmp_path):
    cases = {
        "notes.json": ({"a": 1}, "is not an offline-bench result"),
        "future.json": ({"kind": "future"}, "is of kind 'future', which this offline-bench does not read"),
        "v99.json": ({**_doc(FIX / "legacy" / "run-offline.json"), "schema_version": 99},
                     "is an offline run result of schema_version 99; this offline-bench reads 1"),
        "part.json": ({"kind": "run", "schema_version": 1},
                      "is a run result with 13 fields that do not match (first tool_version)"),
        "facts.json": ({"kind": "startup", "engines": 3}, "is start-up facts with 1 field that does not match"),
    }
    for name, (doc, says) in cases.items():
        (tmp_path / name).write_text(json.dumps(doc))
        with pytest.raises(NotAResult) as e:
            load(tmp_path / name)
        assert _line(e).startswith(f"'{tmp_path / name}' {says}"), name
    with pytest.raises(BenchError) as e:
        load_as(tmp_path / "notes.json", "run", "compare")
    assert _line(e) == f"'{tmp_path / 'notes.json'}' is not an offline-bench result; compare needs a run result"
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(gzip.compress((FIX / "legacy" / "run-offline.json").read_bytes())[:500])
    with pytest.raises(NotAResult) as e:
        RunResult.load(cut)
    assert _line(e).startswith(f"cannot read result '{cut}': ")


# ---------------------------------------------------------------- `report` dispatches on the same kinds


@pytest.mark.parametrize("name", FIXTURES)
def test_report_sees_each_file_by_its_kind_legacy_or_not(name):
    now, before = (classify(Path(name), _doc(d / name)) for d in (FIX, FIX / ("legacy" if name in LEGACY else "")))
    assert now[0] == before[0] == load_item(FIX / name).kind
    kind = FIXTURES[name][0]
    assert now[0] == (kind if kind in REPORTED else "skipped")


def test_report_skips_what_it_does_not_show_with_the_reason():
    assert load_item(FIX / "sweep.json").data == "a sweep definition: give the sweep's directory"
    assert load_item(FIX / "failed-point.json").data == "a failed sweep point: give the sweep's directory"
    assert load_item(FIX / "gap.json").data[0][0].concurrency == 1  # (reports, runs), as explain-gap hands it over
    assert load_item(LOG).data["kv_cache_tokens"] == 444_528


# ---------------------------------------------------------------- everything already in docs/results

FOREIGN = {  # written by scripts/ (not by the tool): refused as not offline-bench results
    "h100-predict/predictions.json", "h100-run/summary.json", "h100-run/tool_vs_bare.json",
    "vs-vllm-bench/cpu-tiny-256x256-128.json", "vs-vllm-bench/cpu-tiny-32x64-32.json",
    "vs-vllm-bench/h100-1000x512-256.json", "vs-vllm-bench/h100-400x512-256.json",
    "vs-vllm-bench-serve/vllm-bench-r5.json", "vs-vllm-bench-serve/vllm-bench-r20.json",
    "vs-vllm-bench-serve/vllm-bench-r50.json"}
KNOWN = {  # a sample: file -> (kind, mode of a run)
    "h100-run/run-10x64-512.json": ("run", "offline"),
    "h100-offline-vs-serving/serving-c10.json.gz": ("run", "serving"),
    "h100-predict/blind/gmu-0.55_mns-256_mnbt-8192.json.gz": ("run", "predicted"),
    "ray-2node/h200-seq/pass1/tp2-ray.json.gz": ("run", "offline"),
    "h100-offline-vs-serving/gap.json.gz": ("gap", None),
    "h100-phases/phases.json": ("phases", None),
    "h100-sweep/summary.json": ("sweep", None),
    "h100-sweep/sweep.json": ("sweep-spec", None),
    "70b-tp4/points/gmu-0.95_mml-8192.json": ("failed-point", None),
    "70b-tp4/points/gmu-0.9_mml-8192.json.gz": ("run", "offline"),
    "h100-offline-vs-serving/server.log": ("startup", None),
    "ray-2node/h200-tp2-ray-hang.log": ("startup", None),
    "tune-h200/tune-r20.json.gz": ("tune", None),
    "tune-h200/verify-r20/rank-1_gmu-0.9_mml-1024_mns-1024_mnbt-16384.json.gz": ("run", "offline"),
    "h200-energy/energy-gmu-0.5.json.gz": ("run", "offline"),
    "h200-energy/phases.json": ("phases", None),
}


def test_every_file_in_docs_results_loads():
    found = {}
    for path in sorted(DOCS.rglob("*")):
        if not path.name.endswith((".json", ".json.gz", ".log")):
            continue
        rel = path.relative_to(DOCS).as_posix()
        if rel in FOREIGN:
            with pytest.raises(NotAResult, match="is not an offline-bench result"):
                load(path)
            continue
        result = load(path)
        found[rel] = (result.kind, getattr(result, "mode", None) if result.kind == "run" else None)
    assert {rel: found.get(rel) for rel in KNOWN} == KNOWN
    assert FOREIGN <= {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.json")}
    assert len(found) >= 120 and {kind for kind, _ in found.values()} >= set(KINDS) - {"plan", "scaling"}


def test_a_result_written_to_a_gz_path_is_gzipped_and_reads_back(tmp_path):
    """`--output run.json.gz` writes what `read_text` and every reader take: gzip, not JSON under a .gz name."""
    text = read_text(DOCS / "h100-run" / "run-10x64-512.json")
    write_atomic(tmp_path / "r.json.gz", text)
    write_atomic(tmp_path / "r.json", text)
    assert (tmp_path / "r.json.gz").read_bytes()[:2] == b"\x1f\x8b" and (tmp_path / "r.json").read_text() == text
    assert gzip.decompress((tmp_path / "r.json.gz").read_bytes()).decode() == text
    assert load(tmp_path / "r.json.gz") == load(tmp_path / "r.json")
