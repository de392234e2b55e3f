"""A thin CLI: short modules; options declared once on flag groups that typer really sees; only the CLI installs
signal handlers, prints warnings and draws progress."""

from __future__ import annotations

import ast
import dataclasses
import logging
import os
import signal
import time
from pathlib import Path
from typing import Annotated

import pytest
import typer

from offline_bench.cli import configs, terminal
from offline_bench.cli.flags import Omit, command, group_flags
from offline_bench.cli.main import COMMANDS, app, run_app
from offline_bench.core.config import EngineConfig, WorkloadConfig
from offline_bench.core.procs import raise_interrupt

PACKAGE = Path(__file__).resolve().parents[2] / "offline_bench"
MAX_CLI_LINES = 150
# signal.signal outside the CLI, each with its reason: the watchdog is a process of its own (its own `main`);
# the engine's start re-routes only handlers already there (Python's SIGINT, the CLI's SIGTERM) to notice an
# interrupt a library on that path swallows, and puts them back
SIGNAL_ALLOWED = {"core/procs.py": "_guard", "engine/llm.py": "_InterruptLatch",
                  # the console script's first line: SIGTERM unwinds like Ctrl-C even while the CLI imports
                  "__main__.py": "main"}


def _library_modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(PACKAGE)): ast.parse(p.read_text()) for p in PACKAGE.rglob("*.py")
            if p.relative_to(PACKAGE).parts[0] != "cli"}


def _enclosing(tree: ast.Module) -> dict[ast.AST, str]:
    """Every node -> the name of the outermost def or class around it ('' at module level)."""
    out: dict[ast.AST, str] = {}
    for top in tree.body:
        name = top.name if isinstance(top, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) else ""
        for node in ast.walk(top):
            out[node] = name
    return out


def test_every_cli_module_is_short():
    long = {p.name: n for p in (PACKAGE / "cli").glob("*.py") if (n := len(p.read_text().splitlines())) >
            MAX_CLI_LINES}
    assert long == {}, f"CLI modules over {MAX_CLI_LINES} lines"


def test_only_the_cli_installs_signal_handlers():
    found = []
    for name, tree in _library_modules().items():
        where = _enclosing(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and ast.unparse(node.func) == "signal.signal"
                    and SIGNAL_ALLOWED.get(name) != where[node]):
                found.append(f"{name}:{node.lineno}")
    assert found == []


def test_only_the_cli_draws_progress_or_prints_warnings():
    found = []
    for name, tree in _library_modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                found += [f"{name}:{node.lineno} imports {m}" for m in mods if m in ("rich.progress", "rich.live")]
            elif isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                said = " ".join(ast.unparse(a) for a in node.args).lower()
                if func in ("print", "typer.echo", "sys.stderr.write") and "warn" in said:
                    found.append(f"{name}:{node.lineno} prints a warning")
                if func in ("warnings.warn", "warn"):
                    found.append(f"{name}:{node.lineno} calls warnings.warn")
    assert found == [], "the library logs warnings (logging.getLogger(__name__)); only offline_bench.cli prints"


def _click_params() -> dict[str, list[str]]:
    cmd = typer.main.get_command(app)
    return {name: [p.name for p in c.params] for name, c in cmd.commands.items()}


def test_typer_reads_the_expanded_signature():
    """Every flag of every group a command takes is an option typer built, in the generated signature's order."""
    params = _click_params()
    assert list(params) == [c.cli_name or c.__name__.replace("_", "-") for c in COMMANDS]
    for c in COMMANDS:
        name = c.cli_name or c.__name__.replace("_", "-")
        signature = [p for p in c.__signature__.parameters if p != "ctx"]
        assert params[name] == signature, name
    assert {f.name for f in dataclasses.fields(configs.EngineFlags)} <= set(params["run"])
    assert {f.name for f in dataclasses.fields(configs.WorkloadFlags)} <= set(params["run"])
    assert "tokenizer" not in params["phases"] and "data_parallel_size" not in params["phases"]


@dataclasses.dataclass
class Pair:
    left: Annotated[int, typer.Option(help="L.")] = 1
    right: Annotated[str, typer.Option("--right", "-r", help="R.")] = "x"
    unused: Annotated[bool, typer.Option(help="U.")] = False


def test_groups_arrive_as_objects_with_the_parsed_values():
    seen = []

    @command()
    def cmd(*, pair: Annotated[Pair, Omit("unused")], last: Annotated[int, typer.Option()] = 0) -> None:
        seen.append((pair, last))

    mini = typer.Typer()
    mini.command()(cmd)
    mini.command("other")(lambda: None)  # two commands: `cmd` is a subcommand, as in the real app
    mini(["cmd", "--left", "5", "-r", "y", "--last", "2"], standalone_mode=False)
    assert seen == [(Pair(left=5, right="y", unused=False), 2)]
    with pytest.raises(Exception, match="No such option"):
        mini(["cmd", "--unused"], standalone_mode=False)


def test_a_wrong_group_fails_at_import_not_silently():
    @dataclasses.dataclass
    class Bare:
        plain: int = 0  # no Option: would become a positional argument

    with pytest.raises(TypeError, match="has no such field"):
        group_flags(configs.EngineFlags, omit=("no_such_flag",))
    with pytest.raises(TypeError, match="no typer Option"):
        group_flags(Bare)
    with pytest.raises(TypeError, match="given twice"):
        command()(_clashing)


def _clashing(*, engine: configs.EngineFlags, seed: Annotated[int, typer.Option()] = 0) -> None: ...


def test_group_defaults_are_the_configs_defaults():
    assert configs.EngineFlags().to_config() == EngineConfig()
    expected = WorkloadConfig()
    expected.validate_values()
    assert configs.WorkloadFlags().to_config(seed=0, num_prompts=None) == expected


def test_library_warnings_print_as_before(capsys):
    logger = logging.getLogger("offline_bench.measure.runner")
    with terminal.library_warnings():
        logger.warning("plan predicted 10 KV tokens")
    assert capsys.readouterr().err == "warning: plan predicted 10 KV tokens\n"


def test_sigterm_unwinds_like_ctrl_c_only_while_a_command_runs():
    before = signal.getsignal(signal.SIGTERM)
    with terminal.sigterm_unwinds():
        assert signal.getsignal(signal.SIGTERM) is raise_interrupt
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at once
    assert signal.getsignal(signal.SIGTERM) is before


def test_sweep_progress_prints_a_line_per_point(capsys):
    with terminal.sweep_progress(2) as on_point:
        on_point(1, 2, "gmu0.5", "running")
        on_point(1, 2, "gmu0.5", "ok")
        on_point(2, 2, "gmu0.9", "skipped (done)")
    err = capsys.readouterr().err
    assert "gmu0.5: ok" in err and "gmu0.9: skipped (done)" in err


def test_run_app_in_process(capsys):
    assert run_app(["presets"]) == 0
    assert "preset:tiny-llama" in capsys.readouterr().out
    assert run_app(["--no-such-flag"]) == 2
    assert "No such option: --no-such-flag" in capsys.readouterr().err
