"""`sweep`: run a grid of engine settings, each point in a fresh process, resumable, with summary and analysis.

Layout of DIR:
  sweep.json            the sweep's definition (base settings, grid, workload); a rerun must match it
  points/<key>.json     one per finished point: a `run` result, or {"status": "failed", "error": ...}
  summary.json/.md/.csv one row per point + analysis (rewritten after every point; `sweepreport`)
  plots/*.png           (`plots`)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offline_bench.analysis.sweep import analyze, calibrated, load_rows, prediction_overrides, summarize
from offline_bench.core.config import EngineConfig, RunConfig, parse_bytes
from offline_bench.core.errors import BenchError
from offline_bench.core.procs import child_error, fail_child, kill_group, spawn
from offline_bench.engine.llm import Engine
from offline_bench.measure.levels import run_one
from offline_bench.measure.runner import preflight, run_benchmark
from offline_bench.predict import replay as predict_mod
from offline_bench.results.run import Unwritten, keep_file, temp_copy, write_atomic
from offline_bench.results.sweep import (
    SWEEPABLE,
    FailedPoint,
    SweepSpec,
    SweepSummary,
    point_config,
    point_key,
    set_axis,
)
from offline_bench.workloads.levels import parse_rates

__all__ = ["SWEEPABLE", "SweepSpec", "SweepSummary", "build_spec", "parse_list", "point_key", "run_sweep",
           "written_summary"]


def parse_list(field: str, text: str) -> list[Any]:
    """'0.5,0.7' -> [0.5, 0.7] typed like the EngineConfig field (--request-rate: numbers > 0 or inf)."""
    if field == "request_rate":
        return _parse_rates(text)
    kind = EngineConfig.model_fields[field].annotation
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise BenchError(f"--{field.replace('_', '-')} needs at least one value")
    out: list[Any] = []
    for item in items:
        try:
            if field == "kv_cache_memory_bytes":
                out.append(parse_bytes(item))
            elif "float" in str(kind):
                out.append(float(item))
            elif "int" in str(kind):
                out.append(int(item))
            else:
                out.append(item)
        except ValueError:
            raise BenchError(f"--{field.replace('_', '-')}: '{item}' is not a number") from None
    if len(set(map(str, out))) != len(out):
        raise BenchError(f"--{field.replace('_', '-')} lists a value twice")
    return out


def _parse_rates(text: str) -> list[Any]:
    out: list[Any] = ["inf" if r is None else r for r in parse_rates(text)]
    if len(set(map(str, out))) != len(out):
        raise BenchError("--request-rate lists a value twice")
    return out


def build_spec(base: RunConfig, lists: dict[str, str], timeout_per_point_s: float | None = None,
               target_concurrency: int | None = None, knee_tolerance: float = 0.05) -> SweepSpec:
    """Comma lists per engine field -> a grid (fields with several values) over `base` (single values set)."""
    parsed = {k: parse_list(k, v) for k, v in lists.items()}
    grid = {k: v for k, v in parsed.items() if len(v) > 1}
    for k, v in parsed.items():
        if len(v) == 1:
            set_axis(base, k, v[0])
    spec = SweepSpec(base=base, grid=grid, timeout_per_point_s=timeout_per_point_s,
                     target_concurrency=target_concurrency, knee_tolerance=knee_tolerance)
    for settings in spec.points():  # every point's settings pass the same checks as a single run's
        point_config(spec, settings).engine.validate_values()
    return spec


def run_sweep(spec: SweepSpec, out_dir: str | Path, resume: bool = True, retry_failed: bool = False,
              on_point: Callable[[int, int, str, str], None] | None = None,
              lost: list[Unwritten] | None = None) -> SweepSummary:
    """Run every point not already finished; returns the summary (also written to DIR). A point whose file cannot
    be written is recorded as failed where that can be written, said in its `on_point` line, its result kept in
    the temp directory, and added to `lost`; the sweep goes on."""
    out = Path(out_dir)
    points_dir = out / "points"
    spec_file = out / "sweep.json"
    if spec_file.exists() and resume:
        try:
            old = SweepSpec.model_validate_json(spec_file.read_text())
        except ValueError:
            raise BenchError(f"{spec_file} is not a sweep definition: use another --output-dir") from None
        if old.comparable() != spec.comparable():
            raise BenchError(f"{out} holds a sweep with other settings or workload: use another --output-dir, "
                             "or --no-resume to start it over")
    try:
        points_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(spec_file, spec.model_dump_json(indent=2))
    except OSError as e:  # before any point ran: nothing measured is lost
        raise BenchError(f"cannot write {spec_file} ({e.strerror or e}): choose another --output-dir") from None
    # on Ctrl-C (or SIGTERM, which the CLI turns into one) the running point's worker and engine are killed
    _run_points(spec, spec.points(), points_dir, out, (resume, retry_failed), on_point,
                lost if lost is not None else [])
    return written_summary(out, summarize)[0]  # the CLI adds the plots (report.plots.write_summary)


def written_summary(out_dir: str | Path, write: Callable[[str | Path], SweepSummary] = summarize
                    ) -> tuple[SweepSummary, list[Unwritten]]:
    """`write(DIR)`: DIR's summary, written there (`summarize`, or with its plots `report.plots.write_summary`).
    When DIR cannot take it, the summary is built from the points all the same, its JSON kept in the temp
    directory, and [what was not written] comes with it (`sweep --report DIR` writes the files later)."""
    try:
        return write(out_dir), []
    except OSError as e:
        out = Path(out_dir)
        spec, rows = load_rows(out)
        summary = SweepSummary(spec=spec, rows=rows, analysis=analyze(spec, rows))
        text = summary.model_dump_json(indent=2)
        return summary, [Unwritten(str(out / "summary.json"), e.strerror or str(e),
                                   temp_copy(out / "summary.json", lambda p: write_atomic(p, text)))]


def run_configs(items: list[tuple[RunConfig, Path]], timeout_s: float | None = None,
                on_point: Callable[[int, int, str, str], None] | None = None) -> list[str | None]:
    """Runs outside a grid (tune --verify's settings) the way a sweep runs its points: one after another in one
    long-lived worker, a fresh one after a failure, each result written to its path. Each run's error, or None."""
    worker = _Worker(items[0][1].parent / ".worker.log") if items else None
    errors: list[str | None] = []
    try:
        for n, (cfg, path) in enumerate(items, 1):
            if on_point:
                on_point(n, len(items), path.stem, "running")
            _unlink(path)
            errors.append(worker.run(cfg, path, timeout_s) if worker else None)
            if on_point:
                on_point(n, len(items), path.stem, "ok" if errors[-1] is None else f"failed: {errors[-1]}")
    finally:  # also on Ctrl-C or SIGTERM: the worker and its engine go with it
        if worker is not None:
            worker.close()
    return errors


def _run_points(spec: SweepSpec, points: list[dict[str, Any]], points_dir: Path, out: Path,
                resume: tuple[bool, bool], on_point: Callable[[int, int, str, str], None] | None,
                lost: list[Unwritten]) -> None:
    worker = None if spec.predict_only or spec.fresh_process else _Worker(points_dir / ".worker.log")
    try:
        _each_point(spec, points, points_dir, out, resume, on_point, worker, lost)
    finally:  # also on Ctrl-C or SIGTERM: the worker and its engine go with the sweep
        if worker is not None:
            worker.close()


def _each_point(spec: SweepSpec, points: list[dict[str, Any]], points_dir: Path, out: Path,
                resume_retry: tuple[bool, bool], on_point: Callable[[int, int, str, str], None] | None,
                worker: _Worker | None, lost: list[Unwritten]) -> None:
    resume, retry_failed = resume_retry
    for n, settings in enumerate(points, 1):
        key = point_key(settings)
        path = points_dir / f"{key}.json"
        if resume and path.exists():
            if not (retry_failed and _is_failure(path)):
                if on_point:
                    on_point(n, len(points), key, "skipped (done)")
                continue
        if on_point:
            on_point(n, len(points), key, "predicting" if spec.predict_only else "running")
        if spec.predict_only:
            unsaved = _predict_point(spec, settings, path, lost)
        else:
            unsaved = _run_point(spec, settings, path, worker, lost)
        state = _outcome(path) if unsaved is None else unsaved
        try:
            summarize(out)
        except OSError as e:  # the points are what counts: the summary is written again after the next one
            state += f" (summary not written: {e.strerror or e})"
        if on_point:
            on_point(n, len(points), key, state)


def _outcome(path: Path) -> str:
    """'ok', or 'failed: ERROR' naming the engine log the point kept (an unreadable point counts as failed)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return "failed"
    if record.get("status") != "failed":
        return "ok"
    where = f" (engine log: points/{record['engine_log']})" if record.get("engine_log") else ""
    return f"failed: {record.get('error', '')}{where}"


def _is_failure(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("status") == "failed"
    except (OSError, json.JSONDecodeError):
        return True


SENT_AT_ENV = "OFFLINE_BENCH_POINT_SENT_AT"  # when the parent handed a fresh child its point (time.time())
WORKER_POLL_S = 0.2


def engine_log_path(path: str | Path) -> Path:
    """Where a point's engine log is kept (points/KEY.log), however the point ends: what a failed start left in
    the log (the step that ran out of memory, say) is there to read after the sweep."""
    return Path(path).with_suffix(".log")


def _record_failure(path: Path, settings: dict[str, Any], error: str, t0: float,
                    lost: list[Unwritten]) -> str | None:
    """points/KEY.json says the point failed, and why; when that file cannot be written either, the line of the
    point says so (returned) and `lost` has it."""
    log = engine_log_path(path)
    failed = FailedPoint(settings=settings, error=error, elapsed_s=round(time.time() - t0, 2),
                         engine_log=log.name if log.exists() else None)
    unwritten = keep_file(path, failed.save)
    if unwritten is None:
        return None
    lost.append(unwritten)
    return f"failed: {error} (not recorded: {unwritten.line()})"


def _save_point(path: Path, write: Callable[[Path], None], settings: dict[str, Any], t0: float,
                lost: list[Unwritten]) -> str | None:
    """A finished point's file; one that cannot be written is kept in the temp directory and the point recorded
    as failed (its error names the copy). Returns the point's line when not even that could be written."""
    unwritten = keep_file(path, write)
    if unwritten is None:
        return None
    lost.append(unwritten)
    try:
        FailedPoint(settings=settings, error=unwritten.line(), elapsed_s=round(time.time() - t0, 3)).save(path)
    except OSError:
        return f"failed: {unwritten.line()}"
    return None


def _add_point_time(path: Path, t0: float) -> str | None:
    """The parent's wall time for the whole point (hand-over to the result on disk) into the breakdown; a point
    whose file cannot take it keeps its result as written (returns why, for the point's line)."""
    data = json.loads(path.read_text())
    data.setdefault("startup", {}).setdefault("breakdown", {})["point_s"] = round(time.time() - t0, 3)
    try:
        write_atomic(path, json.dumps(data, indent=2))
    except OSError as e:
        return f"point_s not recorded: {e.strerror or e}"
    return None


def _run_point(spec: SweepSpec, settings: dict[str, Any], path: Path, worker: _Worker | None,
               lost: list[Unwritten]) -> str | None:
    """One point in a long-lived worker (vLLM imported once; a fresh worker after any failure) or, with
    --fresh-process-per-point, in a process of its own; failures are recorded. Returns the point's line when
    its file could not be written at all."""
    cfg = point_config(spec, settings)
    t0 = time.time()
    _unlink(engine_log_path(path))  # a retried point's old log is not this run's
    error = worker.run(cfg, path, spec.timeout_per_point_s) if worker else _run_fresh(cfg, path, spec)
    unwritten = Unwritten.from_line(error or "")
    if unwritten is not None and unwritten.path == str(path):  # measured, but its file could not be written
        lost.append(unwritten)
    if error is not None:
        return _record_failure(path, settings, error, t0, lost)
    note = _add_point_time(path, t0)
    return None if note is None else f"ok ({note})"


def _run_fresh(cfg: RunConfig, path: Path, spec: SweepSpec) -> str | None:
    proc = spawn([sys.executable, "-m", "offline_bench.measure.sweep", "--point", str(path)],
                 env={**os.environ, SENT_AT_ENV: repr(time.time())})
    try:
        _, err = proc.communicate(cfg.model_dump_json(), timeout=spec.timeout_per_point_s)
        if proc.returncode != 0 or not path.exists():
            return child_error(err, proc.returncode)
    except subprocess.TimeoutExpired:
        return f"timed out after {spec.timeout_per_point_s:g} s (--timeout-per-point)"
    finally:  # also on Ctrl-C; and engine processes a crashed point left behind go with its group
        kill_group(proc)
    return None


class _Worker:
    """A long-lived child running points one after another: Python, vLLM and this package imported once. It gets
    a point as one JSON line on stdin and answers with the result file, or `<point>.error` and its exit; a
    failed, crashed or hung point's worker is killed with its engine processes, and the next point gets a fresh
    one, so nothing a failure left behind reaches another point."""

    def __init__(self, log: Path) -> None:
        self.log, self.proc = log, None

    def _start(self) -> None:
        try:
            log = open(self.log, "w")  # the worker's own output: read back only when it dies
        except OSError:  # the sweep's folder cannot take it: the temp directory can
            fd, tmp = tempfile.mkstemp(prefix="offline-bench-worker-", suffix=".log")
            self.log, log = Path(tmp), os.fdopen(fd, "w")
        with log:
            self.proc = spawn([sys.executable, "-m", "offline_bench.measure.sweep", "--worker"], stdout=log,
                              stderr=subprocess.STDOUT)

    def run(self, cfg: RunConfig, path: Path, timeout: float | None) -> str | None:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        # where the worker says why a point failed: beside the point, or (that folder full) in the temp directory
        error_files = [path.with_name(path.name + ".error"), _fallback_error_file(path)]
        for f in error_files:
            _unlink(f)
        self.proc.stdin.write(json.dumps({"config": cfg.model_dump(mode="json"), "path": str(path),
                                          "sent_at": time.time(), "error_files": list(map(str, error_files))})
                              + "\n")
        self.proc.stdin.flush()
        deadline = None if timeout is None else time.time() + timeout
        while True:
            if path.exists():
                return None
            if self.proc.poll() is not None:  # it ended: the point failed (the result may have come just now)
                return None if path.exists() else self._why(error_files)
            if deadline is not None and time.time() > deadline:
                self.close()
                return f"timed out after {timeout:g} s (--timeout-per-point)"
            time.sleep(WORKER_POLL_S)

    def _why(self, error_files: list[Path]) -> str:
        """Why the ended worker's point failed: its error file, else the end of its output."""
        status = self.proc.returncode
        self.close()
        said = next((f for f in error_files if f.is_file()), None)
        if said is not None:
            message = said.read_text().strip()
            _unlink(said)
            return message
        try:
            return child_error(self.log.read_text(errors="replace")[-2000:], status)
        except OSError:
            return f"the worker ended (exit status {status}) and its output cannot be read"

    def close(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)
            self.proc = None


def _fallback_error_file(path: Path) -> Path:
    """A point's error file in the temp directory, named after this sweep's process and the point."""
    return Path(tempfile.gettempdir()) / f"offline-bench-{os.getpid()}-{path.name}.error"


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # its folder is gone (a file in its place): nothing to remove
        pass


def _predict_point(spec: SweepSpec, settings: dict[str, Any], path: Path, lost: list[Unwritten]) -> str | None:
    """--predict-only: the point predicted from the calibration run, in-process (no engine). Returns the point's
    line when its file could not be written at all."""
    t0 = time.time()
    try:
        result = predict_mod.predict(calibrated(spec), prediction_overrides(spec, settings),
                                     num_prompts=spec.base.workload.num_prompts)
    except BenchError as e:
        return _record_failure(path, settings, str(e), t0, lost)
    return _save_point(path, result.save, settings, t0, lost)


def run_point_here(cfg: RunConfig, path: str, sent_at: float | None) -> None:
    """Run one point in this process and write its result with the time breakdown of the point."""
    handed_s = None if sent_at is None else max(0.0, time.time() - sent_at)
    if cfg.engine.data_parallel_size > 1:
        result, close_s = run_one(cfg), None
    else:
        preflight(cfg)
        engine = Engine(cfg.engine, echo_log=cfg.verbose, save_log=str(engine_log_path(path)))
        try:
            result = run_benchmark(cfg, engine=engine)
        finally:
            t = time.perf_counter()
            engine.close()
            close_s = time.perf_counter() - t
    result.startup["breakdown"] = {"handover_s": None if handed_s is None else round(handed_s, 3),
                                   "close_s": None if close_s is None else round(close_s, 3)}
    unwritten = keep_file(path, result.save)
    if unwritten is not None:  # the point fails, its error naming the copy of the result
        raise BenchError(unwritten.line())


def _point_main(path: str) -> None:
    """Child side (--fresh-process-per-point): read a RunConfig on stdin, run it, write the result atomically."""
    cfg = RunConfig.model_validate_json(sys.stdin.read())
    sent = os.environ.get(SENT_AT_ENV)
    try:
        run_point_here(cfg, path, float(sent) if sent else None)
    except BenchError as e:
        fail_child(str(e))


def _worker_main() -> None:
    """Worker side: one point per stdin line; a failure is written to `<point>.error` and ends the worker."""
    for line in sys.stdin:
        job = json.loads(line)
        try:
            run_point_here(RunConfig.model_validate(job["config"]), job["path"], job["sent_at"])
        except Exception as e:  # noqa: BLE001 - any failure is the point's, and ends this worker
            message = str(e) if isinstance(e, BenchError) else f"{type(e).__name__}: {e}"
            print(f"error: {message}", file=sys.stderr, flush=True)  # the end of the worker's log, at worst
            for error_file in job.get("error_files") or [job["path"] + ".error"]:
                try:
                    write_atomic(error_file, message + "\n")
                    break
                except OSError:  # that folder is full: the next place
                    continue
            sys.exit(2)


if __name__ == "__main__":  # the per-point child process
    if len(sys.argv) == 3 and sys.argv[1] == "--point":
        _point_main(sys.argv[2])
    elif sys.argv[1:] == ["--worker"]:
        _worker_main()
    else:
        print("usage: python -m offline_bench.measure.sweep --point OUT.json  (RunConfig JSON on stdin)",
              file=sys.stderr)
        sys.exit(2)
