"""Energy and cost per token where the views show them (issue 32): sweep rows, compare, scaling, phases. Results
get energy by hand (RunResult.model_copy); results without it (every committed one, the CPU build's "unknown")
render without the energy columns and rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from offline_bench.analysis.compare import Labeled, label_for, order
from offline_bench.analysis.scaling import scaling_report
from offline_bench.analysis.sweep import ENERGY_COLUMNS, analyze, load_rows, table_rows
from offline_bench.core.config import Prices
from offline_bench.core.power import GpuWindow, WindowEnergy
from offline_bench.measure.phases import pass_energy
from offline_bench.report.formats import render
from offline_bench.report.inputs import load_items
from offline_bench.results.energy import Energy, cost_of
from offline_bench.results.phases import PhasesResult
from offline_bench.results.run import RunResult
from offline_bench.results.sweep import SweepSummary
from tests.helpers import RESULTS

PRICES = Prices(gpu_hour_usd=3.0, kwh_usd=0.12)
NO_GPU = "the engine runs on the CPU: no GPU power to sample"
SWEEP_COLUMNS = ["joules_per_output_token", "output_tokens_per_joule", "avg_watts", "usd_per_million_output_tokens",
                 "energy_usd_per_million_output_tokens"]


def _measured(r: RunResult, watts: float, idle: float = 100.0, gpus: int = 1) -> RunResult:
    """`r` as if its GPUs drew `watts` (all of them) over its timed passes, with the cost of its tokens."""
    tps = r.throughput.output_tokens_per_s
    e = Energy(status="measured", method="NVML (test)", avg_watts=watts, idle_watts=idle,
               joules_per_output_token=watts / tps, output_tokens_per_joule=tps / watts)
    return r.model_copy(update={"energy": e, "cost": cost_of(PRICES, r.environment.gpu_name, gpus, tps, e)})


def _unknown(r: RunResult) -> RunResult:
    return r.model_copy(update={"energy": Energy(reason=NO_GPU)})


# ---------------------------------------------------------------- sweep


def _sweep_dir(tmp_path: Path, change: dict[str, object]) -> Path:
    """The 70b-tp4 sweep with the points in `change` (key -> RunResult -> RunResult) rewritten as plain .json."""
    d = tmp_path / "sw"
    (d / "points").mkdir(parents=True)
    shutil.copy(RESULTS / "70b-tp4" / "sweep.json", d)
    for f in (RESULTS / "70b-tp4" / "points").iterdir():
        key = f.name.removesuffix(".gz").removesuffix(".json")
        if key in change:
            change[key](RunResult.load(f)).save(d / "points" / f"{key}.json")  # type: ignore[operator]
        else:
            shutil.copy(f, d / "points")
    return d


def test_sweep_rows_show_energy_and_cost_of_the_points_that_have_them(tmp_path):
    d = _sweep_dir(tmp_path, {"gmu-0.9_mml-8192": lambda r: _measured(r, 2800.0, gpus=4),
                              "gmu-0.9_mml-32768": lambda r: _measured(r, 2600.0, gpus=4),
                              "gmu-0.85_mml-8192": _unknown})
    spec, rows = load_rows(d)
    by = {r.key: r for r in rows}
    m = by["gmu-0.9_mml-8192"]
    assert m.avg_watts == 2800.0 and m.output_tokens_per_joule == pytest.approx(m.output_tokens_per_s / 2800.0)
    assert m.joules_per_output_token == pytest.approx(2800.0 / m.output_tokens_per_s)
    # 4 GPUs x $3/h over the point's output tokens/s; 0.12 $/kWh x J/token
    assert m.usd_per_million_output_tokens == pytest.approx(4 * 3.0 / (m.output_tokens_per_s * 3600) * 1e6)
    assert m.energy_usd_per_million_output_tokens == pytest.approx(m.joules_per_output_token * 1e6 / 3.6e6 * 0.12)
    assert by["gmu-0.85_mml-8192"].energy_unknown == NO_GPU and by["gmu-0.85_mml-8192"].avg_watts is None
    assert by["gmu-0.85_mml-32768"].energy_unknown is None  # no energy field at all: an older result
    assert by["gmu-0.95_mml-8192"].status == "failed" and by["gmu-0.95_mml-8192"].avg_watts is None
    headers, body = table_rows(spec, rows)
    assert [h for h in headers if h in ENERGY_COLUMNS] == SWEEP_COLUMNS
    col = headers.index("avg_watts")
    assert sorted(str(row[col]) for row in body) == ["2600.0", "2800.0", "None", "None", "None", "None"]
    summary = SweepSummary(spec=spec, rows=rows, analysis=analyze(spec, rows))
    e = summary.analysis["energy"]
    best = max((m, by["gmu-0.9_mml-32768"]), key=lambda r: r.output_tokens_per_joule)
    assert e["most_efficient_point"] == best.key and e["points"] == 2
    md = render("sweep", "md", summary)
    assert "joules_per_output_token" in md.splitlines()[2]  # the table's header
    assert f"- Energy: most output tokens per joule at {best.key}" in md
    assert "Energy: the engine's GPUs over a timed pass" in md
    assert json.loads(render("sweep", "json", summary))["rows"][0]["avg_watts"] is None


def test_sweep_without_energy_keeps_its_columns_and_says_why_when_unknown(tmp_path):
    spec, rows = load_rows(RESULTS / "70b-tp4")
    headers, _ = table_rows(spec, rows)
    assert not set(headers) & set(ENERGY_COLUMNS)
    assert "energy" not in analyze(spec, rows)
    md = render("sweep", "md", SweepSummary(spec=spec, rows=rows, analysis=analyze(spec, rows)))
    assert "joules" not in md and "Energy" not in md
    # the CPU build: every point's energy unknown -- no columns, one note with the reason
    cpu = _sweep_dir(tmp_path, {k: _unknown for k in ("gmu-0.9_mml-8192", "gmu-0.9_mml-32768")})
    spec, rows = load_rows(cpu)
    headers, _ = table_rows(spec, rows)
    assert not set(headers) & set(ENERGY_COLUMNS)
    md = render("sweep", "md", SweepSummary(spec=spec, rows=rows, analysis=analyze(spec, rows)))
    assert f"Energy per token: unknown ({NO_GPU})." in md


# ---------------------------------------------------------------- compare


def _runs(offline: RunResult | None = None) -> list[Labeled]:
    paths = [next((RESULTS / "h100-offline-vs-serving").glob(f"{n}-c10.json*")) for n in ("offline", "serving")]
    loaded = [RunResult.load(p) for p in paths]
    if offline is not None:
        loaded[0] = offline
    return order([Labeled(label_for(p, r), r) for p, r in zip(paths, loaded)])


def _compare_rows(runs: list[Labeled]) -> dict[str, list]:
    data = json.loads(render("compare", "json", runs, runs[0]))["tables"][0]["rows"]
    return {row[0]: row[1:] for row in data}


def test_compare_shows_energy_and_cost_rows_when_a_run_has_them():
    base = next((RESULTS / "h100-offline-vs-serving").glob("offline-c10.json*"))
    runs = _runs(_measured(RunResult.load(base), 700.0, idle=90.0))
    offline = next(r for r in runs if r.result.mode == "offline")
    rows = _compare_rows(runs)
    tps = offline.result.throughput.output_tokens_per_s
    i = runs.index(offline)
    assert rows["joules_per_output_token"][i] == pytest.approx(700.0 / tps)
    assert rows["output_tokens_per_joule"][i] == pytest.approx(tps / 700.0)
    assert rows["avg_watts"][i] == 700.0 and rows["idle_watts"][i] == 90.0
    assert rows["usd_per_mtok_gpu_time"][i] == pytest.approx(3.0 / (tps * 3600) * 1e6)
    assert rows["usd_per_mtok_energy"][i] == pytest.approx(700.0 / tps * 1e6 / 3.6e6 * 0.12)
    assert rows["avg_watts"][1 - i] is None  # the serving run has no energy: unknown, and so is its ratio
    text = render("compare", "md", runs, runs[0])
    assert "| avg_watts" in text and "unknown" in text
    assert "energy unknown in " in text and "not recorded (an older result)" in text
    assert "$3 per GPU-hour x 1 GPU, $0.12 per kWh" in text and "none given" in text


def test_compare_without_energy_has_no_energy_rows():
    for runs in (_runs(), _runs(_unknown(RunResult.load(next((RESULTS / "h100-offline-vs-serving")
                                                             .glob("offline-c10.json*")))))):
        rows = _compare_rows(runs)
        assert not {"joules_per_output_token", "avg_watts", "idle_watts"} & set(rows)
        assert not any(name.startswith("usd_") for name in rows)
        assert "energy" not in render("compare", "table", runs, runs[0])


# ---------------------------------------------------------------- scaling

PAR = RESULTS / "2gpu-parallel"
TP1, TP2 = (str(PAR / f"{n}.json.gz") for n in ("h200-tp1", "h200-tp2"))
PHASES = RESULTS / "70b-tp" / "phases-70b-tp2.json"


def test_scaling_shows_tokens_per_joule_per_layout():
    items = load_items([TP1, TP2])
    items[0].data = _measured(items[0].data, 650.0)
    items[1].data = _measured(items[1].data, 1200.0, gpus=2)
    report = scaling_report(items)
    one, two = report.runs
    assert one.output_tokens_per_joule == pytest.approx(one.output_tokens_per_s / 650.0)
    assert two.watts_per_gpu == 600.0 and one.energy_efficiency_pct == pytest.approx(100)
    assert two.energy_efficiency_pct == pytest.approx(100 * two.output_tokens_per_joule / one.output_tokens_per_joule)
    md = render("scaling", "md", report)
    assert "output tok/J" in md and "W per GPU" in md and "energy: output tokens per joule" in md
    assert json.loads(render("scaling", "json", report))["runs"][1]["watts_per_gpu"] == 600.0


def test_scaling_without_energy_has_no_energy_columns():
    items = load_items([TP1, TP2])
    items[1].data = _unknown(items[1].data)  # one unknown, one older result: nothing to show
    report = scaling_report(items)
    assert all(r.output_tokens_per_joule is None and r.energy_efficiency_pct is None for r in report.runs)
    md = render("scaling", "md", report)
    assert "tok/J" not in md and "J per token" not in md


def test_scaling_decode_rows_carry_the_phases_joules_per_token(tmp_path):
    p = PhasesResult.model_validate_json(PHASES.read_text())
    rows = [r.model_copy(update={"joules_per_token": 0.25 * r.batch_size ** -0.5 if r.latency_ms else None})
            for r in p.rows]
    path = tmp_path / "phases.json"
    p.model_copy(update={"rows": rows}).save(path)
    (d,) = scaling_report(load_items([str(path)])).decode
    assert d.batch_size == 1 and d.joules_per_token == 0.25
    assert "J per token" in render("scaling", "md", scaling_report(load_items([str(path)])))
    assert "J per token" not in render("scaling", "md", scaling_report(load_items([str(PHASES)])))


# ---------------------------------------------------------------- phases


def _window(joules: list[float | None], start: float = 10.0, end: float = 12.0) -> WindowEnergy:
    return WindowEnergy(start, end, [GpuWindow(j, j, None, None, "counter") for j in joules], samples=40)


def test_a_pass_energy_per_token_and_mean_draw():
    assert pass_energy(_window([600.0, 400.0]), 4000) == {"joules_per_token": 0.25, "avg_watts": 500.0}
    assert pass_energy(None, 4000) == {} and pass_energy(_window([600.0, None]), 4000) == {}
    assert pass_energy(_window([600.0]), 0) == {}
    assert _window([200.0], 5.0, 5.0).avg_watts is None


def _phases(measured: bool) -> PhasesResult:
    p = PhasesResult.model_validate_json((RESULTS / "h100-phases" / "phases.json").read_text())
    if not measured:
        return p.model_copy(update={"energy_unknown": NO_GPU})
    rows = [r.model_copy(update={"joules_per_token": 0.0123 * (i + 1), "avg_watts": 650.0 + i})
            for i, r in enumerate(p.rows)]
    return p.model_copy(update={"rows": rows, "idle_watts": 95.4})


def test_phases_table_shows_joules_per_token_against_batch_size():
    md = render("phases", "md", _phases(True))
    header = next(line for line in md.splitlines() if line.startswith("| phase"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells.index("J/token (prefill: prompt, decode: generated)") == cells.index("% of ceiling") + 1
    assert cells[-1] == "note" and "avg W" in cells
    assert "0.0123" in md and "0.0246" in md and "| 650 " in md.replace("  ", " ")
    assert "idle: 95 W before the engine started" in md
    data = json.loads(render("phases", "json", _phases(True)))
    assert data["rows"][0]["joules_per_token"] == 0.0123 and data["idle_watts"] == 95.4


def test_phases_without_energy_has_no_energy_columns():
    old = PhasesResult.model_validate_json((RESULTS / "h100-phases" / "phases.json").read_text())
    assert old.energy_unknown is None and all(r.joules_per_token is None for r in old.rows)
    assert "J/token" not in render("phases", "md", old) and "energy" not in render("phases", "md", old)
    md = render("phases", "md", _phases(False))
    assert "J/token" not in md and f"energy per token: unknown ({NO_GPU})" in md
    assert render("phases", "csv", _phases(False)).strip()
