"""mkdocs hook: the site carries one HTML report per result set of docs/results (`reports/NAME.html`) and the sets'
plots (a sweep's `plots/*.png`, a phases result's NAME.png beside its JSON), drawn from the committed JSON at build
time, so no generated page or image is kept in git. A set with nothing `report` can show (e.g.
vs-vllm-bench: another tool's comparisons) gets none; the gallery (docs/results.md) links the others, and
`mkdocs build --strict` fails if a link names a report that was not built."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "results"


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    from offline_bench import BenchError, write_plots, write_report

    with tempfile.TemporaryDirectory() as tmp:
        for d in sorted(p for p in RESULTS.iterdir() if p.is_dir()):
            plots = Path(tmp) / "plots" / d.name
            for rel in write_plots(d, plots):
                files.append(File.generated(config, f"results/{d.name}/{rel.as_posix()}",
                                            content=(plots / rel).read_bytes()))
            try:
                path = write_report([str(d)], Path(tmp) / f"{d.name}.html", f"offline-bench results: {d.name}")
            except BenchError:  # nothing reportable in the set
                continue
            files.append(File.generated(config, f"reports/{d.name}.html", content=path.read_bytes()))
    return files
