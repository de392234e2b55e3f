"""Regenerate the HTML reports of docs/results (one per GPU result set, from the saved JSON: no GPU needed) and the
screenshots of each report kind in docs/ (headless Chromium through playwright, as the browser tests use it).

usage: python scripts/report_docs.py [--no-screenshots] [RESULT_SET ...]   (e.g. 70b-tp4: only that one's report)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from offline_bench import BenchError, write_report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
# (screenshot, report made from these result sets, the section to show, page height)
SHOTS = [
    ("report-run.png", ["h100-run/run-1000x512-256.json"], "#group-offline", 2600),
    ("report-serving.png", ["h100-offline-vs-serving"], "#group-compare", 1700),
    ("report-gap.png", ["h100-offline-vs-serving"], "#group-gap", 1500),
    ("report-sweep.png", ["h100-sweep"], "#group-sweep", 1900),
    ("report-phases.png", ["h100-phases"], "#group-phases", 1300),
]


def reports(names: list[str]) -> list[Path]:
    """One report per result set named (default: every folder of docs/results with something to report)."""
    out = []
    for d in sorted(p for p in RESULTS.iterdir() if p.is_dir() and (not names or p.name in names)):
        try:
            path = write_report([str(d)], RESULTS / f"{d.name}.html", f"offline-bench results: {d.name}")
        except BenchError as e:  # e.g. vs-vllm-bench: comparisons of its own, no report inputs
            print(f"{d.relative_to(ROOT)}: skipped ({str(e)[:80]}...)")
            continue
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 2**20:.2f} MiB")
        out.append(path)
    return out


def screenshots(tmp: Path) -> None:
    from playwright.sync_api import sync_playwright  # the test extra: only for the screenshots

    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        for name, inputs, selector, height in SHOTS:
            html = write_report([str(RESULTS / i) for i in inputs], tmp / f"{name}.html", "offline-bench report")
            page = browser.new_page(viewport={"width": 1200, "height": height})
            page.goto(html.as_uri())
            page.locator(selector).scroll_into_view_if_needed()
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
