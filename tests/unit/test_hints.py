"""Hints name what exists: every `--flag` in the package's strings (error messages, warnings, hints, help) is an
option of some command of the app, and every `--engine-arg KEY=VALUE` example names an engine argument of every
vLLM release the tool supports (issue 29: `--engine-arg swap_space=4` failed on vLLM 0.32, and `plan` advised
`--measure-gpu`, which it does not have)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import typer

from offline_bench.cli.main import app
from offline_bench.core.validate import KeyValue
from offline_bench.results.run import RunResult
from tests.helpers import RESULTS, cli

PACKAGE = Path(__file__).resolve().parents[2] / "offline_bench"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
CSS = re.compile(r"var\(--[\w-]+\)|--[\w-]+\s*:")  # a stylesheet's custom properties (the HTML report's)
ENGINE_ARG = re.compile(r"--engine-arg '?([a-z_]+)=")

# flags of other programs the package's strings name, each with its reason
OTHER_TOOLS = {
    "--save-result": "`vllm bench serve --save-result`: the JSON that `import` reads",
    "--query-gpu": "nvidia-smi's, run by core.environment to list the GPUs",
    "--head": "`ray start --head`, in the advice for a Ray cluster that cannot be reached",
    "--guard": "the watchdog process (core.procs), which this tool starts itself",
    "--guard-tree": "the watchdog process (core.procs), which this tool starts itself",
    "--worker": "a sweep's worker process (measure.sweep), which this tool starts itself",
    "--point": "a sweep's worker process (measure.sweep), which this tool starts itself",
    "--long-name": "cli.flags's docstring: a placeholder for any option's name",
}


def _strings() -> list[tuple[str, int, str]]:
    """(module, line, text) of every string constant of the package, f-strings' literal parts included."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.append((str(path.relative_to(PACKAGE)), node.lineno, node.value))
    return out


def _app_flags() -> set[str]:
    """Every option name of the app and of each command (aliases and --no- forms included)."""
    group = typer.main.get_command(app)
    params = [*group.params, *(p for c in group.commands.values() for p in c.params)]
    return {o for p in params for o in (*p.opts, *getattr(p, "secondary_opts", []))} | {"--help"}


def test_every_flag_a_message_names_is_an_option_of_the_app():
    known = _app_flags()
    unknown = {f"{where}:{line} {flag}" for where, line, text in _strings()
               for flag in FLAG.findall(CSS.sub("", text)) if flag not in known and flag not in OTHER_TOOLS}
    assert sorted(unknown) == []


def test_the_allowlist_holds_only_flags_still_named_and_not_ours():
    named = {flag for _, _, text in _strings() for flag in FLAG.findall(CSS.sub("", text))}
    assert set(OTHER_TOOLS) <= named  # an entry no string needs any more goes
    assert not set(OTHER_TOOLS) & _app_flags()


def _engine_arg_examples() -> set[str]:
    group = typer.main.get_command(app)
    validators = [check for c in group.commands.values() for _, check in c.callback.cli_checks.values()
                  if isinstance(check, KeyValue)]
    return ({v.example.split("=")[0] for v in validators}
            | {m for _, _, text in _strings() for m in ENGINE_ARG.findall(text)})


def _vllm_026_settings() -> set[str]:
    """The engine settings vLLM 0.26 had, from the H100 material it wrote: the config its engine logged at start
    (`Initializing a V1 LLM engine (v0.26.0) with config: key=value, ...`) and what a run's engine resolved."""
    log = (RESULTS / "h100-predict" / "calibration.log").read_text()
    (config,) = [line for line in log.splitlines() if "LLM engine (v0.26" in line]
    h100 = RunResult.load(RESULTS / "h100-run" / "run-1000x512-256.json.gz")
    assert h100.environment.vllm_version.startswith("0.26")
    return set(re.findall(r"\b([a-z_]+)=", config)) | set(h100.engine_args["resolved"])


def test_engine_arg_examples_exist_in_every_supported_vllm(vllm):
    """In the installed vLLM's EngineArgs (0.32 here) and in vLLM 0.26's engine settings."""
    from vllm.engine.arg_utils import EngineArgs

    examples = _engine_arg_examples()
    assert {"max_num_seqs", "disable_custom_all_reduce"} <= examples  # the KEY=VALUE example; a TP-across-hosts hint
    assert examples <= set(EngineArgs.__dataclass_fields__) & _vllm_026_settings(), examples


def test_plan_advises_what_plan_has(capsys):
    rc, _, err = cli(capsys, "plan", "--gpu", "tpu-v9")
    plan_flags = {o for p in typer.main.get_command(app).commands["plan"].params for o in p.opts}
    named = set(FLAG.findall(err))
    assert rc == 2 and "--gpu-memory-gib" in named and named <= plan_flags, err


def test_a_key_value_hint_names_a_real_engine_arg(capsys, tmp_path):
    rc, _, err = cli(capsys, "run", "--engine-arg", "swap_space", "--output", str(tmp_path / "r.json"))
    assert rc == 2 and err.strip() == ("error: --engine-arg 'swap_space' must look like KEY=VALUE, e.g. --engine-arg "
                                       "max_num_seqs=128")
