"""`report` without a browser: inputs recognised by content, the timeline's preemption marks, the command that
reruns a result, the parallel layout (the page opened in Chromium: tests/e2e)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline_bench.core.errors import BenchError
from offline_bench.report.inputs import load_items
from offline_bench.results.load import classify
from offline_bench.results.run import read_text
from tests.helpers import ROOT, cli


def test_report_inputs_are_recognised_by_content(capsys, tmp_path):
    run = json.loads((ROOT / "docs/results/h100-run/run-1x128-512.json").read_text())
    assert classify(Path("x.json"), run)[0] == "run"
    assert classify(Path("x.json"), {"reports": [], "runs": {}})[0] == "gap"
    assert classify(Path("x.json"), {"model": "m"}) == ("skipped", "not an offline-bench result (run, sweep, phases, "
                                                                   "explain-gap, startup, plan, tune)")
    assert classify(Path("x.json"), {"throughput": 1, "schema_version": 1})[0] == "skipped"
    with pytest.raises(BenchError, match="does not exist"):
        load_items([str(tmp_path / "nope")])
    (tmp_path / "notes.json").write_text('{"a": 1}')
    with pytest.raises(BenchError, match="nothing to report"):
        load_items([str(tmp_path)])
    rc, _, err = cli(capsys, "report", str(tmp_path / "nope.json"), "--output", str(tmp_path / "r.html"))
    assert rc == 2 and err.count("\n") == 1 and "does not exist" in err


def test_timeline_marks_preemptions_and_commands_rerun():
    """Timeline points carry the preemptions so far: the chart marks each rise. A result without a recorded command
    gets one rebuilt from its settings; a recorded one is shown as it was (keys masked when recorded)."""
    from offline_bench.core.environment import mask_command
    from offline_bench.report.htmlruns import rerun_command, timeline
    from offline_bench.results.run import RunResult

    r = RunResult.load(ROOT / "docs/results/h100-run/run-1000x512-256.json.gz")
    for i, p in enumerate(r.timeline):
        p.preemptions = float(i // 100)  # one more every 100 points
    first = [p for p in r.timeline if p.repeat == 0]
    svg = timeline(r)
    assert f"preemption ({first[-1].preemptions:.0f} marked)" in svg and "not recorded" not in svg
    cmd, recorded = rerun_command(r)
    assert not recorded and cmd[:4] == ["offline-bench", "run", "--model", "preset:llama-3.1-8b"]
    assert cmd[cmd.index("--num-prompts") + 1] == "1000" and cmd[cmd.index("--input-len") + 1] == "512"
    assert mask_command(["serve-probe", "--api-key", "sk-abc", "--x", "sk-def", "--api-key=k"]) == [
        "serve-probe", "--api-key", "<key>", "--x", "<key>", "--api-key=<key>"]


def test_parallel_results_show_their_layout(capsys, tmp_path):
    out = tmp_path / "p.html"
    assert cli(capsys, "report", str(ROOT / "docs/results/2gpu-parallel"), "--output", str(out))[0] == 0
    page = out.read_text()
    dp = json.loads(read_text(ROOT / "docs/results/2gpu-parallel/h200-dp2.json.gz"))
    assert page.count("<h4>Parallel layout</h4>") == 4  # every multi-GPU result, the single-GPU one too (world 1)
    value = dp["parallel"]["output_tokens_per_s_per_gpu"]
    assert f'data-key="parallel.output_tokens_per_s_per_gpu" data-value="{value!r}"' in page


def test_a_folder_with_foreign_files_reports_the_rest(capsys, tmp_path):
    """One unreadable or foreign file never stops the report of the rest: it is listed under "Not shown" with the
    reason, and the command exits 0 (2 only when nothing at all can be reported: the first test)."""
    import shutil

    shutil.copy(ROOT / "docs/results/h100-run/run-1x128-512.json", tmp_path / "run.json")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "bench.json").write_text('{"model": "m", "request_throughput": 1.0}')
    (tmp_path / "broken.json").write_text('{"kind": "run", ')
    out = tmp_path / "r.html"
    rc, _, err = cli(capsys, "report", str(tmp_path), "--output", str(out))
    assert rc == 0, err
    page = out.read_text()
    skipped = page[page.index('id="group-skipped"'):]
    assert str(tmp_path / "theirs" / "bench.json") in skipped and "not an offline-bench result" in skipped
    assert str(tmp_path / "broken.json") in skipped and "not readable JSON" in skipped
    assert 'id="group-offline"' in page and "run-1x128-512" not in skipped  # the result itself is reported
    assert "2 input(s) not shown" in err


def test_every_committed_result_set_in_one_report(capsys, tmp_path):
    """`report docs/results`: the folder of another tool's results (vs-vllm-bench) is listed, not fatal."""
    out = tmp_path / "all.html"
    rc, _, err = cli(capsys, "report", str(ROOT / "docs/results"), "--output", str(out))
    assert rc == 0, err
    skipped = out.read_text().split('id="group-skipped"')[1]
    assert "vs-vllm-bench/h100-1000x512-256.json" in skipped


def test_no_distribution_for_a_handful_of_requests():
    from offline_bench.report.htmlruns import MIN_CDF, distributions
    from offline_bench.results.run import RunResult

    few = RunResult.load(ROOT / "docs/results/h100-run/run-10x64-512.json")
    many = RunResult.load(ROOT / "docs/results/h100-run/run-seed-x10.json")
    assert len(few.requests) < MIN_CDF <= len(many.requests)
    assert "<svg" not in distributions(few) and "no distribution drawn below 20" in distributions(few)
    assert distributions(many).count("<svg") == 2  # TTFT and E2E, then TPOT


def test_charts_of_degenerate_data_still_draw():
    """One point, equal values, zeros, a log axis: each chart is still one <svg> with its title, and no NaN."""
    from offline_bench.report import charts

    svgs = [charts.cdf({"ttft_ms": [5.0] * 30}, "ms", "equal values"),
            charts.lines({"one": [(1, 100.0)]}, "batch", "tok/s", "one point", logx=True, logy=True),
            charts.stacked_bars([("p50 request #1", [0.0, 0.0])], ["a", "b"], "ms", "zeros"),
            charts.timeline([{"t_s": 0.0, "running": 1, "waiting": 0, "kv_usage_pct": 5.0}], [0.0], "one instant"),
            charts.budget_bar([("weights", 15.0)], None, "no total"),
            charts.waterfall([("a", 10.0), ("b", 10.0)], "tok/s", "flat")]
    for svg, title in zip(svgs, ("equal values", "one point", "zeros", "one instant", "no total", "flat")):
        assert svg.startswith('<svg role="img" class="chart"') and f"<title>{title}</title>" in svg
        assert "nan" not in svg.lower() and "inf" not in svg.lower()
    many = charts.cdf({"e2e_ms": [float(i) for i in range(10_000)]}, "ms", "many")
    assert many.count(",") < 2 * 2 * charts.MAX_POINTS + 50  # thinned: at most MAX_POINTS steps drawn
