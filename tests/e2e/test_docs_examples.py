"""The light examples of README.md and the site's pages, run for real in a process each: the commands that need no
engine, no server and no GPU. Which ones (`runnable`):

- the command is one of LIGHT, and tests/unit/test_docs_examples.py would parse it (no placeholder, not a bare
  mention of a command);
- it is on README.md or a page of the site, not in docs/results/ (those pages record GPU runs as they were made:
  their paths are the GPU machine's, and tests/unit parses them);
- every file it reads is in the checkout (a path under docs/, prompts/ or tests/). One that reads a bare file name
  (`run.json`, `vllm.log`) reads what a heavier command before it writes, and is left to that command's example.

Each runs in a scratch directory that links the checkout's docs/, prompts/ and tests/, so what it writes stays
there; it must exit 0.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli
from tests.unit.test_docs_examples import DOCS, EXAMPLES, Example

LIGHT = {"presets", "plan", "predict", "tune", "roofline", "compare", "scaling", "startup", "report", "import"}
CHECKOUT = ("docs/", "prompts/", "tests/")  # what a runnable example may read
OUTPUTS = {"--output", "-o", "--output-dir", "--plot", "--html", "--save-log"}  # values these name are written
FILE = re.compile(r"\.(json|gz|log|ya?ml|jsonl|txt|csv)$")


def reads_outside_checkout(example: Example) -> bool:
    """Does the command read a file that is not in the checkout (the output of a command before it)?"""
    args = example.args
    for i, word in enumerate(args):
        if word.startswith("-") or (i > 0 and args[i - 1] in OUTPUTS):
            continue
        if FILE.search(word) and not word.startswith(CHECKOUT):
            return True
    return False


def runnable(example: Example) -> bool:
    return (example.args[0] in LIGHT and not example.placeholder and not example.mention
            and DOCS / "results" not in example.path.parents and not reads_outside_checkout(example))


RUN = [e for e in EXAMPLES if runnable(e)]


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    for name in ("docs", "prompts", "tests"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    return tmp_path


@pytest.mark.parametrize("example", RUN, ids=[e.id for e in RUN])
def test_light_documented_command_runs(example: Example, scratch: Path) -> None:
    p = run_cli(*example.args, timeout=300, cwd=scratch)
    assert p.returncode == 0, f"{example.id}: `{example.text}` exited {p.returncode}\n{p.stderr[-3000:]}"


def test_the_docs_run_an_example_of_every_light_command() -> None:
    """Each light command has at least one example a reader can paste and run as it stands."""
    assert {e.args[0] for e in RUN} == LIGHT
