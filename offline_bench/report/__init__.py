"""Rendering: console tables, the HTML page, charts and PNG plots."""
