"""One writer per output format, each registered under its --format name: `Writer.get("md").write(document)`.

table: plain console tables; md: GitHub markdown; csv: the tables' raw values (warnings as `# warning:` lines);
json: the objects' own JSON where the document carries it, else the document's tables.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import ClassVar

from tabulate import tabulate

from offline_bench.report.table import Document, Table, Text


class Writer:
    """Base of the writers; `Writer.register(name)` adds a subclass under its format name."""

    name: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type[Writer]]] = {}

    @classmethod
    def register(cls, name: str) -> Callable[[type[Writer]], type[Writer]]:
        def deco(sub: type[Writer]) -> type[Writer]:
            sub.name = name
            Writer._registry[name] = sub
            return sub
        return deco

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(Writer._registry)

    @classmethod
    def get(cls, name: str) -> Writer:
        return Writer._registry[name]()

    def write(self, doc: Document) -> str:
        raise NotImplementedError


class TextWriter(Writer):
    """Blocks (a table with its title, a table's notes, a text) separated by blank lines."""

    tablefmt = "simple"
    wrap = True  # cells of a column with `wrap` are wrapped

    def heading(self, text: str, level: int) -> str:
        return text

    def table(self, t: Table) -> str:
        kw = {"tablefmt": self.tablefmt, "disable_numparse": True, "colalign": [c.align for c in t.columns]}
        rows = t.shown(wrap=self.wrap)
        text = tabulate(rows, headers=[c.name for c in t.columns], **kw) if t.header else tabulate(rows, **kw)
        return f"{self.heading(t.title, 2)}\n{text}" if t.title else text

    def text(self, x: Text) -> str:
        if x.kind == "heading":
            return self.heading(x.lines[0], x.level)
        prefix = "warning: " if x.kind == "warning" else ""
        return "\n".join(prefix + line for line in x.lines)

    def write(self, doc: Document) -> str:
        blocks = []
        for item in doc.items:
            if isinstance(item, Table):
                blocks.append(self.table(item))
                if item.notes:
                    blocks.append("\n".join(item.notes))
            else:
                blocks.append(self.text(item))
        return "\n\n".join(blocks) + ("\n" if doc.final_newline else "")


@Writer.register("table")
class ConsoleWriter(TextWriter):
    pass


@Writer.register("md")
class MarkdownWriter(TextWriter):
    tablefmt = "github"
    wrap = False

    def heading(self, text: str, level: int) -> str:
        return f"{'#' * level} {text}"


@Writer.register("csv")
class CsvWriter(Writer):
    """Every table's header and raw values (None empty), tables apart by an empty row; then the warnings."""

    def write(self, doc: Document) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        tables = doc.data if doc.data is not None else doc.tables
        if doc.csv_sections is not None:
            w.writerow(doc.csv_sections)
            w.writerows([[t.title, *row] for t in tables for row in t.rows])
        else:
            for i, t in enumerate(tables):
                if i:
                    w.writerow([])
                if t.header:
                    w.writerow([c.name for c in t.columns])
                w.writerows([["" if v is None else v for v in row] for row in t.rows])
        return buf.getvalue() + "".join(f"# warning: {x}\n" for x in doc.warning_lines())


@Writer.register("json")
class JsonWriter(Writer):
    """The objects' own JSON, else {"tables": [{title, columns, units, rows, notes}], "notes", "warnings"}."""

    def write(self, doc: Document) -> str:
        if doc.own_json is not None:
            return doc.own_json()
        out: dict[str, list] = {"tables": [], "notes": [], "warnings": []}
        title = ""
        # data tables stand for the tables shown; the texts (notes, warnings) stay
        items = doc.items if doc.data is None else [*doc.data, *(i for i in doc.items if not isinstance(i, Table))]
        for item in items:
            if isinstance(item, Table):
                out["tables"].append({"title": item.title or title, "columns": [c.name for c in item.columns],
                                      "units": [c.unit for c in item.columns], "rows": item.rows,
                                      "notes": item.notes})
            elif item.kind == "heading":
                title = item.lines[0]
            else:
                out["warnings" if item.kind == "warning" else "notes"] += item.lines
        return json.dumps(out, indent=2, default=str)
