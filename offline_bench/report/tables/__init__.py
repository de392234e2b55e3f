"""One builder per kind of output: `document(*objects) -> Document`, written in any format by report.writers.

report.formats maps each kind to its builder; the modules here only turn result objects into tables and text.
"""
