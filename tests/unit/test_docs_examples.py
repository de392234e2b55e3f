"""Examples cannot rot: every `offline-bench ...` command in README.md and docs/**/*.md parses with the real app
(click's own parser, so an unknown command or option, a missing argument or a value of the wrong type fails), and
the generated reference pages cover the whole app. tests/e2e/test_docs_examples.py runs the light ones for real.

Which text is a command (`collect`):
- in a fenced or indented code block, every line (backslash continuations joined) from the word `offline-bench`
  followed by an argument, up to a shell operator (`|`, `&`, `;`, `>`, `)`) or a `#` comment;
- in inline code, a span holding such a command (a span may wrap over lines).
A command with a placeholder is skipped: `...` or `…`, a `<name>` in angle brackets, a shell `$VARIABLE`, or an
argument in capitals standing for a value you choose (`N`, `FILE`, `DIR`); a `# comment` after it does not count.
A bare `offline-bench NAME` names a command in prose: only that the command exists is checked.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import typer.main

from offline_bench.cli.main import app
from tests.helpers import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_BYTES = 10 * 1024  # a README that fits a screen or two; the rest lives on the site
HOOK = DOCS / "hooks" / "reference.py"

COMMAND = re.compile(r"(?:^|(?<=[\s;&|(/]))offline-bench(?=\s+[A-Za-z-])")
PLACEHOLDER = re.compile(r"\.\.\.|…|<[A-Za-z][\w .:/-]*>|(?:^|\s)\$\{?[A-Za-z_]")
METAVAR = re.compile(r"[A-Z][A-Z0-9_]*")  # N, FILE, OUTDIR: a value the reader fills in
COMMENT = re.compile(r"\s#")
FENCE = re.compile(r"^\s*(```|~~~)")
INDENTED = re.compile(r"^ {4,}\S")
INLINE = re.compile(r"`([^`]+)`")
OPERATORS = set("();<>|&")


@dataclass(frozen=True)
class Example:
    """One command of the docs: where it is, its text as written, and its arguments after `offline-bench`."""

    path: Path
    line: int
    text: str
    args: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def placeholder(self) -> bool:
        command = COMMENT.split(self.text, maxsplit=1)[0]
        return bool(PLACEHOLDER.search(command)) or any(METAVAR.fullmatch(a) for a in self.args)

    @property
    def mention(self) -> bool:
        """A bare `offline-bench NAME`: the command named in prose, not an example to run."""
        return len(self.args) == 1 and not self.args[0].startswith("-")


def shell_words(text: str) -> list[str]:
    """The words of a command line up to its first shell operator (a pipe, a redirect, `&`, `;`) or comment."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    for word in lexer:
        if set(word) <= OPERATORS:
            if word[0] in "<>" and words and words[-1].isdigit():
                words.pop()  # the descriptor of a redirect (2>&1) belongs to the operator
            break
        words.append(word)
    return words


def commands_in(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """(text from `offline-bench` on, its arguments) of every command in one logical line."""
    out = []
    for m in COMMAND.finditer(text):
        rest = text[m.start():]
        try:
            words = shell_words(rest)
        except ValueError:  # an unclosed quote: keep the text, so the parse reports it
            words = rest.split()
        out.append((rest.strip(), tuple(words[1:])))
    return out


def _logical_lines(lines: list[str], start: int) -> tuple[int, str, int]:
    """(first line number, the line with its backslash continuations joined, index after it)."""
    i, text = start, lines[start].rstrip()
    while text.endswith("\\") and i + 1 < len(lines):
        i += 1
        text = text[:-1] + " " + lines[i].strip()
    return start + 1, text, i + 1


def _code_lines(lines: list[str]) -> tuple[list[tuple[int, str]], list[str]]:
    """(logical code lines with their line numbers, the prose: every line with code blanked out)."""
    code, prose, fenced, i = [], list(lines), False, 0
    while i < len(lines):
        line = lines[i]
        if FENCE.match(line):
            fenced = not fenced
            prose[i] = ""
            i += 1
            continue
        if fenced or (INDENTED.match(line) and line.strip().startswith("offline-bench")):
            number, text, after = _logical_lines(lines, i)
            code.append((number, text))
            prose[i:after] = [""] * (after - i)
            i = after
            continue
        i += 1
    return code, prose


def collect(path: Path) -> list[Example]:
    """Every `offline-bench` command of one markdown file (see the module's docstring for what counts)."""
    code, prose = _code_lines(path.read_text(encoding="utf-8").splitlines())
    found = [Example(path, n, text, args) for n, line in code for text, args in commands_in(line)]
    joined = "\n".join(prose)
    for m in INLINE.finditer(joined):
        number = joined.count("\n", 0, m.start()) + 1
        found += [Example(path, number, text, args) for text, args in commands_in(m.group(1).replace("\n", " "))]
    return sorted(found, key=lambda e: e.line)


def doc_files() -> list[Path]:
    """README.md and every page of the site (docs/**/*.md)."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def examples() -> list[Example]:
    return [e for path in doc_files() for e in collect(path)]


# ---------------------------------------------------------------- parsing with the real app


def _click_exceptions() -> ModuleType:
    """The click that typer really uses (typer >= 0.24 carries its own copy)."""
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


def _root():  # noqa: ANN202 - typer's click objects
    """The app as click sees it, and a context for it."""
    group = typer.main.get_command(app)
    return group, group.context_class(group, info_name="offline-bench")


def command_names() -> list[str]:
    group, root = _root()
    return list(group.list_commands(root))


def parse(args: tuple[str, ...]) -> None:
    """Parse `offline-bench ARGS` as the app does, without running the command: a usage error raises."""
    group, root = _root()
    try:
        if args[0].startswith("-"):  # options of the app itself (--help)
            group.make_context("offline-bench", list(args)).close()
            return
        cmd = group.get_command(root, args[0])
        if cmd is None:
            raise AssertionError(f"no command '{args[0]}': the app has {', '.join(command_names())}")
        cmd.make_context(args[0], list(args[1:]), parent=root).close()
    except typer.Exit as e:  # --help: printed and done
        assert e.exit_code == 0


EXAMPLES = examples()
PARSED = [e for e in EXAMPLES if not e.placeholder]


@pytest.mark.parametrize("example", PARSED, ids=[e.id for e in PARSED])
def test_every_documented_command_parses(example: Example, capsys: pytest.CaptureFixture) -> None:
    if example.mention:
        assert example.args[0] in command_names(), f"{example.id}: `{example.text}` names no command of the app"
        return
    try:
        parse(example.args)
    except _click_exceptions().ClickException as e:
        pytest.fail(f"{example.id}: `{example.text}`\n{type(e).__name__}: {e.format_message()}", pytrace=False)


def test_the_collector_finds_commands_in_code_blocks_inline_code_and_continuations(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Run `offline-bench plan --model preset:tiny-llama` first, or `offline-bench\n  compare` two.\n\n"
                    "```bash\nCUDA_VISIBLE_DEVICES=0 offline-bench run --num-prompts 8 \\\n    --output-len 4  # note\n"
                    "offline-bench roofline --gpu h100-sxm 2>&1 | tee log\noffline-bench run ... --output x.json\n```\n"
                    "\n    offline-bench presets --format md\n\nAnd `offline-bench[ray]` is a package.\n")
    found = {(e.line, e.args, e.placeholder) for e in collect(page)}
    assert found == {(1, ("plan", "--model", "preset:tiny-llama"), False), (1, ("compare",), False),
                     (5, ("run", "--num-prompts", "8", "--output-len", "4"), False),
                     (7, ("roofline", "--gpu", "h100-sxm"), False),
                     (8, ("run", "...", "--output", "x.json"), True),
                     (11, ("presets", "--format", "md"), False)}


def test_a_wrong_flag_or_value_fails_to_parse() -> None:
    exc = _click_exceptions()
    with pytest.raises(exc.NoSuchOption):
        parse(("run", "--num-prompt", "8"))
    with pytest.raises(exc.BadParameter):
        parse(("run", "--input-len", "many"))
    with pytest.raises(exc.MissingParameter):
        parse(("compare",))
    with pytest.raises(AssertionError, match="no command 'bench'"):
        parse(("bench", "--num-prompts", "8"))


def test_the_readme_and_the_guides_have_examples_and_the_readme_fits() -> None:
    by_file = {e.path for e in PARSED}
    assert README in by_file
    assert {p for p in (DOCS / "guides").glob("*.md")} <= by_file
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size:,} bytes, over {README_MAX_BYTES:,}: move detail to docs/"
    text = README.read_text()
    assert "scripts/quickstart.sh" in text and "scripts/test.sh" in text  # the two set-up commands it opens with


# ---------------------------------------------------------------- the generated reference pages


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference_hook", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_covers_every_command_of_the_app() -> None:
    hook = _hook()
    page = (DOCS / "reference" / "cli.md").read_text()
    assert hook.CLI_MARKER in page
    rendered = hook.on_page_markdown(page, _Page("reference/cli.md"), None, None)
    group, root = _root()
    for name in command_names():
        cmd = group.get_command(root, name)
        assert f"## offline-bench {name}\n" in rendered, f"the CLI reference lacks `{name}`"
        assert f"Usage: offline-bench {name}" in rendered
        for param in cmd.params:
            for opt in (o for o in param.opts if o.startswith("--")):
                assert opt in rendered, f"the CLI reference lacks {name} {opt}"


def test_the_schema_reference_covers_every_kind() -> None:
    from offline_bench.results.load import MODELS

    hook = _hook()
    page = (DOCS / "reference" / "schema.md").read_text()
    rendered = hook.on_page_markdown(page, _Page("reference/schema.md"), None, None)
    for kind, model in MODELS.items():
        assert f"## {kind}\n" in rendered and f"`{model.__name__}`" in rendered
        for field in model.model_fields:
            assert f"| `{field}` |" in rendered, f"the schema page lacks {kind}.{field}"


def test_every_page_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [p for p in DOCS.rglob("*.md") if len(p.relative_to(DOCS).parts) <= 2 and "hooks" not in p.parts]
    missing = [str(p.relative_to(DOCS)) for p in pages if f": {p.relative_to(DOCS).as_posix()}\n" not in nav]
    assert missing == []


@dataclass
class _Page:
    """What the hook reads of mkdocs' page object."""

    src_uri: str

    @property
    def file(self) -> _Page:
        return self
