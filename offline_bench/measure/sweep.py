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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offline_bench.analysis.sweep import calibrated, prediction_overrides, summarize
from offline_bench.core.config import EngineConfig, RunConfig, parse_bytes
from offline_bench.core.errors import BenchError
from offline_bench.core.procs import child_error, fail_child, kill_group, spawn
from offline_bench.engine.llm import Engine
from offline_bench.measure.levels import run_one
from offline_bench.measure.runner import preflight, run_benchmark
from offline_bench.predict import replay as predict_mod
from offline_bench.results.run import write_atomic
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

__all__ = ["SWEEPABLE", "SweepSpec", "SweepSummary", "build_spec", "parse_list", "point_key", "run_sweep"]


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
              on_point: Callable[[int, int, str, str], None] | None = None) -> SweepSummary:
    """Run every point not already finished; returns the summary (also written to DIR)."""
    out = Path(out_dir)
    points_dir = out / "points"
    points_dir.mkdir(parents=True, exist_ok=True)
    spec_file = out / "sweep.json"
    if spec_file.exists() and resume:
        try:
            old = SweepSpec.model_validate_json(spec_file.read_text())
        except ValueError:
            raise BenchError(f"{spec_file} is not a sweep definition: use another --output-dir") from None
        if old.comparable() != spec.comparable():
            raise BenchError(f"{out} holds a sweep with other settings or workload: use another --output-dir, "
                             "or --no-resume to start it over")
    write_atomic(spec_file, spec.model_dump_json(indent=2))
    # on Ctrl-C (or SIGTERM, which the CLI turns into one) the running point's worker and engine are killed
    _run_points(spec, spec.points(), points_dir, out, resume, retry_failed, on_point)
    return summarize(out)  # the CLI adds the plots (report.plots.write_summary)


def _run_points(spec: SweepSpec, points: list[dict[str, Any]], points_dir: Path, out: Path, resume: bool,
                retry_failed: bool, on_point: Callable[[int, int, str, str], None] | None) -> None:
    worker = None if spec.predict_only or spec.fresh_process else _Worker(points_dir / ".worker.log")
    try:
        _each_point(spec, points, points_dir, out, resume, retry_failed, on_point, worker)
    finally:  # also on Ctrl-C or SIGTERM: the worker and its engine go with the sweep
        if worker is not None:
            worker.close()


def _each_point(spec: SweepSpec, points: list[dict[str, Any]], points_dir: Path, out: Path, resume: bool,
                retry_failed: bool, on_point: Callable[[int, int, str, str], None] | None,
                worker: _Worker | None) -> None:
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
            _predict_point(spec, settings, path)
        else:
            _run_point(spec, settings, path, worker)
        summarize(out)
        if on_point:
            on_point(n, len(points), key, _outcome(path))


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


def _record_failure(path: Path, settings: dict[str, Any], error: str, t0: float) -> None:
    log = engine_log_path(path)
    FailedPoint(settings=settings, error=error, elapsed_s=round(time.time() - t0, 2),
                engine_log=log.name if log.exists() else None).save(path)


def _add_point_time(path: Path, t0: float) -> None:
    """The parent's wall time for the whole point (hand-over to the result on disk) into the breakdown."""
    data = json.loads(path.read_text())
    data.setdefault("startup", {}).setdefault("breakdown", {})["point_s"] = round(time.time() - t0, 3)
    write_atomic(path, json.dumps(data, indent=2))


def _run_point(spec: SweepSpec, settings: dict[str, Any], path: Path, worker: _Worker | None) -> None:
    """One point in a long-lived worker (vLLM imported once; a fresh worker after any failure) or, with
    --fresh-process-per-point, in a process of its own; failures are recorded."""
    cfg = point_config(spec, settings)
    t0 = time.time()
    engine_log_path(path).unlink(missing_ok=True)  # a retried point's old log is not this run's
    error = worker.run(cfg, path, spec.timeout_per_point_s) if worker else _run_fresh(cfg, path, spec)
    if error is not None:
        _record_failure(path, settings, error, t0)
    else:
        _add_point_time(path, t0)


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

    def run(self, cfg: RunConfig, path: Path, timeout: float | None) -> str | None:
        if self.proc is None or self.proc.poll() is not None:
            with open(self.log, "w") as log:  # the worker's own output: read back only when it dies
                self.proc = spawn([sys.executable, "-m", "offline_bench.measure.sweep", "--worker"], stdout=log,
                                  stderr=subprocess.STDOUT)
        error_file = path.with_name(path.name + ".error")
        error_file.unlink(missing_ok=True)
        self.proc.stdin.write(json.dumps({"config": cfg.model_dump(mode="json"), "path": str(path),
                                          "sent_at": time.time()}) + "\n")
        self.proc.stdin.flush()
        deadline = None if timeout is None else time.time() + timeout
        while True:
            if path.exists():
                return None
            if error_file.exists() and self.proc.poll() is not None:
                message = error_file.read_text().strip()
                error_file.unlink()
                self.close()
                return message
            if self.proc.poll() is not None:  # died without a word: its output says why
                status = self.proc.returncode
                self.close()
                return child_error(self.log.read_text(errors="replace")[-2000:], status)
            if deadline is not None and time.time() > deadline:
                self.close()
                return f"timed out after {timeout:g} s (--timeout-per-point)"
            time.sleep(WORKER_POLL_S)

    def close(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)
            self.proc = None


def _predict_point(spec: SweepSpec, settings: dict[str, Any], path: Path) -> None:
    """--predict-only: the point predicted from the calibration run, in-process (no engine)."""
    t0 = time.time()
    try:
        result = predict_mod.predict(calibrated(spec), prediction_overrides(spec, settings),
                                     num_prompts=spec.base.workload.num_prompts)
    except BenchError as e:
        FailedPoint(settings=settings, error=str(e), elapsed_s=round(time.time() - t0, 3)).save(path)
        return
    result.save(path)


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
    result.save(path)


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
            write_atomic(job["path"] + ".error", message + "\n")
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
