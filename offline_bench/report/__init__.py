"""Rendering: every command's output as tables (`formats.render(kind, fmt, *objects)`: a builder in `tables/`
makes a `table.Document`, a `writers.Writer` writes it), the HTML page, charts and PNG plots."""
