"""Regenerate the HTML reports of docs/results (one per result set, from the saved JSON: no GPU needed) as
docs/results/SET.html, the sets' plots beside their JSON, and screenshots of the report's parts as docs/report-*.png
(headless Chromium through playwright, as the browser tests use it). All are build outputs, ignored by git.

usage: python scripts/report_docs.py [--no-screenshots] [RESULT_SET ...]   (e.g. 70b-tp4: only that one's report)
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from offline_bench import BenchError, write_plots, write_report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
WIDTH = 1280  # the page width the report is made to fit (tests/e2e/test_report.py checks it)
# (screenshot, report made from these result sets, the part to show, viewport height)
SHOTS = [
    ("report-findings.png", ["h100-offline-vs-serving", "h100-sweep"], "#findings", 1000),
    ("report-run.png", ["h100-run/run-1000x512-256.json.gz"], "#group-offline", 2600),
    ("report-serving.png", ["h100-offline-vs-serving"], "#group-compare", 1700),
    ("report-gap.png", ["h100-offline-vs-serving"], "#group-gap", 1500),
    ("report-sweep.png", ["h100-sweep"], "#group-sweep", 1900),
    ("report-phases.png", ["h100-phases"], "#group-phases", 1300),
]


def reports(names: list[str]) -> list[Path]:
    """One report per result set named (default: every folder of docs/results with something to report)."""
    out = []
    for d in sorted(p for p in RESULTS.iterdir() if p.is_dir() and (not names or p.name in names)):
        start = time.perf_counter()
        write_plots(d, d)  # the pages' images, beside their JSON (ignored by git, as the site draws its own)
        try:
            path = write_report([str(d)], RESULTS / f"{d.name}.html", f"offline-bench results: {d.name}")
        except BenchError as e:  # e.g. vs-vllm-bench: comparisons of its own, no report inputs
            print(f"{d.relative_to(ROOT)}: skipped ({str(e)[:80]}...)")
            continue
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 2**20:.2f} MiB, {time.perf_counter() - start:.1f} s")
        out.append(path)
    return out


def screenshots(tmp: Path) -> None:
    from playwright.sync_api import sync_playwright  # the test extra: only for the screenshots

    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    pages: dict[tuple[str, ...], Path] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        for name, inputs, selector, height in SHOTS:
            if tuple(inputs) not in pages:
                pages[tuple(inputs)] = write_report([str(RESULTS / i) for i in inputs], tmp / f"{name}.html",
                                                    "offline-bench report")
            page = browser.new_page(viewport={"width": WIDTH, "height": height})
            page.goto(pages[tuple(inputs)].as_uri())
            # a run's details are folded in the page: open them to show one
            page.evaluate(f"document.querySelectorAll('{selector} details.fold').forEach(d => d.open = true)")
            page.evaluate(f"document.querySelector('{selector}').scrollIntoView()")
            page.screenshot(path=str(ROOT / "docs" / name))
            print(f"docs/{name}")
        browser.close()


if __name__ == "__main__":
    reports([a for a in sys.argv[1:] if not a.startswith("--")])
    if "--no-screenshots" not in sys.argv:
        tmp = ROOT / ".report-tmp"
        tmp.mkdir(exist_ok=True)
        try:
            screenshots(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
