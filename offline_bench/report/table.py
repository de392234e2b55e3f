"""What every command prints, before it is written in a format: a `Document` of `Table`s and `Text` blocks.

A table holds raw values (numbers stay numbers: csv and json get them as they are); each column says how its
numbers are shown (`Style`) and how they line up. `fmt` is the one number formatter of the console formats.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Style:
    """How a value is shown: floats with `spec` (`small`: below 1 in magnitude, 0 excepted), ints with `ints`
    (None: as floats), None as `none`; `suffix` after a number; bools as `bools` (False, True) words. Strings are
    shown as they are."""

    spec: str = ",.2f"
    ints: str | None = ","
    none: str = ""
    suffix: str = ""
    small: str | None = None
    bools: tuple[str, str] | None = None

    def __call__(self, value: Any) -> str:
        return fmt(value, self)


def fmt(value: Any, style: Style | None = None) -> str:
    """The one number formatter: `value` as `style` (default: 2 decimals, thousands separated) shows it."""
    s = style or NUM
    if value is None:
        return s.none
    if isinstance(value, bool) and s.bools:
        return s.bools[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) and s.ints is not None:
        return format(value, s.ints) + s.suffix
    spec = s.small if s.small is not None and 0 < abs(value) < 1 else s.spec
    return format(value, spec) + s.suffix


# the styles the commands use; a builder may make its own (Style(".3f"), say)
NUM = Style()  # 1,234.57; ints 1,234
TEXT = Style("", ints="")  # str(value): 0.5, 4096
KNOWN = Style(none="unknown")  # NUM, a missing value "unknown"
RATIO = Style(".3f", ints=None, none="unknown", suffix="x")  # 0.187x
AUTO = Style(small=".3g")  # NUM, and 3 significant digits below 1: 0.5, 0.0123
SIG4 = Style(".4g")  # 4 significant digits, ints 1,234
YES_NO = Style(bools=("no", "yes"))


def decimals(n: int, none: str = "", ints: str | None = ",") -> Style:
    """n decimals, thousands separated (ints: separators only, or with `ints=None` n decimals too)."""
    return Style(f",.{n}f", ints=ints, none=none)


@dataclass
class Column:
    name: str  # the header, as shown
    unit: str = ""  # what the numbers count (json output)
    style: Style = TEXT
    align: Literal["left", "decimal"] = "left"  # decimal: numbers lined up on the point, header to the right
    wrap: int | None = None  # the console table wraps the column's cells at this width


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Any]]
    title: str = ""  # printed right above the table ("## title" in md)
    header: bool = True  # False: no header row (a key-value table)
    notes: list[str] = field(default_factory=list)  # a paragraph after the table

    def shown(self, wrap: bool = False) -> list[list[str]]:
        """The rows as text, each value as its column shows it (`wrap`: long cells wrapped)."""
        out = []
        for row in self.rows:
            cells = [fmt(v, c.style) for v, c in zip(row, self.columns)]
            if wrap:
                cells = [textwrap.fill(t, c.wrap) if c.wrap else t for t, c in zip(cells, self.columns)]
            out.append(cells)
        return out


@dataclass
class Text:
    lines: list[str]
    kind: Literal["note", "warning", "heading"] = "note"  # warning: "warning: " before each line
    level: int = 2  # a heading's level in markdown


def heading(text: str, level: int = 2) -> Text:
    return Text([text], "heading", level)


def warnings(lines: list[str]) -> Text:
    return Text(list(lines), "warning")


Item = Table | Text


@dataclass
class Document:
    """What one command prints: tables and text, in order."""

    items: list[Item]
    final_newline: bool = True  # the text formats end with a newline (the CLI adds one more)
    own_json: Callable[[], str] | None = None  # json: the objects' own JSON (else the document's tables)
    csv_sections: list[str] | None = None  # csv: one table of every table's rows, each led by the table's title
    # csv and json: these tables instead of those shown (every column, whole labels), when the console shows less
    data: list[Table] | None = None

    @property
    def tables(self) -> list[Table]:
        return [i for i in self.items if isinstance(i, Table)]

    def warning_lines(self) -> list[str]:
        return [x for i in self.items if isinstance(i, Text) and i.kind == "warning" for x in i.lines]
