"""The findings at the top of the report, computed from the committed GPU results: each figure checked against one
computed here straight from the JSON files, and each link pointing at a section the page has."""

from __future__ import annotations

import json
import re

import pytest

from offline_bench.analysis.findings import find
from offline_bench.report.html import build_page
from offline_bench.report.inputs import load_items
from offline_bench.results.run import read_text
from tests.helpers import RESULTS


def _doc(path: str) -> dict:
    """A committed result by its path, with or without the .gz it may be kept as."""
    p = RESULTS / path
    return json.loads(read_text(p if p.exists() else p.with_name(p.name + ".gz")))


def _topic(found, topic: str):
    return [f for f in found if f.topic == topic]


def test_offline_vs_serving_at_equal_concurrency():
    found = find(load_items([str(RESULTS / "h100-offline-vs-serving")]))
    (f,) = _topic(found, "Offline vs serving")
    assert f.values["kind"] == "concurrency"
    assert [p["level"] for p in f.values["pairs"]] == ["c=1", "c=10", "c=64"]
    for pair, level in zip(f.values["pairs"], ("c1.json", "c10.json", "c64.json")):
        off, srv = _doc(f"h100-offline-vs-serving/offline-{level}"), _doc(f"h100-offline-vs-serving/serving-{level}")
        ratio = srv["throughput"]["output_tokens_per_s"] / off["throughput"]["output_tokens_per_s"]
        added = srv["latency"]["ttft_ms"]["p50"] - off["latency"]["ttft_ms"]["p50"]
        assert pair["ratio"] == pytest.approx(ratio) and pair["ttft_p50_added_ms"] == pytest.approx(added)
        assert f"{ratio:.3f}" in f.text and f"{added:+,.1f}" in f.text
    assert "the same throughput" in f.text  # the H100 server matched the engine within 1%


def test_explain_gap_names_the_biggest_step():
    found = _topic(find(load_items([str(RESULTS / "h100-offline-vs-serving/gap.json.gz")])), "Explain-gap")
    ladders = _doc("h100-offline-vs-serving/gap.json.gz")["reports"]
    assert len(found) == len(ladders) == 3
    for f, rep in zip(found, ladders):
        shares = [s["share_of_gap"] or 0.0 for s in rep["steps"][1:]]
        biggest = 2 + shares.index(max(shares))  # steps are numbered from 1; the first has no share
        assert f.values["biggest_step"] == biggest and f"#{biggest} '{rep['steps'][biggest - 1]['step']}'" in f.text
        assert f.values["http_share"] == rep["steps"][-1]["share_of_gap"]


def test_sweep_preemption_onset_and_knee():
    found = _topic(find(load_items([str(RESULTS / "h100-sweep")])), "Sweep")
    points = {p.name.removesuffix(".json.gz"): json.loads(read_text(p))
              for p in (RESULTS / "h100-sweep/points").glob("*.json.gz")}
    (onset,) = [f for f in found if "onset" in f.values]
    assert onset.values["onset"] == 0.9 and onset.values["last_preempting"] == 0.7
    assert onset.values["preempting"] == {k: p["kv_cache"]["preemptions"] for k, p in points.items()
                                          if p["kv_cache"]["preemptions"]}
    assert all(not k.startswith("gmu-0.9") for k in onset.values["preempting"])

    def mean_rate(gmu: str) -> float:
        rates = [p["throughput"]["output_tokens_per_s"] for k, p in points.items() if k.startswith(f"gmu-{gmu}_")]
        return sum(rates) / len(rates)

    gain = 100 * (mean_rate("0.9") / mean_rate("0.7") - 1)
    assert onset.values["gain_pct"] == pytest.approx(gain) and f"{gain:+.1f}%" in onset.text
    low = min(p["kv_cache"]["preemptions"] for k, p in points.items() if k.startswith("gmu-0.7_"))
    assert f"Preemptions {low} -> 0 from gmu 0.7 to gmu 0.9" in onset.text
    knee = next(f for f in found if "knee" in f.values)
    assert knee.values["knee"] == [None, None, None] and "no knee inside the grid" in knee.text


def test_sweep_failed_points_and_no_preemption():
    texts = [f.text for f in _topic(find(load_items([str(RESULTS / "70b-tp4")])), "Sweep")]
    assert any("2 of 6 points failed" in t and "out of memory" in t for t in texts)
    assert any("no point preempts" in t for t in texts)


def test_blind_prediction_against_its_measurement():
    found = _topic(find(load_items([str(RESULTS / "h100-predict")])), "Prediction")
    rows = {r["key"]: r for r in _doc("h100-predict/blind-measured/sweep/summary.json")["rows"]}
    predicted = _doc("h100-predict/blind/gmu-0.55_mns-256_mnbt-8192.json.gz")
    (f,) = [f for f in found if "blind/gmu-0.55" in f.text]
    err = 100 * (predicted["throughput"]["output_tokens_per_s"] / rows["gmu-0.55"]["output_tokens_per_s"] - 1)
    assert f.values["output tok/s"] == pytest.approx(err) and f"({err:+.1f}%)" in f.text
    assert "against measured blind-measured/sweep/gmu-0.55:" in f.text  # the sweep that measured it


def test_scaling_against_the_single_gpu_run():
    (f,) = [f for f in _topic(find(load_items([str(RESULTS / "2gpu-parallel")])), "Scaling") if "H200" in f.text]
    one = _doc("2gpu-parallel/h200-tp1.json.gz")["throughput"]["output_tokens_per_s"]
    tp2 = _doc("2gpu-parallel/h200-tp2.json.gz")["throughput"]["output_tokens_per_s"]
    assert f.values["baseline"] == "2gpu-parallel/h200-tp1"
    assert f.values["efficiency_pct"]["2gpu-parallel/h200-tp2"] == pytest.approx(100 * tp2 / 2 / one)


def test_every_finding_links_to_a_section_of_the_page():
    items = load_items([str(RESULTS)])
    found = find(items)
    assert {f.topic for f in found} == {"Offline vs serving", "Explain-gap", "Sweep", "Prediction", "Scaling"}
    page = build_page(items, "all")
    ids = set(re.findall(r' id="([^"]+)"', page))
    assert {anchor for f in found for _, anchor in f.links} <= ids
    assert page.index('<section id="findings">') < page.index('<section id="overview">') < page.index(
        'id="group-compare"') < page.index('id="group-offline"')


def test_a_single_run_has_no_finding_but_says_so():
    items = load_items([str(RESULTS / "h100-run/run-1x128-512.json")])
    assert find(items) == []
    assert "No finding: these results hold no offline/serving pair" in build_page(items, "one run")
