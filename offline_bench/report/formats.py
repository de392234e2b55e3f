"""The one way commands render: `render(kind, fmt, *objects)`; `check_format(kind, fmt)` before any work.

Interface kept stable for the CLI while the renderers move here (issue 28: one table path)."""

from __future__ import annotations

from offline_bench.core.formats import check_format, formats_of, render, renders

__all__ = ["check_format", "formats_of", "render", "renders"]
