"""Every usage error and bad input: one line naming the fix (or typer's usage message), the right exit status,
no traceback, nothing written, and no engine started for what can be checked before one (the app in-process)."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from offline_bench.analysis.compare import Labeled, mismatches
from offline_bench.analysis.compare import table as compare_table
from offline_bench.results.run import RunResult
from tests.helpers import RESULTS, ROOT, cli, error_line

# ---------------------------------------------------------------- usage errors: typer's message, status 2


@pytest.mark.parametrize("args,message", [
    (["runn"], "Error: No such command 'runn'."),
    (["run", "--no-such-option"], "Error: No such option: --no-such-option"),
    (["compare"], "Error: Missing argument 'results'."),
    (["run", "--gpu-memory-utilization", "abc"], "Error: Invalid value for '--gpu-memory-utilization'"),
])
def test_usage_errors_exit_2_with_usage(capsys, args, message):
    rc, _, err = cli(capsys, *args)
    assert rc == 2 and "Traceback" not in err, err[-2000:]
    assert err.startswith("Usage: offline-bench") and message in err, err


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
def test_bad_model_config(capsys, tmp_path, config, message):
    line = error_line(capsys, "run", "--model", _model_dir(tmp_path, config))
    assert message in line


def test_lengths_checked_before_the_engine_starts(capsys, tmp_path):
    line = error_line(capsys, "run", "--input-len", "512", "--max-model-len", "256")
    # the early check's message (the engine-time check says "request N needs ...")
    assert line == ("error: synthetic requests need up to 512 prompt + 128 output tokens, more than --max-model-len "
                    "256: raise --max-model-len or lower --input-len/--output-len")
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "hi", "output_len": 600}\n')
    line = error_line(capsys, "run", "--prompts", str(f), "--max-model-len", "512")
    assert "ask for 600 output tokens, not fewer than --max-model-len 512" in line


def test_kv_cache_smaller_than_one_request_before_the_engine_starts(capsys):
    line = error_line(capsys, "run", "--kv-cache-memory-bytes", "1MiB", "--max-model-len", "1024")
    assert line == ("error: not enough memory for the KV cache: --kv-cache-memory-bytes 1048576 holds 512 tokens, "
                    "fewer than one request of max_model_len 1024: give at least 2097152 (2.0 MiB) or lower "
                    "--max-model-len")


FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10  # linux/fs.h, as chattr uses them


def _immutable(path: Path, on: bool) -> bool:
    """chattr +i / -i without a process: True where the file system and our rights allow it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
        flags = int.from_bytes(buf[:4], "little")
        flags = flags | FS_IMMUTABLE_FL if on else flags & ~FS_IMMUTABLE_FL
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, flags.to_bytes(4, "little") + bytes(4))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory nobody can write in, root included (chmod alone does not stop root: the immutable flag does)."""
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    immutable = _immutable(d, True)
    try:
        (d / ".probe").touch()
        (d / ".probe").unlink()
        pytest.fail("could not make a read-only directory here (chmod 555 and the immutable flag both failed)")
    except OSError:
        pass
    yield d
    if immutable:
        assert _immutable(d, False)
    d.chmod(0o755)


@pytest.mark.parametrize("args,flag", [
    (["run", "--output", "{ro}/r.json"], "--output {ro}/r.json"),
    (["run", "--save-log", "{ro}/e.log"], "--save-log {ro}/e.log"),
    (["sweep", "--output-dir", "{ro}/sw", "--max-model-len", "256,512"], "--output-dir {ro}/sw"),
    (["phases", "--plot", "{ro}/p.png"], "--plot {ro}/p.png"),
    (["import", "docs/results/h100-run/run-1x128-512.json", "--output-dir", "{ro}"], "--output-dir {ro}"),
])
def test_unwritable_destination_before_the_engine_starts(capsys, readonly_dir, args, flag):
    ro = str(readonly_dir)
    line = error_line(capsys, *[a.format(ro=ro) for a in args])
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
    # every command writes the same formats
    (["roofline", "--format", "xml"], "error: --format xml is not one of table, md, csv, json"),
    (["presets", "--format", "xml"], "error: --format xml is not one of table, md, csv, json"),
    (["phases", "--format", "yaml"], "error: --format yaml is not one of table, md, csv, json"),
    (["explain-gap", "--format", "html"], "error: --format html is not one of table, md, csv, json"),
    (["phases", "--batch-sizes", "0,4"], "error: --batch-sizes takes a comma list of integers >= 1"),
])
def test_bad_input_one_line(capsys, args, message):
    assert error_line(capsys, *args).startswith(message)


def test_measure_gpu_without_a_gpu_fails_before_the_engine_starts(capsys):
    # the line of the check before the engine (the measurement itself would say it only after a start); the unit
    # tier sees no NVIDIA GPU on any machine (tests/unit/conftest.py)
    line = error_line(capsys, "phases", "--measure-gpu", "--batch-sizes", "1")
    assert line == ("error: --measure-gpu needs a CUDA GPU visible to this process: leave it out here, or give "
                    "--gpu NAME for datasheet ceilings")


@pytest.mark.parametrize("run,message", [
    ({"concurrency": 1, "ttft_ms": "fast"}, "runs[1]: ttft_ms must be a number, got 'fast'"),
    ({"concurrency": -3, "ttft_ms": 20}, "runs[1]: concurrency must be a positive integer, got -3"),
    ({"concurrency": 4, "num_prompts": 100}, "runs[1] gives no figures: add at least one of ttft_ms"),
    ({"concurrency": 1, "output_tokens_per_s": -5.0}, "runs[1]: output_tokens_per_s must not be negative"),
])
def test_import_hand_figures_checked(capsys, tmp_path, run, message):
    f = tmp_path / "figs.json"
    f.write_text(json.dumps({"name": "x", "runs": [run]}))
    line = error_line(capsys, "import", str(f), "--output-dir", str(tmp_path / "out"))
    assert message in line
    assert not (tmp_path / "out").exists()


def test_gzipped_results_are_read_and_a_cut_one_gets_one_line(capsys, tmp_path):
    """Results may be kept gzipped (docs/results does): `compare` reads them; a cut-off one is one line."""
    seq = RESULTS / "ray-2node" / "h200-seq" / "pass2"
    good = [str(seq / "tp2-mp-noca.json.gz"), str(seq / "tp2-ray.json.gz")]
    rc, out, err = cli(capsys, "compare", *good, "--format", "csv")
    assert rc == 0, err
    assert "tp2-ray [offline]" in out  # named without .json.gz
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes((seq / "tp2-ray.json.gz").read_bytes()[:5000])
    line = error_line(capsys, "compare", good[0], str(cut))
    assert line.startswith(f"error: cannot read result '{cut}': ")


def test_compare_ratio_of_zero_to_zero_is_no_change():
    tp1, tp2 = (RunResult.load(RESULTS / "2gpu-parallel" / f"h200-{n}.json.gz") for n in ("tp1", "tp2"))
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
