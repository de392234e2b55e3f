"""Every usage error and bad input: one line naming the fix (or typer's usage message), the right exit status,
no traceback, nothing written, and no engine started for what can be checked before one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from offline_bench.analysis.compare import Labeled, mismatches
from offline_bench.analysis.compare import table as compare_table
from offline_bench.core.environment import has_cuda
from offline_bench.results.run import RunResult
from tests.conftest import KV_ARGS, ROOT, run_cli, wait_for_engine, wait_gone

RESULTS = ROOT / "docs" / "results"


def one_error_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr[-2000:]
    return lines[0]


# ---------------------------------------------------------------- usage errors: typer's message, status 2

@pytest.mark.parametrize("args,message", [
    (["runn"], "Error: No such command 'runn'."),
    (["run", "--no-such-option"], "Error: No such option: --no-such-option"),
    (["compare"], "Error: Missing argument 'results'."),
    (["run", "--gpu-memory-utilization", "abc"], "Error: Invalid value for '--gpu-memory-utilization'"),
])
def test_usage_errors_exit_2_with_usage(args, message):
    p = run_cli(*args, timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.stderr.startswith("Usage: offline-bench") and message in p.stderr, p.stderr


def _as_from_a_terminal() -> None:
    """A job started in the background of a shell (CI's, say) inherits SIGINT ignored; a terminal's does not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.engine
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_exits_130_keeps_the_log_and_leaves_no_engine(tmp_path, sig):
    """Ctrl-C, or SIGTERM as `timeout` and schedulers send it: the engine is shut down and --save-log holds the
    log so far (a hung start can be read afterwards)."""
    log = tmp_path / "engine.log"
    proc = subprocess.Popen([sys.executable, "-m", "offline_bench", "run", *KV_ARGS, "--max-model-len", "512",
                             "--num-prompts", "2000", "--input-len", "64", "--output-len", "64",
                             "--output", str(tmp_path / "r.json"), "--save-log", str(log)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_from_a_terminal)
    engine = wait_for_engine(proc.pid)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == ("interrupted (results already written are kept; a sweep resumes "
                                            "where it stopped)")
    assert "Traceback" not in err
    assert wait_gone(engine) == [], "engine processes outlived the interrupted run"
    assert "INFO" in log.read_text()  # vLLM's own lines, up to the interrupt


# ---------------------------------------------------------------- bad input: one `error:` line, status 2

def _model_dir(tmp_path: Path, config: object) -> str:
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config) if not isinstance(config, str) else config)
    return str(d)


TINY = json.loads((ROOT / "offline_bench" / "model" / "configs" / "tiny-llama" / "config.json").read_text())


@pytest.mark.parametrize("config,message", [
    ({k: v for k, v in TINY.items() if k != "hidden_size"}, "is not a usable model config (it has no "
                                                            "'hidden_size'): give a complete Hugging Face config.json"),
    ([1, 2], "is not a usable model config (a config must be a JSON object, not list)"),
    ({**TINY, "num_hidden_layers": "two"}, "'num_hidden_layers' must be a positive integer, got 'two'"),
    ("{not json", "is not valid JSON (Expecting property name enclosed in double quotes at line 1): repair it"),
])
def test_bad_model_config(tmp_path, config, message):
    line = one_error_line(run_cli("run", "--model", _model_dir(tmp_path, config), timeout=60))
    assert message in line


def test_lengths_checked_before_the_engine_starts(tmp_path):
    line = one_error_line(run_cli("run", "--input-len", "512", "--max-model-len", "256", timeout=60))
    # the early check's message (the engine-time check says "request N needs ...")
    assert line == ("error: synthetic requests need up to 512 prompt + 128 output tokens, more than --max-model-len "
                    "256: raise --max-model-len or lower --input-len/--output-len")
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "hi", "output_len": 600}\n')
    line = one_error_line(run_cli("run", "--prompts", str(f), "--max-model-len", "512", timeout=60))
    assert "ask for 600 output tokens, not fewer than --max-model-len 512" in line


def test_kv_cache_smaller_than_one_request_before_the_engine_starts():
    line = one_error_line(run_cli("run", "--kv-cache-memory-bytes", "1MiB", "--max-model-len", "1024", timeout=60))
    assert line == ("error: not enough memory for the KV cache: --kv-cache-memory-bytes 1048576 holds 512 tokens, "
                    "fewer than one request of max_model_len 1024: give at least 2097152 (2.0 MiB) or lower "
                    "--max-model-len")


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory nobody can write in, root included (chmod alone does not stop root: chattr +i does)."""
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    immutable = subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0
    try:
        (d / ".probe").touch()
        (d / ".probe").unlink()
        pytest.fail("could not make a read-only directory here (chmod 555 and chattr +i both failed)")
    except OSError:
        pass
    yield d
    if immutable:
        subprocess.run(["chattr", "-i", str(d)], check=True)
    d.chmod(0o755)


@pytest.mark.parametrize("args,flag", [
    (["run", "--output", "{ro}/r.json"], "--output {ro}/r.json"),
    (["run", "--save-log", "{ro}/e.log"], "--save-log {ro}/e.log"),
    (["sweep", "--output-dir", "{ro}/sw", "--max-model-len", "256,512"], "--output-dir {ro}/sw"),
    (["phases", "--plot", "{ro}/p.png"], "--plot {ro}/p.png"),
    (["import", "docs/results/h100-run/run-1x128-512.json", "--output-dir", "{ro}"], "--output-dir {ro}"),
])
def test_unwritable_destination_before_the_engine_starts(readonly_dir, args, flag):
    ro = str(readonly_dir)
    line = one_error_line(run_cli(*[a.format(ro=ro) for a in args], timeout=60))
    assert line.startswith(f"error: {flag.format(ro=ro)}: cannot write in {ro} (")
    assert line.endswith("): choose a writable location")


@pytest.mark.parametrize("args,message", [
    (["serve-probe", "--base-url", "notaurl", "--served-model-name", "x"],
     "error: --base-url 'notaurl' is not an http(s) URL: give the server's root, e.g. http://127.0.0.1:8000"),
    (["serve-probe", "--base-url", "http://127.0.0.1:port", "--served-model-name", "x"],
     "error: --base-url 'http://127.0.0.1:port' is not an http(s) URL"),
    (["startup", "/dev/null"], "error: '/dev/null' is empty: capture the engine's output"),
    (["startup", "README.md"], "error: found no vLLM start-up lines in 'README.md': pass the log of `vllm serve`"),
    (["startup", "docs"], "error: log file 'docs' is a directory: pass a vLLM log file, or - for standard input"),
    (["run", "--prompts", "prompts"], "error: prompt file 'prompts' is a directory: pass an existing .txt or .jsonl"),
    (["run", "--gpu-memory-utilization", "0.1", "--engine-arg", "gpu_memory_utilization=0.5"],
     "error: --engine-arg gpu_memory_utilization=0.5 conflicts with --gpu-memory-utilization 0.1: give it once"),
    (["run", "--engine-arg", "gpu_memory_utilization=2"], "error: --gpu-memory-utilization 2 is outside (0, 1]"),
    (["run", "--gpu-memory-utilization", "0.5", "--kv-cache-memory-bytes", "64MiB"],
     "error: --gpu-memory-utilization and --kv-cache-memory-bytes both size the KV cache: give one"),
    (["run", "--kv-cache-memory-bytes", "lots"], "error: --kv-cache-memory-bytes 'lots' is not a size"),
    (["compare", "README.md"], "error: cannot read result 'README.md'"),
    (["sweep", "--max-model-len", "256,512"], "error: give --output-dir DIR (or --report DIR"),
    (["roofline", "--format", "csv"], "error: --format csv is not one of table, md, json"),
    (["presets", "--format", "xml"], "error: --format xml is not one of table, md, json"),
    (["phases", "--format", "csv"], "error: --format csv is not one of table, md, json"),
    (["explain-gap", "--format", "json"], "error: --format json is not one of table, md"),
    (["phases", "--batch-sizes", "0,4"], "error: --batch-sizes takes a comma list of integers >= 1"),
])
def test_bad_input_one_line(args, message):
    assert one_error_line(run_cli(*args, timeout=60)).startswith(message)


@pytest.mark.skipif(has_cuda(), reason="a GPU is visible here: --measure-gpu would measure it")
def test_measure_gpu_without_a_gpu_fails_before_the_engine_starts():
    # the line of the check before the engine (the measurement itself would say it only after a start)
    line = one_error_line(run_cli("phases", "--measure-gpu", "--batch-sizes", "1", timeout=60))
    assert line == ("error: --measure-gpu needs a CUDA GPU visible to this process: leave it out here, or give "
                    "--gpu NAME for datasheet ceilings")


@pytest.mark.parametrize("run,message", [
    ({"concurrency": 1, "ttft_ms": "fast"}, "runs[1]: ttft_ms must be a number, got 'fast'"),
    ({"concurrency": -3, "ttft_ms": 20}, "runs[1]: concurrency must be a positive integer, got -3"),
    ({"concurrency": 4, "num_prompts": 100}, "runs[1] gives no figures: add at least one of ttft_ms"),
    ({"concurrency": 1, "output_tokens_per_s": -5.0}, "runs[1]: output_tokens_per_s must not be negative"),
])
def test_import_hand_figures_checked(tmp_path, run, message):
    f = tmp_path / "figs.json"
    f.write_text(json.dumps({"name": "x", "runs": [run]}))
    line = one_error_line(run_cli("import", str(f), "--output-dir", str(tmp_path / "out"), timeout=60))
    assert message in line
    assert not (tmp_path / "out").exists()


def test_gzipped_results_are_read_and_a_cut_one_gets_one_line(tmp_path):
    """Results may be kept gzipped (docs/results does): `compare` reads them; a cut-off one is one line."""
    seq = RESULTS / "ray-2node" / "h200-seq" / "pass2"
    good = [str(seq / "tp2-mp-noca.json.gz"), str(seq / "tp2-ray.json.gz")]
    result = run_cli("compare", *good, "--format", "csv", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "tp2-ray [offline]" in result.stdout  # named without .json.gz
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes((seq / "tp2-ray.json.gz").read_bytes()[:5000])
    line = one_error_line(run_cli("compare", good[0], str(cut), timeout=60))
    assert line.startswith(f"error: cannot read result '{cut}': ")


def test_compare_ratio_of_zero_to_zero_is_no_change():
    tp1, tp2 = (RunResult.load(RESULTS / "2gpu-parallel" / f"h200-{n}.json") for n in ("tp1", "tp2"))
    assert tp1.kv_cache.preemptions == tp2.kv_cache.preemptions == 0
    a, b = Labeled("tp1", tp1), Labeled("tp2", tp2)
    _, rows = compare_table([a, b], a)
    assert next(r for r in rows if r[0] == "preemptions")[1:] == [0, 0, 1.0]  # printed 1.000x, not "unknown"


def test_compare_names_each_side_in_order():
    path = RESULTS / "h100-run" / "run-1x128-512.json"
    base = RunResult.load(path)
    other = base.model_copy(deep=True)
    other.workload.num_prompts, other.workload.input_len = 10, 64
    other.environment.gpu_name = None
    other.mode = "serving"
    a, b = Labeled("offline", base), Labeled("served", other)
    found = mismatches(a, b)
    wl = [m for m in found if m.startswith("workload differs")]
    # the other run first, the baseline second, as the warning's "served vs offline" prefix reads
    assert wl == [f"workload differs: {(base.workload.source, 10, 64) + (base.workload.output_len, 0.0, 0)} vs "
                  f"{(base.workload.source, 1, 128, base.workload.output_len, 0.0, 0)}"]
    assert "GPU: unknown in served (serving or imported results do not record it), so it cannot be checked" in found
