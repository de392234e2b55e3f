"""One validation layer (issue 33): the battery.

It walks the app's own option table (every command of `offline_bench.cli.main.app`, every option and argument that
takes a value, with the validator its type declares) and gives each the bad values of its kind: zero, negative,
NaN, inf, above its range, a wrong unit, a wrong type, an empty list item, an empty or unknown value. Each answer
is exit status 2 with one `error:` line naming the flag and an accepted example (or typer's usage message for a
value typer itself cannot convert), no traceback, nothing written, and it comes from the validation layer, before
the command's body, so before any engine start (the engine is guarded too). A value class an option legitimately
takes (--seed 0, --warmup 0, --request-rate inf, --api-key '') is declared by its validator (`accepts`): the
generator reads that declaration, and another test checks the declaration is true.

Generated cases, by class (test_the_battery_covers_every_class prints and checks them): wrong_type 264, empty 207,
wrong_unit 153, negative 144, nan 144, inf 137, zero 132, empty_item 90, unknown 33, above 18: 1322 in all, over
the 218 options of 15 commands (the 3 --api-key options take every value of their kind, '' included). Then a test
for each defect the user battery found.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import typer

from offline_bench.cli import flags
from offline_bench.cli.main import app, run_app
from offline_bench.core.errors import BenchError
from offline_bench.core.validate import (
    VALUE_CLASSES,
    ByteSize,
    Choice,
    Goodput,
    GpuPrices,
    JsonObject,
    KeyValue,
    ListOf,
    Number,
    Pair,
    Text,
    Url,
    Validator,
)
from offline_bench.engine.llm import Engine
from offline_bench.model.info import ModelInfo
from offline_bench.model.limits import check_model_limits
from offline_bench.model.presets import preset_config
from tests.helpers import RESULTS

CLICK = typer.main.get_command(app)
CALIBRATION = str(RESULTS / "h100-predict" / "calibration.json.gz")


def _options() -> list[tuple[str, Any, str, Validator]]:
    """(command, click parameter, flag, validator) of every option and argument that takes a value (a switch
    takes none)."""
    out = []
    for name, cmd in CLICK.commands.items():
        for p in cmd.params:
            if not getattr(p, "is_bool_flag", False):
                out.append((name, p, *cmd.callback.cli_checks[p.name]))
    return out


OPTIONS = _options()


# ---------------------------------------------------------------- the bad values of each kind


def _number(v: Number) -> list[tuple[str, str]]:
    found = [("zero", "0"), ("negative", "-1"), ("nan", "nan"), ("inf", "inf"), ("wrong_type", "abc"),
             ("wrong_unit", "5s")]
    if v.integer:
        found.append(("wrong_type", "1.5"))
    if v.hi is not None:
        found.append(("above", f"{v.hi * 2:g}"))
    return found


def _list(v: ListOf) -> list[tuple[str, str]]:
    examples = v.example.split(",")
    first, last = examples[0], examples[-1]
    items = [(c, x) for c, x in bad_values(v.item, declared=False) if x != ""]
    return (items + [(c, f"{first},{x}") for c, x in items]
            + [("empty_item", f"{first},,{last}"), ("empty_item", f"{first},"), ("empty_item", f",{first}"),
               ("empty", "")])


def _pair(v: Pair) -> list[tuple[str, tuple[str, str]]]:
    one, two = v.parts
    return ([(c, (x, two.example)) for c, x in bad_values(one)]
            + [(c, (one.example, x)) for c, x in bad_values(two)])


KINDS = {
    Number: _number, ListOf: _list, Pair: _pair,
    ByteSize: lambda v: [("zero", "0"), ("zero", "0.1"), ("negative", "-1"), ("nan", "nan"), ("inf", "inf"),
                         ("wrong_unit", "12XB"), ("wrong_unit", "64MB/s"), ("wrong_type", "lots"), ("empty", "")],
    Choice: lambda v: [("unknown", "no-such-value"), ("empty", "")],
    Text: lambda v: [("empty", ""), ("empty", "  ")] + ([("wrong_type", "two words")] if v.pattern else []),
    JsonObject: lambda v: [("wrong_type", "{bad"), ("wrong_type", "[1]"), ("empty", "")],
    KeyValue: lambda v: [("wrong_type", "max_num_seqs"), ("empty", "=4"), ("empty", "")],
    Goodput: lambda v: [("zero", "ttft:0"), ("negative", "ttft:-5"), ("nan", "ttft:nan"), ("inf", "ttft:inf"),
                        ("unknown", "fast:5"), ("wrong_type", "ttft"), ("wrong_unit", "ttft:5s"), ("empty", "")],
    GpuPrices: lambda v: [("zero", "0"), ("negative", "-1"), ("nan", "nan"), ("inf", "inf"), ("wrong_type", "abc"),
                          ("wrong_unit", "2.49$"), ("zero", "h200=0"), ("empty_item", "h100-sxm=2.49,"),
                          ("empty_item", "=2.49"), ("empty", "")],
    Url: lambda v: [("wrong_type", "notaurl"), ("wrong_type", "http://127.0.0.1:port"), ("empty", "")],
}


def bad_values(v: Validator, declared: bool = True) -> list[tuple[str, Any]]:
    """(class, value) of every bad value of the validator's kind, less the classes it declares it accepts."""
    found = KINDS[type(v)](v)
    return [(c, x) for c, x in found if not declared or c not in v.accepts]


def _argv(command: str, param: Any, value: Any) -> list[str]:
    """The command line: every required parameter at its validator's example, and `param` at `value`."""
    positional, options = [], []
    for p in CLICK.commands[command].params:
        if p is not param and not p.required:
            continue
        _, v = CLICK.commands[command].callback.cli_checks[p.name]
        given = value if p is param else v.example
        items = list(given) if isinstance(given, tuple) else [given]
        if p.param_type_name == "argument":
            positional += items
        else:
            options += [p.opts[0], *items]
    return [command, *positional, *options]


CASES = [(name, p, flag, v, c, x) for name, p, flag, v in OPTIONS for c, x in bad_values(v)]


# ---------------------------------------------------------------- the run of a case


def _no_engine(*args: object, **kwargs: object) -> None:
    pytest.fail("an engine was started: a bad value must be refused before any engine start", pytrace=False)


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """tmp_path as the working directory, no engine, and the validation layer's refusals recorded."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Engine, "__init__", _no_engine)
    monkeypatch.setattr("os.execve", _no_engine)
    refused: list[str] = []
    real = flags.validate

    def recording(values: dict[str, Any], checks: dict[str, Any]) -> None:
        try:
            real(values, checks)
        except BenchError as e:
            refused.append(str(e))
            raise

    monkeypatch.setattr(flags, "validate", recording)
    return refused


def _examples(v: Validator) -> list[str]:
    """The accepted values a refusal of `v` may name."""
    if isinstance(v, ListOf):
        return [v.example, *_examples(v.item)]
    if isinstance(v, Pair):
        return [x for part in v.parts for x in _examples(part)]
    return [v.example]


def _refusal(capsys: pytest.CaptureFixture, refused: list[str], tmp_path: Path, case: tuple) -> str | None:
    """What is wrong with the answer to one case (None: it is refused as it should be)."""
    name, p, flag, v, cls, value = case
    argv = _argv(name, p, value)
    refused.clear()
    capsys.readouterr()
    rc = run_app(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    if rc != 2 or "Traceback" in err:
        return f"{argv}: exit {rc}: {err[-500:]}"
    if any(tmp_path.iterdir()):
        return f"{argv}: wrote {sorted(x.name for x in tmp_path.iterdir())}"
    if err.startswith("Usage: offline-bench"):  # typer could not convert it (an int option given 'abc')
        return None if f"Invalid value for '{p.opts[0]}'" in err else f"{argv}: {err[-500:]}"
    if len(lines) != 1 or not lines[0].startswith("error: ") or not refused:
        return f"{argv}: not one line of the validation layer: {err[-500:]}"
    if flag not in lines[0] or not any(x in lines[0] for x in _examples(v)):
        return f"{argv}: the line names no flag or no example: {lines[0]}"
    return None


@pytest.mark.parametrize("command,param", sorted({(c[0], c[1].name) for c in CASES}))
def test_every_bad_value_of_every_option_is_one_line(capsys, guarded, tmp_path, command, param):
    failed = [why for case in CASES if (case[0], case[1].name) == (command, param)
              if (why := _refusal(capsys, guarded, tmp_path, case))]
    assert failed == []


def test_the_battery_covers_every_class():
    by_class = Counter(c for *_, c, _ in CASES)
    print(dict(by_class.most_common()), len(CASES), "cases")
    assert len(CASES) >= 150
    assert {c for c, n in by_class.items() if n >= 10} == set(VALUE_CLASSES)
    assert {name for name, *_ in CASES} == set(CLICK.commands)


# ---------------------------------------------------------------- the declarations the battery reads


def test_every_option_declares_its_validator():
    missing = [f"{name} {p.name}" for name, cmd in CLICK.commands.items() for p in cmd.params
               if not getattr(p, "is_bool_flag", False) and p.name not in cmd.callback.cli_checks]
    assert missing == []
    assert len(OPTIONS) > 150


SAMPLES = {"zero": "0", "negative": "-1", "inf": "inf", "empty": ""}


def test_what_a_validator_declares_it_accepts_it_accepts():
    for _, p, flag, v in OPTIONS:
        example = tuple(v.example.split(" ")) if isinstance(v, Pair) else v.example
        v(example, flag)  # its own example
        for cls in v.accepts:
            v(SAMPLES[cls], flag)
        if p.default not in (None, ()) and not isinstance(p.default, list):
            v(p.default, flag)  # and its default
    takes = {(name, flag): v.accepts for name, _, flag, v in OPTIONS}
    assert takes[("run", "--seed")] == takes[("run", "--warmup")] == {"zero"}
    assert all(takes[(c, "--request-rate")] == {"inf"} for c in ("run", "sweep", "serve-probe", "explain-gap"))
    assert takes[("serve-probe", "--api-key")] == {"empty"}
    assert takes[("run", "--max-model-len")] == takes[("predict", "--concurrency")] == set()


PROBES = ["0", "1", "2", "-1", "0.5", "1.5", "4096", "inf", "nan", "abc", "64MiB", "fp8", "auto", "", "x:1"]


def _accepted(v: Validator) -> frozenset[str]:
    item = v.item if isinstance(v, ListOf) else v
    out = set()
    for probe in PROBES:
        try:
            item.check((probe, probe) if isinstance(item, Pair) else probe, "--x")
            out.add(probe)
        except BenchError:
            pass
    return frozenset(out)


def test_an_option_accepts_the_same_values_wherever_it_appears():
    """A list option's items are checked like the single value of the same option elsewhere (--max-model-len in
    run and in sweep); only a validator that says it varies may differ (--format: what each command writes)."""
    seen: dict[str, dict[frozenset[str], list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, _, flag, v in OPTIONS:
        if not v.varies:
            seen[flag][_accepted(v)].append(name)
    differ = {flag: dict(sets) for flag, sets in seen.items() if len(sets) > 1}
    assert differ == {}


# ---------------------------------------------------------------- the defects of the user battery


def _line(capsys: pytest.CaptureFixture, tmp_path: Path, *args: str) -> str:
    capsys.readouterr()
    rc = run_app(list(args))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert not any(tmp_path.iterdir())
    return lines[0]


ABOVE_8B = "error: --max-model-len 200000 is above the model's limit (131072 tokens): lower --max-model-len"


MML_COMMANDS = [
    ["predict", "--from", CALIBRATION],  # before: predicted as if it fitted (only far above: a cache-size line)
    ["plan", "--model", "preset:llama-3.1-8b", "--gpu", "h100-sxm"],
    ["run", "--model", "preset:llama-3.1-8b"],
    ["phases", "--model", "preset:llama-3.1-8b"],
    ["sweep", "--model", "preset:llama-3.1-8b", "--output-dir", "sw"],
    ["sweep", "--output-dir", "sw", "--predict-only", "--calibrate", CALIBRATION],
    ["serve-preset", "llama-3.1-8b", "--print-command"],
    ["explain-gap", "--model", "preset:llama-3.1-8b", "--concurrency", "4"],
]


@pytest.mark.parametrize("args", [[*a, "--max-model-len", "200000"] for a in MML_COMMANDS]
                         + [[*a, "--max-model-len", "4096,200000"] for a in MML_COMMANDS if a[0] in ("plan", "sweep")],
                         ids=lambda a: " ".join(a[:2] + a[-1:]))
def test_max_model_len_above_the_model_is_refused_by_every_command(capsys, guarded, tmp_path, args):
    assert _line(capsys, tmp_path, *args) == ABOVE_8B


HEADS = "does not divide the model's 4 attention heads: use one of 1, 2, 4"


@pytest.mark.parametrize("args,flag", [
    (["run", "-tp", "3"], "--tensor-parallel-size 3"),
    (["phases", "--tensor-parallel-size", "3"], "--tensor-parallel-size 3"),
    # before: "fits", with 4x the KV capacity (4 KV heads // 3 = one head per GPU)
    (["plan", "--model", "preset:tiny-llama", "--gpu", "h100-sxm", "--tensor-parallel-size", "3"],
     "--tensor-parallel-size 3"),
    (["plan", "--model", "preset:tiny-llama", "--gpu", "h100-sxm", "--tensor-parallel-size", "1,2,3"],
     "--tensor-parallel-size 3"),
    (["sweep", "--output-dir", "sw", "--tensor-parallel-size", "2,3"], "--tensor-parallel-size 3"),
    (["roofline", "--model", "preset:tiny-llama", "--gpu", "h100-sxm", "--num-gpus", "3"], "--num-gpus 3"),
])
def test_tensor_parallel_size_against_the_heads_is_one_check(capsys, guarded, tmp_path, args, flag):
    assert _line(capsys, tmp_path, *args) == f"error: {flag} {HEADS}"


def test_sweep_predict_only_checks_the_calibration_model(capsys, guarded, tmp_path):
    line = _line(capsys, tmp_path, "sweep", "--output-dir", "sw", "--predict-only", "--calibrate", CALIBRATION,
                 "--tensor-parallel-size", "3,4")
    assert line == ("error: --tensor-parallel-size 3 does not divide the model's 32 attention heads: use one of "
                    "1, 2, 4, 8, 16")


def test_plan_answers_a_size_that_splits_the_heads(capsys, guarded, tmp_path):
    rc = run_app(["plan", "--model", "preset:tiny-llama", "--gpu", "h100-sxm", "--tensor-parallel-size", "1,2",
                  "--format", "csv"])
    assert rc == 0, capsys.readouterr().err


def test_kv_heads_must_split_evenly_too():
    info = ModelInfo.from_config({**preset_config("tiny-llama"), "num_attention_heads": 12,
                                  "num_key_value_heads": 4, "hidden_size": 768})
    check_model_limits(info, None, tensor_parallel_size=[1, 2, 4, 12])
    for tp in (3, 6):
        with pytest.raises(BenchError, match=f"^--tensor-parallel-size {tp} does not split the model's 4 KV heads "
                                             "evenly: use one of 1, 2, 4, 12$"):
            check_model_limits(info, None, tensor_parallel_size=tp)
    with pytest.raises(BenchError, match="^--tensor-parallel-size 5 does not divide the model's 12 attention"):
        check_model_limits(info, None, tensor_parallel_size=5)
    with pytest.raises(BenchError, match="^--pipeline-parallel-size 9 exceeds the model's"):
        check_model_limits(info, None, pipeline_parallel_size=[1, 9])


@pytest.mark.parametrize("args,line", [
    # before: RuntimeError "the simulated scheduler stalled" (a traceback)
    (["predict", "--from", CALIBRATION, "--concurrency", "-2"],
     "error: --concurrency -2 must be a positive integer, e.g. --concurrency 8"),
    # before: ZeroDivisionError with --gpu (a traceback), "no GPU detected" without
    (["roofline", "--gpu", "h100-sxm", "--num-gpus", "0"],
     "error: --num-gpus 0 must be a positive integer, e.g. --num-gpus 2"),
    # before: the empty item dropped silently
    (["phases", "--batch-sizes", "1,,8"],
     "error: --batch-sizes takes a comma list of integers >= 1, e.g. 1,8,32 (got '1,,8')"),
    (["sweep", "--output-dir", "sw", "--max-model-len", "256,,512"],
     "error: --max-model-len takes a comma list of integers >= 1, e.g. 2048,8192 (got '256,,512')"),
    (["run", "--kv-cache-memory-bytes", "12XB"],
     "error: --kv-cache-memory-bytes '12XB' is not a size: give bytes or a size such as 64MiB or 2GiB"),
    # before: vLLM's VLLMValidationError from inside the started engine
    (["run", "--temperature", "nan"], "error: --temperature nan must be a number >= 0, e.g. --temperature 0.7"),
    (["run", "--top-p", "inf"], "error: --top-p inf is outside (0, 1]: pass a fraction such as 0.95"),
    (["run", "--request-rate", "5,nan"],
     "error: --request-rate takes positive numbers (requests/s) or inf, e.g. 5,20,50 (got '5,nan')"),
    # before: accepted (an SLO nobody misses)
    (["run", "--goodput", "ttft:inf"], "error: --goodput 'ttft:inf' must be NAME:MS with NAME one of ttft, tpot, "
                                       "e2e and MS > 0, e.g. --goodput ttft:500 --goodput tpot:50"),
    # before: a pydantic ValidationError (a traceback)
    (["run", "--compilation-config", "[1]"],
     "error: --compilation-config must be a JSON object, e.g. '{\"pass_config\": {\"fuse_allreduce_rms\": false}}'"),
    # before: written into sweep.json, which the same sweep then refused to read back
    (["sweep", "--output-dir", "sw", "--knee-tolerance", "nan"],
     "error: --knee-tolerance nan must be in [0, 1), e.g. --knee-tolerance 0.1"),
    # before: printed a command with --port -1
    (["serve-preset", "tiny-llama", "--port", "-1", "--print-command"],
     "error: --port -1 must be a port in [1, 65535], e.g. --port 8000"),
    # plan has no --measure-gpu: it advises the flag it has for a device not in the table
    (["plan", "--gpu", "tpu-v9"], "error: unknown GPU 'tpu-v9': give --gpu one of h100-sxm, h100-pcie, h200, "
                                  "a100-40gb, a100-80gb, l40s, a10, rtx-4090, b200 (or --gpu-memory-gib for another "
                                  "device)"),
    (["roofline", "--gpu", "tpu-v9"], "error: unknown GPU 'tpu-v9': give --gpu one of h100-sxm, h100-pcie, h200, "
                                      "a100-40gb, a100-80gb, l40s, a10, rtx-4090, b200 (or --measure-gpu on the GPU)"),
])
def test_the_user_battery_s_bad_values(capsys, guarded, tmp_path, args, line):
    assert _line(capsys, tmp_path, *args) == line
    assert guarded, "refused by the validation layer, before the command's body"


def test_values_an_option_legitimately_takes_pass(guarded):
    checks = {name: cmd.callback.cli_checks for name, cmd in CLICK.commands.items()}
    flags.validate({"seed": 0, "warmup": 0, "request_rate": "5,inf", "prefix_len": 0, "range_ratio": 0.0,
                    "temperature": 0.0, "kv_cache_memory_bytes": "1.5GiB", "goodput": ["ttft:500 tpot:50"],
                    "compilation_config": json.dumps({"cudagraph_mode": "FULL"}), "dataset": ("sharegpt", "x.json")},
                   checks["run"])
    flags.validate({"gpu": "H100-SXM", "tensor_parallel_size": "1, 2"}, checks["plan"])
    assert guarded == []
