"""`presets`: the built-in models, their shapes, parameters and KV bytes per token."""

from __future__ import annotations

import json

from offline_bench.report.table import Column, Document, Style, Table, fmt

BILLIONS = Style(".3f", ints=None, suffix=" B")
MILLIONS = Style(".2f", ints=None, suffix=" M")


def count(n: int) -> str:
    return fmt(n / 1e9, BILLIONS) if n >= 1e8 else fmt(n / 1e6, MILLIONS)


def document(rows: list[dict]) -> Document:
    """`rows`: model.presets.preset_rows(); numbers go right, parameter counts in B or M."""
    shown = [{**r, "params": count(r["params"]), "active_params": count(r["active_params"])} for r in rows]
    names = list(shown[0]) if shown else []
    columns = [Column(n, align="decimal" if isinstance(shown[0][n], int) else "left") for n in names]
    return Document([Table(columns, [[r[n] for n in names] for r in shown])], final_newline=False,
                    own_json=lambda: json.dumps(rows, indent=2))
