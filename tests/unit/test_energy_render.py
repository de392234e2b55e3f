"""Energy and cost as the run table (table, md, csv, json) and the HTML report show them: the figures of a measured
result, one `energy: unknown (reason)` line otherwise (a result from before energy was recorded: None)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from offline_bench.report.formats import render
from offline_bench.report.html import build_page
from offline_bench.report.htmlruns import energy, energy_overview
from offline_bench.report.inputs import load_items
from offline_bench.results.energy import Cost, Energy, GpuEnergy
from offline_bench.results.run import RunResult
from tests.helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "results"
METHOD = "NVML, instantaneous power every 50 ms, energy from the driver's total-energy counter"
MEASURED = Energy(
    status="measured", method=METHOD, joules_per_pass=[10124.6, 10130.1], joules=10127.35, avg_watts=1212.4,
    peak_watts=1368.0, idle_watts=222.5, warmup_joules=812.5, joules_per_output_token=0.3956,
    joules_per_total_token=0.1319, output_tokens_per_joule=2.528, above_idle_joules_per_output_token=0.3139,
    samples=334,
    gpus=[GpuEnergy(index=0, name="NVIDIA H200", joules=5123.4, avg_watts=612.3, peak_watts=688.0, idle_watts=112.5,
                    counter_vs_samples_pct=0.42),
          GpuEnergy(index=1, name="NVIDIA H200", joules=5003.95, avg_watts=600.1, peak_watts=680.0, idle_watts=110.0,
                    counter_vs_samples_pct=-7.5)])
COST = Cost(gpu_hour_usd=3.5, kwh_usd=0.12, gpus=2, usd_per_million_output_tokens=0.6789,
            energy_usd_per_million_output_tokens=0.01319)
CPU_WHY = "no GPU: the engine runs on the CPU, and energy is sampled from NVIDIA GPUs only (NVML)"


def _run(**update: object) -> RunResult:
    r = RunResult.load(FIXTURES / "run-offline.json")
    assert r.energy is None and r.cost is None  # an older result: the None case as it comes
    return r.model_copy(update=update)


@pytest.mark.parametrize("fmt", ["table", "md"])
def test_measured_energy_and_cost_in_the_run_table(fmt):
    text = render("run", fmt, _run(energy=MEASURED, cost=COST))
    section = text[text.index("Energy and cost"):]
    assert ("## Energy and cost" in text) == (fmt == "md")
    for shown in ("J per output token", "0.3956", "J per total token (prompt + output)", "0.1319",
                  "output tokens per J", "2.528", "above-idle J per output token", "0.3139",
                  "average W (sum of 2 GPU(s))", "1,212.4", "1,368.0", "222.5", "10,124.6; 10,130.1",
                  "GPU 0 +0.42%, GPU 1 -7.50%", METHOD, "0.6789 (2 GPU(s) x $3.50/h)", "0.0132 ($0.120/kWh)"):
        assert shown in section, shown
    assert "unknown (" not in section


def test_energy_and_cost_in_csv_and_json():
    r = _run(energy=MEASURED, cost=COST)
    rows = list(csv.reader(io.StringIO(render("run", "csv", r))))
    mine = {row[1]: row[2] for row in rows if row[0] == "Energy and cost"}
    assert mine["J per output token"] == "0.3956" and mine["output tokens per J"] == "2.528"
    assert mine["$ per million output tokens (energy)"].startswith("0.0132")
    doc = json.loads(render("run", "json", r))
    assert doc["energy"]["joules_per_output_token"] == 0.3956 and doc["cost"]["usd_per_million_output_tokens"] == 0.6789


@pytest.mark.parametrize("e,why", [(None, "not recorded in this result"), (Energy(reason=CPU_WHY), CPU_WHY),
                                   (Energy(), "not sampled")])
@pytest.mark.parametrize("fmt", ["table", "md", "csv", "json"])
def test_unknown_energy_is_one_line_with_its_reason(e, why, fmt):
    text = render("run", fmt, _run(energy=e))
    if fmt == "json":
        assert json.loads(text)["energy"] == (None if e is None else e.model_dump())
        return
    lines = [line for line in text.splitlines() if "unknown (" in line and "energy" in line]
    if e is None:  # a result from before energy was recorded: no section (the committed pages stay as they are)
        assert lines == [] and "Energy and cost" not in text
        return
    assert len(lines) == 1 and why in lines[0]
    assert "J per output token" not in text and "per million output tokens" not in text  # no price given: no cost


def test_cost_of_an_unknown_energy_says_why():
    cost = Cost(kwh_usd=0.12, reason=f"energy unknown: {CPU_WHY}")
    text = " ".join(render("run", "table", _run(energy=Energy(reason=CPU_WHY), cost=cost)).split())
    assert "$ per million output tokens (energy) unknown ($0.120/kWh)" in text
    assert f"cost unknown energy unknown: {CPU_WHY}" in text
    assert "(GPU time)" not in text  # no --gpu-hour-cost


def test_html_energy_part_of_a_run():
    body = energy(_run(energy=MEASURED, cost=COST), "a")
    for key, value in (("energy.joules_per_output_token", 0.3956), ("energy.output_tokens_per_joule", 2.528),
                       ("energy.joules_per_pass.1", 10130.1), ("energy.gpus.1.counter_vs_samples_pct", -7.5),
                       ("cost.usd_per_million_output_tokens", 0.6789),
                       ("cost.energy_usd_per_million_output_tokens", 0.01319)):
        assert f'data-key="{key}" data-value="{value!r}"' in body, key
    assert "+0.42" in body and "at 2 GPU(s) x $3.5 per GPU-hour" in body and "at $0.12 per kWh" in body
    assert "integrate to -7.5% of the energy counter" in body  # the check's warning, beyond 5%
    for e, why in ((None, "not recorded in this result"), (Energy(reason=CPU_WHY), CPU_WHY)):
        part = energy(_run(energy=e), "a")
        assert part.count("energy: unknown (") == 1 and why in part and "data-key" not in part


def test_html_report_compares_the_runs_energy():
    items = load_items([str(FIXTURES / "run-offline.json"), str(FIXTURES / "run-serving.json.gz")])
    assert energy_overview(items) == ""  # neither has energy or cost: each run's own part says why
    page = build_page(items, "t")
    assert 'id="energy"' not in page and page.count("energy: unknown (not recorded in this result") == 2
    items[0].data = items[0].data.model_copy(update={"energy": MEASURED, "cost": COST})
    page = build_page(items, "t")
    part = page[page.index('<section id="energy"'):page.index('id="group-offline"')]
    assert '<a href="#energy">Energy and cost</a>' in page
    src = items[0].anchor
    for key in ("energy.joules_per_output_token", "energy.output_tokens_per_joule",
                "cost.usd_per_million_output_tokens", "cost.energy_usd_per_million_output_tokens"):
        assert f'data-src="{src}" data-key="{key}"' in part, key
    assert part.count('<span class="missing">unknown</span>') == 6  # the serving run: every figure unknown
    assert "energy unknown (not recorded in this result" in part and ": 1 run(s)" in part
    assert energy_overview(items[:1]) == ""  # one run: its own part is the comparison
