"""`report`: one self-contained HTML page, opened in a real browser (the system's Chromium, driven by playwright):
no console errors and no request leaving the file, every section present, every tagged number equal to the JSON
it came from, and a screenshot that is not blank (what needs no browser: tests/unit/test_report.py)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from offline_bench.report.inputs import load_items
from tests.helpers import MAX_MODEL_LEN, ROOT, cli

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
H100 = [ROOT / "docs/results" / d for d in ("h100-run", "h100-sweep", "h100-offline-vs-serving", "h100-phases")]
RUN_PARTS = ("Summary", "Throughput", "Latency", "Timeline", "KV cache and memory", "Environment and command")


@pytest.fixture(scope="module")
def browser():
    if BROWSER is None:
        pytest.skip("chromium is not installed: scripts/install.sh test installs Debian's chromium package (apt)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: scripts/install.sh test installs it (the test extra)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser, path: Path, width: int = 1200):
    """The page and everything it did wrong: console errors/warnings, script errors, any request off the file."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: problems.append(f"request: {r.url}") if not r.url.startswith("file:") else None)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, problems


def _json(path: str):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def _dig(doc, key: str):
    for part in key.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _check_numbers(page, sources: dict[str, object]) -> int:
    """Every tagged number of a known source equals its JSON field, as written and as shown."""
    marks = page.eval_on_selector_all("[data-key]", "els => els.map(e => [e.dataset.src, e.dataset.key, "
                                                    "e.dataset.value, e.textContent])")
    checked = 0
    for src, key, raw, text in marks:
        if src not in sources:
            continue
        value = _dig(sources[src], key)
        assert raw == repr(value), (src, key, raw, value)
        shown = float(text.replace(",", ""))
        assert shown == pytest.approx(value, rel=1e-3, abs=0.051), (src, key, text, value)
        checked += 1
    return checked


def _not_blank(page, path: Path) -> None:
    import matplotlib.image as mpimg  # matplotlib is heavy to import: only to read the screenshot back

    page.screenshot(path=str(path))
    pixels = mpimg.imread(str(path))
    assert pixels.std() > 0.05, "the screenshot is blank"


def _sources(paths: list[Path]) -> dict[str, object]:
    return {i.anchor: _json(i.path) for i in load_items([str(p) for p in paths])
            if i.kind in ("run", "phases", "gap") and Path(i.path).is_file()}


def test_report_of_the_h100_results_in_a_browser(capsys, browser, tmp_path):
    out = tmp_path / "r.html"
    rc, _, err = cli(capsys, "report", *map(str, H100), "--output", str(out), "--title", "H100 results")
    assert rc == 0, err
    size = out.stat().st_size
    assert 100_000 < size < 5 * 2**20 and "HTML report written to" in err
    text = out.read_text()
    assert "<script" not in text and not any(f'{a}="http' in text for a in ("src", "href"))  # nothing to fetch
    page, problems = _open(browser, out)
    groups = page.eval_on_selector_all("section[id^=group-]", "els => els.map(e => e.id)")
    assert groups == ["group-compare", "group-gap", "group-sweep", "group-phases", "group-offline", "group-serving",
                      "group-startup", "group-skipped"]
    runs = page.eval_on_selector_all("#group-offline section.item", "els => els.length")
    assert runs == 8  # h100-run's five and the three offline levels
    for part in RUN_PARTS:
        assert page.locator(f"#group-offline section.item h4:text-is('{part}')").count() == runs
    assert page.locator("svg.chart").count() >= 40
    assert _check_numbers(page, _sources(H100)) >= 150
    # what the H100 sweep's analysis answers is on the page
    sweep = page.inner_text("#group-sweep")
    assert "Knee: " in sweep and "Target concurrency: " in sweep and "No point failed." in sweep
    assert "Preemptions: preemption stops at gmu 0.9" in sweep
    _not_blank(page, tmp_path / "r.png")
    assert problems == []


def test_report_of_a_cpu_run_and_partial_results(capsys, browser, engine, tmp_path):
    """A run made in this session (timeline with preemption marks), beside a serving and an imported result that
    lack most of it: each shows what it has and says what is missing."""
    from offline_bench.core.config import EngineConfig, RunConfig, WorkloadConfig
    from offline_bench.measure.runner import run_benchmark

    cfg = RunConfig(engine=EngineConfig(model="preset:tiny-llama", max_model_len=MAX_MODEL_LEN),
                    workload=WorkloadConfig(num_prompts=24, input_len=64, output_len=32, warmup=1, request_rate=200.0),
                    concurrency=8, goodput_slo_ms={"ttft_ms": 60000.0})
    run = tmp_path / "cpu-run.json"
    run_benchmark(cfg, engine=engine).save(run)
    (tmp_path / "hand.yaml").write_text("name: hand\nruns:\n  - {concurrency: 10, ttft_s: 0.39, "
                                        "output_tokens_per_s: 355, total_output_tokens: 5130}\n")
    assert cli(capsys, "import", str(tmp_path / "hand.yaml"), "--output-dir", str(tmp_path))[0] == 0
    inputs = [run, ROOT / "docs/results/h100-offline-vs-serving/serving-c10.json.gz", tmp_path / "hand-c10.json",
              ROOT / "tests/fixtures/h100-vllm0.26-llama8b-startup.log"]
    out = tmp_path / "cpu.html"
    rc, _, err = cli(capsys, "report", *map(str, inputs), "--output", str(out))
    assert rc == 0, err
    page, problems = _open(browser, out)
    page.evaluate("document.querySelectorAll('details.fold').forEach(d => d.open = true)")  # as a reader does
    item = page.locator("#group-offline section.item")
    assert item.count() == 1 and "goodput req/s" in item.inner_text()
    titles = page.eval_on_selector_all("#group-offline svg.chart title", "els => els.map(e => e.textContent)")
    for title in ("TTFT and E2E, CDF over requests", "TPOT, CDF over requests",
                  "Per-request breakdown of typical requests",
                  "Running and waiting requests and KV cache use over the first pass"):
        assert title in titles
    serving = page.locator("#group-serving section.item").inner_text()
    assert "queue, prefill and decode inside the server are unknown" in serving
    hand = page.locator("#group-imported section.item").inner_text()
    assert "No timeline in this result" in hand and "No per-request records" in hand
    assert "weights_gib" in page.locator("#group-startup").inner_text()
    assert _check_numbers(page, _sources(inputs)) >= 40
    _not_blank(page, tmp_path / "cpu.png")
    assert problems == []


def test_the_report_leads_with_its_findings(capsys, browser, tmp_path):
    """At 1,280 px wide, the findings are the page's first section and start on the first screen; each finding's
    link lands on its evidence (a run's folded details open when linked to)."""
    out = tmp_path / "ovs.html"
    assert cli(capsys, "report", str(ROOT / "docs/results/h100-offline-vs-serving"), "--output", str(out))[0] == 0
    page, problems = _open(browser, out, width=1280)
    first = page.eval_on_selector("main > section", "e => [e.id, e.getBoundingClientRect().top]")
    assert first[0] == "findings" and 0 < first[1] < 900 * 0.5
    assert page.locator("#findings li").count() == 4  # offline vs serving, and one per explain-gap ladder
    assert "serving / offline output tok/s = 1.009, 1.008, 0.992" in page.inner_text("#findings")
    page.click("#findings li >> nth=0 >> a >> nth=2")  # the comparison at c=64
    top = page.eval_on_selector(":target", "e => [e.id, e.getBoundingClientRect().top]")
    assert top[0].startswith("cmp-") and abs(top[1]) < 5
    assert page.eval_on_selector("details.fold", "e => e.open") is False  # run details start folded
    page.click("#overview a >> nth=0")  # offline-c1's name in the overview opens its details
    target = page.eval_on_selector(":target", "e => [e.id, e.closest('details').open, e.innerText]")
    assert target[0].endswith("offline-c1-json") and target[1] is True
    assert "no distribution drawn below 20" in target[2]  # four requests: no CDF
    assert problems == []


def test_every_table_fits_a_1280_px_page(capsys, browser, tmp_path):
    """Every committed result in one page, every fold opened: no table wider than the viewport, and no sideways
    scrolling of the page."""
    out = tmp_path / "all.html"
    assert cli(capsys, "report", str(ROOT / "docs/results"), "--output", str(out))[0] == 0
    page, problems = _open(browser, out, width=1280)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    widths = page.eval_on_selector_all("table", "ts => ts.map(t => [t.closest('[id]').id, "
                                                "Math.ceil(t.getBoundingClientRect().right)])")
    assert len(widths) > 300
    assert [w for w in widths if w[1] > 1280] == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert problems == []
