"""mkdocs hook: the reference pages that come from the code, rendered at build time so they cannot go stale.

- docs/reference/cli.md: `<!-- generated: cli -->` becomes every command's `--help`, from the typer app itself
  (`offline_bench.cli.main.app`), in the app's order.
- docs/reference/schema.md: `<!-- generated: schema -->` becomes every result kind's fields, from the pydantic
  models `results.load` reads them with; a field's description is its comment in the model's source.

tests/unit/test_docs_examples.py imports this file to check the CLI page covers every command.
"""

from __future__ import annotations

import inspect
import io
import tokenize
import types
import typing
from typing import Any

CLI_MARKER = "<!-- generated: cli -->"
SCHEMA_MARKER = "<!-- generated: schema -->"
HELP_WIDTH = 100  # characters a help line may take (click wraps to the terminal's width, at most 80, by default)


# ---------------------------------------------------------------- CLI


def _root():  # noqa: ANN202 - typer's click objects (typer carries its own click)
    """The app as click sees it, and a context for it."""
    import typer.main

    from offline_bench.cli.main import app

    group = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="offline-bench", terminal_width=HELP_WIDTH,
                              max_content_width=HELP_WIDTH)
    return group, ctx


def command_names() -> list[str]:
    """Every command of the app, in its help order."""
    group, ctx = _root()
    return list(group.list_commands(ctx))


def command_help(name: str | None = None) -> str:
    """`offline-bench [NAME] --help`, as the terminal shows it (plain text)."""
    group, ctx = _root()
    if name is None:
        return group.get_help(ctx)
    cmd = group.get_command(ctx, name)
    sub = cmd.context_class(cmd, info_name=name, parent=ctx, terminal_width=HELP_WIDTH, max_content_width=HELP_WIDTH)
    return cmd.get_help(sub)


def cli_reference() -> str:
    """The CLI page's generated part: the app's help, then one section per command."""
    parts = ["## offline-bench", "", "```text", command_help().rstrip(), "```", ""]
    for name in command_names():
        parts += [f"## offline-bench {name}", "", "```text", command_help(name).rstrip(), "```", ""]
    return "\n".join(parts)


# ---------------------------------------------------------------- result schema


def _comments(cls: type) -> dict[str, str]:
    """{field: its comment} from a class's source: the comment on the field's line, or the comment lines right
    above it."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    comments = {t.start[0]: t.string.lstrip("#").strip()
                for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT}
    out = {}
    for i, line in enumerate(lines, start=1):
        head = line.strip().split(":", 1)[0]
        if not head.isidentifier() or ":" not in line or line.strip().startswith(("def ", "class ", "#")):
            continue
        above, j = [], i - 1
        while j in comments and lines[j - 1].strip().startswith("#"):
            above.insert(0, comments[j])
            j -= 1
        trailing, k = comments.get(i, ""), i + 1
        while trailing.count("(") > trailing.count(")") and k in comments and lines[k - 1].strip().startswith("#"):
            trailing += " " + comments[k]  # a comment that goes on to the next line
            k += 1
        text = " ".join([*above, trailing]).strip()
        if text and head not in out:
            out[head] = text
    return out


def _anchor(model: type) -> str:
    """Where a model is documented on the page: its kind's section, or its own under "Nested models"."""
    from offline_bench.results.load import MODELS

    kind = next((k for k, m in MODELS.items() if m is model), None)
    return kind if kind is not None else model.__name__.lower()


def _doc(model: type) -> str:
    """The model's own docstring ("" when it has none: not BaseModel's)."""
    return inspect.cleandoc(model.__dict__.get("__doc__") or "")


def _type_name(tp: Any, nested: list[type]) -> str:
    """A field's type in short words; a pydantic model it names is added to `nested` (documented below)."""
    from pydantic import BaseModel

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp not in nested:
            nested.append(tp)
        return f"[{tp.__name__}](#{_anchor(tp)})"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a, nested) for a in args)
    if origin is typing.Literal:
        return " or ".join(f'"{a}"' if isinstance(a, str) else repr(a) for a in args)
    if origin is not None:
        inner = ", ".join(_type_name(a, nested) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _default(field: Any) -> str:
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        return f"`{field.default_factory()!r}`"
    return "required" if field.default is PydanticUndefined else f"`{field.default!r}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def model_table(model: type, nested: list[type]) -> list[str]:
    """One model's fields as a markdown table (field, type, default, what it is)."""
    notes = _comments(model)
    rows = ["| field | type | default | what it is |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        rows.append(f"| `{name}` | {_cell(_type_name(field.annotation, nested))} | {_cell(_default(field))} | "
                    f"{_cell(notes.get(name, ''))} |")
    return rows


def schema_reference() -> str:
    """The schema page's generated part: every kind (its model, version, fields), then the models they nest."""
    from offline_bench.results.kinds import KINDS
    from offline_bench.results.load import MODELS

    parts, nested = [], []
    for kind, model in MODELS.items():
        version = model.model_fields.get("schema_version")
        said = f"`schema_version` {version.default}" if version is not None else "no `schema_version` field"
        doc = _doc(model)
        parts += [f"## {kind}", "", f"{KINDS[kind][0].upper()}{KINDS[kind][1:]}: `{model.__name__}`, {said}."
                  + (f" {doc}" if doc else ""), ""]
        parts += [*model_table(model, nested), ""]
    parts += ["## Nested models", ""]
    done: set[type] = set(MODELS.values())
    while nested:
        model = nested.pop(0)
        if model in done:
            continue
        done.add(model)
        doc = _doc(model)
        parts += [f"### {model.__name__}", ""]
        if doc:
            parts += [doc, ""]
        parts += [*model_table(model, nested), ""]
    return "\n".join(parts)


# ---------------------------------------------------------------- the hook


GENERATED = {"reference/cli.md": (CLI_MARKER, cli_reference), "reference/schema.md": (SCHEMA_MARKER, schema_reference)}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # noqa: ARG001 - mkdocs' signature
    marker, render = GENERATED.get(page.file.src_uri, (None, None))
    if marker is None:
        return markdown
    if marker not in markdown:
        raise ValueError(f"docs/{page.file.src_uri} lost its marker {marker}: the generated part has nowhere to go")
    return markdown.replace(marker, render())
