"""`report` without a browser: inputs recognised by content, the timeline's preemption marks, the command that
reruns a result, the parallel layout (the page opened in Chromium: tests/e2e)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline_bench.core.errors import BenchError
from offline_bench.report.inputs import load_items
from offline_bench.results.load import classify
from tests.helpers import ROOT, cli


def test_report_inputs_are_recognised_by_content(capsys, tmp_path):
    run = json.loads((ROOT / "docs/results/h100-run/run-1x128-512.json").read_text())
    assert classify(Path("x.json"), run)[0] == "run"
    assert classify(Path("x.json"), {"reports": [], "runs": {}})[0] == "gap"
    assert classify(Path("x.json"), {"model": "m"}) == ("skipped", "not an offline-bench result (run, sweep, phases, "
                                                                   "explain-gap, startup, plan)")
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

    r = RunResult.load(ROOT / "docs/results/h100-run/run-1000x512-256.json")
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
    dp = json.loads((ROOT / "docs/results/2gpu-parallel/h200-dp2.json").read_text())
    assert page.count("<h4>Parallel layout</h4>") == 4  # every multi-GPU result, the single-GPU one too (world 1)
    value = dp["parallel"]["output_tokens_per_s_per_gpu"]
    assert f'data-key="parallel.output_tokens_per_s_per_gpu" data-value="{value!r}"' in page
