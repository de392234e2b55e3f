"""Faults never lose a measurement: a result file that cannot be written after the work (disk full, folder gone,
no permission) leaves the results printed, the file's content in the system temp directory, one `error: cannot
write X (why): saved to Y instead` line per file, and exit status 1 -- for run's levels, predict, import,
serve-probe, sweep points and summaries, explain-gap's ladder, --html, --plot and --save-log.

A full disk is simulated for a folder: every temporary file created in it (how write_atomic writes) fails with
ENOSPC, after the up-front writability checks (their probe files still succeed: the disk fills during the run)."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from pathlib import Path

import pytest
import typer

from offline_bench.cli.terminal import OUTPUT_LOST, finish, print_results, write_file
from offline_bench.results.load import load
from offline_bench.results.run import RunResult, Unwritten, keep_file, keep_result, keep_text
from offline_bench.workloads.levels import Level, keep_level
from tests.helpers import FIXTURES, RESULTS, cli

CALIBRATION = str(RESULTS / "h100-predict" / "calibration.json.gz")
NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"
LINE = re.compile(r"error: cannot write (\S+) \(([^)]+)\): saved to (\S+) instead")


class Disk:
    """`full(folder)`: from now on nothing can be created in `folder` (or below); `spare`: the temp directory."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.spare = tmp_path / "spare-tmp"
        self.spare.mkdir()
        self.full_dirs: list[Path] = []
        self.names: tuple[str, ...] | None = None  # only files whose name starts so (None: every file)
        monkeypatch.setattr(tempfile, "tempdir", str(self.spare))
        real = tempfile.mkstemp

        def mkstemp(suffix: str | None = None, prefix: str | None = None, dir: str | None = None,  # noqa: A002
                    text: bool = False) -> tuple[int, str]:
            if dir is not None and not (prefix or "").startswith(".offline-bench-probe-") and self._full(dir, prefix):
                raise OSError(errno.ENOSPC, NO_SPACE)
            return real(suffix=suffix, prefix=prefix, dir=dir, text=text)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)

    def _full(self, folder: str | Path, prefix: str | None) -> bool:
        inside = any(Path(folder).resolve().is_relative_to(d) for d in self.full_dirs)
        return inside and (self.names is None or (prefix or "").lstrip(".").startswith(self.names))

    def full(self, folder: Path, names: tuple[str, ...] | None = None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        self.full_dirs.append(folder.resolve())
        self.names = names
        return folder

    def copies(self) -> list[Path]:
        return sorted(self.spare.glob("offline-bench-*"))


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Disk:
    return Disk(monkeypatch, tmp_path)


def _run() -> RunResult:
    return RunResult.load(FIXTURES / "results" / "run-offline.json")


def _error_lines(err: str) -> list[re.Match]:
    found = [LINE.fullmatch(line) for line in err.splitlines() if line.startswith("error: ")]
    assert all(found), err
    return found


# ---------------------------------------------------------------- the pieces


def test_keep_file_falls_back_to_the_temp_directory(disk, tmp_path):
    target = disk.full(tmp_path / "out") / "result.json"
    u = keep_text(target, '{"a": 1}')
    assert u is not None and u.path == str(target) and u.reason == NO_SPACE
    assert Path(u.saved_to).parent == disk.spare and Path(u.saved_to).name.startswith("offline-bench-result-")
    assert u.saved_to.endswith(".json") and json.loads(Path(u.saved_to).read_text()) == {"a": 1}
    assert u.line() == f"cannot write {target} ({NO_SPACE}): saved to {u.saved_to} instead"
    assert Unwritten.from_line(u.line()) == u
    assert not target.exists() and list(target.parent.iterdir()) == []  # no half file, no temp file left
    assert keep_text(tmp_path / "fine.json", "{}") is None and (tmp_path / "fine.json").read_text() == "{}"


def test_nowhere_to_keep_it_says_so(disk, tmp_path):
    disk.full(disk.spare)
    u = keep_text(disk.full(tmp_path / "out") / "r.json", "{}")
    assert u.saved_to is None and disk.copies() == []
    assert u.line() == (f"cannot write {u.path} ({NO_SPACE}), nor a copy in {disk.spare}: what was printed is all "
                        "that is left of it")
    assert Unwritten.from_line(u.line()) == Unwritten(u.path, NO_SPACE, None)


def test_a_plot_or_page_written_by_another_writer_is_kept_too(tmp_path, disk):
    def refuse_outside_tmp(p: Path) -> None:  # as savefig into a folder without permission
        if p.parent != disk.spare:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(p))
        p.write_bytes(b"\x89PNG")

    (u,) = write_file("plot", str(tmp_path / "ro" / "phases.png"), refuse_outside_tmp)
    assert u.reason == "Permission denied" and u.saved_to.endswith(".png")
    assert Path(u.saved_to).read_bytes() == b"\x89PNG"
    assert keep_file(tmp_path / "x.png", lambda p: p.write_bytes(b"ok")) is None


def test_keep_level_and_print_results_every_level_printed_then_one_line_each(disk, tmp_path, capsys):
    """run (every level) and serve-probe save each level through keep_level: a level whose file cannot be
    written is kept in the temp directory, the next level runs; print_results prints every result and `finish`
    says which files are elsewhere, after everything, and exits 1."""
    result, levels = _run(), [Level(1), Level(4)]
    out_dir = tmp_path / "out"
    out: list = []
    keep_level(out, result, str(out_dir / "r.json"), levels[0], levels)  # written: the disk fills after it
    disk.full(out_dir)
    keep_level(out, result, str(out_dir / "r.json"), levels[1], levels)
    assert [k.path for k in out] == [str(out_dir / "r-c1.json"), str(out_dir / "r-c4.json")]
    assert out[0].unwritten is None and out[0].where == out[0].path and (out_dir / "r-c1.json").exists()
    assert out[1].unwritten.reason == NO_SPACE and out[1].where == out[1].unwritten.saved_to
    assert RunResult.load(out[1].where) == result  # the measurement, whole
    capsys.readouterr()
    lost = print_results("run", "md", out)
    with pytest.raises(typer.Exit) as e:
        finish(lost)
    assert e.value.exit_code == OUTPUT_LOST == 1
    stdout, err = capsys.readouterr()
    assert stdout.count("## Throughput") == 2  # both levels printed
    assert err.splitlines() == [f"result written to {out_dir / 'r-c1.json'}",
                                f"error: cannot write {out_dir / 'r-c4.json'} ({NO_SPACE}): saved to "
                                f"{out[1].where} instead"]
    finish([])  # nothing lost: no line, no exit


def test_the_engines_log_is_kept_when_save_log_cannot_be_written(disk, tmp_path, caplog):
    """--save-log is written when the engine closes; a log that cannot be written goes to the temp directory
    (`log_unwritten`, which `run` reports with its results), and never replaces the engine's outcome."""
    from offline_bench.engine.llm import Engine

    eng = Engine.__new__(Engine)  # the log writing alone: no engine starts
    eng.save_log, eng.log_unwritten = str(disk.full(tmp_path / "logs") / "engine.log"), None
    eng._write_log("INFO engine started\n")
    assert eng.log_unwritten.path == eng.save_log and Path(eng.log_unwritten.saved_to).name.endswith(".log")
    assert Path(eng.log_unwritten.saved_to).read_text() == "INFO engine started\n"
    with caplog.at_level("ERROR", logger="offline_bench"):
        eng._tell_log_unwritten()  # what a failed start or an interrupt prints, the error being the outcome
    assert caplog.messages == [eng.log_unwritten.line()]


def test_run_prints_its_levels_and_exits_1_when_output_save_log_and_html_cannot_be_written(disk, tmp_path, capsys,
                                                                                           monkeypatch):
    """The `run` command's own path (levels, printing, --save-log, --html), its engine and measurement replaced by
    a saved result (the real round trip: tests/e2e/test_faults.py)."""
    import contextlib

    from offline_bench.measure import levels

    result = _run()
    out_dir = tmp_path / "out"

    class NoEngine:  # what run_levels needs of an engine: a console, and where the log went
        console = None
        log_unwritten = keep_text(disk.full(out_dir) / "engine.log", "the log\n")

    monkeypatch.setattr(levels, "Engine", lambda *a, **kw: contextlib.nullcontext(NoEngine()))
    monkeypatch.setattr(levels, "run_benchmark", lambda cfg, engine=None, progress=None: result)
    rc, stdout, err = cli(capsys, "run", "--max-model-len", "512", "--num-prompts", "4", "--input-len", "16",
                          "--output-len", "8", "--concurrency", "1,2", "--output", str(out_dir / "r.json"),
                          "--save-log", str(out_dir / "engine.log"), "--html", str(out_dir / "r.html"))
    assert rc == 1, err
    assert stdout.count("Throughput") == 2 and "Traceback" not in err
    lines = _error_lines(err)
    assert [m.group(1) for m in lines] == [str(out_dir / n) for n in ("r-c1.json", "r-c2.json", "engine.log",
                                                                      "r.html")]
    assert all(m.group(2) == NO_SPACE for m in lines)
    assert [RunResult.load(m.group(3)) == result for m in lines[:2]] == [True, True]
    assert Path(lines[2].group(3)).read_text() == "the log\n"
    assert Path(lines[3].group(3)).read_text().lstrip().lower().startswith("<!doctype html")
    assert list(out_dir.iterdir()) == []


# ---------------------------------------------------------------- the commands without an engine


def test_predict_output_on_a_full_disk(disk, tmp_path, capsys):
    target = tmp_path / "out" / "p.json"
    rc, stdout, err = cli(capsys, "predict", "--from", CALIBRATION, "--gpu-memory-utilization", "0.6", "--output",
                          str(target))
    assert rc == 0 and target.exists(), err  # the same command with room: written
    predicted = RunResult.load(target)
    target.unlink()
    disk.full(target.parent)
    rc, stdout2, err = cli(capsys, "predict", "--from", CALIBRATION, "--gpu-memory-utilization", "0.6", "--output",
                           str(target))
    assert rc == 1 and stdout2 == stdout  # the same table
    (m,) = _error_lines(err)
    assert err.strip().splitlines() == [m.group(0)] and m.group(1) == str(target) and not target.exists()
    kept = RunResult.load(m.group(3))
    assert kept.mode == "predicted" and kept.throughput == predicted.throughput


def test_import_on_a_full_disk_names_each_copy(disk, tmp_path, capsys):
    figs = tmp_path / "hand.yaml"
    figs.write_text("name: report\nmodel: m\nruns:\n  - {concurrency: 1, ttft_s: 0.36, output_tokens_per_s: 39.1}\n"
                    "  - {concurrency: 10, ttft_s: 0.39, output_tokens_per_s: 355}\n")
    out = disk.full(tmp_path / "imp")
    rc, stdout, err = cli(capsys, "import", str(figs), "--output-dir", str(out))
    assert rc == 1
    lines = _error_lines(err)
    assert [m.group(1) for m in lines] == [str(out / "report-c1.json"), str(out / "report-c10.json")]
    assert stdout.split() == [m.group(3) for m in lines]  # where the converted results are
    assert [RunResult.load(m.group(3)).throughput.output_tokens_per_s for m in lines] == [39.1, 355]
    assert list(out.iterdir()) == []


def test_serve_probe_saves_each_level_where_it_can(disk, tmp_path, capsys, monkeypatch):
    """serve-probe's saving (probe_levels, then the command's printing), the server replaced by a saved serving
    result: the second level's file cannot be written."""
    from offline_bench.serving import probe as probe_mod

    served = load(FIXTURES / "results" / "run-serving.json.gz")
    out = tmp_path / "out"
    calls = []

    def probe(cfg, concurrency, tokenizer=None, requests=None, floor=None):  # noqa: ANN001, ANN202
        calls.append(concurrency)
        if len(calls) == 2:
            disk.full(out)
        return served

    monkeypatch.setattr(probe_mod, "probe", probe)
    rc, stdout, err = cli(capsys, "serve-probe", "--base-url", "http://127.0.0.1:9", "--served-model-name", "m",
                          "--prompts", "prompts/seed.txt", "--concurrency", "1,4", "--output", str(out / "s.json"))
    assert rc == 1 and calls == [1, 4]
    assert stdout.count("Throughput") == 2
    assert f"result written to {out / 's-c1.json'}" in err
    (m,) = _error_lines(err)
    assert m.group(1) == str(out / "s-c4.json") and load(m.group(3)) == served


# ---------------------------------------------------------------- sweeps


SWEEP = ("sweep", "--predict-only", "--calibrate", CALIBRATION, "--gpu-memory-utilization", "0.5,0.6")


def test_sweep_point_files_that_cannot_be_written_are_reported_and_the_sweep_goes_on(disk, tmp_path, capsys):
    d = tmp_path / "sw"
    disk.full(d / "points")
    rc, stdout, err = cli(capsys, *SWEEP, "--output-dir", str(d))
    assert rc == 1, err
    assert "Traceback" not in err and "# Sweep summary" in stdout
    for key in ("gmu-0.5", "gmu-0.6"):  # each point's line, and the error line of each file at the end
        assert f"{key}: failed: cannot write {d / 'points' / key}.json ({NO_SPACE}): saved to " in err
    lines = _error_lines(err)
    assert [m.group(1) for m in lines] == [str(d / "points" / f"gmu-{g}.json") for g in ("0.5", "0.6")]
    assert [RunResult.load(m.group(3)).mode for m in lines] == ["predicted", "predicted"]
    assert json.loads((d / "summary.json").read_text())["rows"] == []  # no point on disk: resume runs them again


def test_a_point_recorded_as_failed_when_only_its_result_cannot_be_written(disk, tmp_path, capsys, monkeypatch):
    """The result file fails (a quota hit, say) but the small failure record fits: the point is a failed point
    naming the copy, shown in the summary, and run again by --retry-failed."""
    d = tmp_path / "sw"
    real_save = RunResult.save
    refused = []

    def save_once(self, path):  # noqa: ANN001, ANN202
        if Path(path).parent == d / "points" and not refused:
            refused.append(path)
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        return real_save(self, path)

    monkeypatch.setattr(RunResult, "save", save_once)  # the first point's result only
    rc, stdout, err = cli(capsys, *SWEEP, "--output-dir", str(d))
    assert rc == 1, err
    (m,) = _error_lines(err)
    failed = json.loads((d / "points" / "gmu-0.5.json").read_text())
    assert failed["status"] == "failed" and failed["error"] == m.group(0).removeprefix("error: ")
    assert "gmu-0.5: failed: cannot write" in err and "gmu-0.6: ok" in err
    assert [r["status"] for r in json.loads((d / "summary.json").read_text())["rows"]] == ["failed", "ok"]
    rc, _, err = cli(capsys, *SWEEP, "--output-dir", str(d), "--retry-failed")
    assert rc == 0 and "gmu-0.5: ok" in err and "gmu-0.6: skipped (done)" in err


def test_a_sweep_whose_summary_cannot_be_written_still_prints_it(disk, tmp_path, capsys):
    d = tmp_path / "sw"
    rc, stdout, _ = cli(capsys, *SWEEP, "--output-dir", str(d))
    assert rc == 0
    disk.full(d, names=("summary",))
    rc, again, err = cli(capsys, "sweep", "--report", str(d))
    assert rc == 1 and again.splitlines()[:8] == stdout.splitlines()[:8]
    (m,) = _error_lines(err)
    assert m.group(1) == str(d / "summary.json") and load(m.group(3)).rows
    rc, _, err = cli(capsys, *SWEEP, "--output-dir", str(d), "--no-resume")  # every point: summary not written
    assert rc == 1 and err.count("ok (summary not written: No space left on device)") == 2
    assert [m.group(1) for m in _error_lines(err)] == [str(d / "summary.json")]


def test_a_sweep_that_cannot_write_its_definition_stops_before_any_point(disk, tmp_path, capsys):
    d = tmp_path / "sw"
    disk.full(d, names=("sweep.json",))
    rc, _, err = cli(capsys, *SWEEP, "--output-dir", str(d))
    assert rc == 2 and err.strip().splitlines()[-1] == (f"error: cannot write {d / 'sweep.json'} ({NO_SPACE}): "
                                                        "choose another --output-dir")


# ---------------------------------------------------------------- pages and keep_result


def test_compare_prints_its_table_when_html_cannot_be_written(disk, tmp_path, capsys):
    runs = [str(RESULTS / "h100-run" / n) for n in ("run-1000x512-256.json.gz", "run-10x64-512.json")]
    html = disk.full(tmp_path / "pages") / "c.html"
    rc, stdout, err = cli(capsys, "compare", *runs, "--html", str(html))
    assert rc == 1 and "output_tokens_per_s" in stdout
    (m,) = _error_lines(err)
    assert m.group(1) == str(html) and "<html" in Path(m.group(3)).read_text().lower()


def test_keep_result_without_a_path_writes_nothing(disk):
    kept = keep_result(_run(), None)
    assert kept.path is None and kept.unwritten is None and kept.where is None and disk.copies() == []
