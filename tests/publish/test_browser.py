"""The site in a real headless Chromium (Debian's, driven by Playwright; .ci/run installs it).

Without Chromium these tests FAIL with the install command, so that CI cannot pass them by skipping;
ALIGNBENCH_SKIP_BROWSER=1 skips them on a machine where that is a known choice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import numpy as np
import pytest

from alignbench.errors import AlignbenchError
from alignbench.publish.screenshot import launch, screenshot

COMMITTED = Path(__file__).parent.parent.parent / "leaderboards"
SKIP = os.environ.get("ALIGNBENCH_SKIP_BROWSER") == "1"
pytestmark = pytest.mark.skipif(SKIP, reason="ALIGNBENCH_SKIP_BROWSER=1")
# Read in the page: a table's body as text, its header texts, one column's sort keys.
BODY_TEXT = "t => Array.from(t.tBodies[0].rows, r => Array.from(r.cells, c => c.textContent.trim()))"
HEADER_TEXT = "t => Array.from(t.tHead.rows[0].cells, c => c.textContent.trim())"
SORT_KEYS = "(t, column) => Array.from(t.tBodies[0].rows, r => r.cells[column].getAttribute('data-sort'))"


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -e '.[test]' (or set ALIGNBENCH_SKIP_BROWSER=1 to skip)")
    with sync_playwright() as playwright:
        try:
            chromium = launch(playwright)
        except AlignbenchError as exc:
            pytest.fail(f"{exc} (or set ALIGNBENCH_SKIP_BROWSER=1 to skip the browser tests)")
        yield chromium
        chromium.close()


class Visit:
    """A page opened with every console message and request recorded; requests outside the site are
    blocked and recorded."""

    def __init__(self, browser, site: Path, name: str, javascript: bool = True):
        self.site = site.resolve()
        self.context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._route)
        self.page.goto((self.site / name).as_uri())

    def _route(self, route):
        url = route.request.url
        if self.inside(url):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def inside(self, url: str) -> bool:
        parsed = urlparse(url)
        return parsed.scheme == "file" and Path(unquote(parsed.path)).resolve().is_relative_to(self.site)

    def table(self, selector: str) -> list[list[str]]:
        return self.page.eval_on_selector(selector, BODY_TEXT)

    def headers(self, selector: str) -> list[str]:
        return self.page.eval_on_selector(selector, HEADER_TEXT)

    def sort_values(self, selector: str, column: int) -> list[str]:
        return self.page.eval_on_selector(selector, SORT_KEYS, column)

    def close(self):
        self.context.close()


def pages_of(site: Path) -> list[str]:
    return sorted(p.name for p in site.glob("*.html"))


def seed_summaries(payload: dict, setting: str, metric: str) -> dict[tuple[str, int], list[float]]:
    """From the JSON alone: (aligner, anchors) -> the finished seeds' values of ``metric``."""
    out: dict[tuple[str, int], list[float]] = {}
    for cell in payload["cells"]:
        if cell["setting"] == setting:
            values = out.setdefault((cell["aligner"], cell["anchors"]), [])
            if cell["status"] == "ok" and cell.get(metric) is not None:
                values.append(cell[metric])
    return out


def expected_text(values: list[float]) -> str:
    if not values:
        return None
    std = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{100 * np.mean(values):.1f} ± {100 * std:.1f}"


@pytest.mark.parametrize("which", ["committed", "tiny"])
def test_every_page_loads_without_console_errors_or_outside_requests(browser, committed_site, tiny_site, which):
    site = committed_site.out if which == "committed" else tiny_site.site
    names = pages_of(site)
    assert "index.html" in names and len(names) >= 2
    for name in names:
        visit = Visit(browser, site, name)
        assert visit.console == [] and visit.errors == [], (name, visit.console, visit.errors)
        assert visit.outside == [], (name, visit.outside)
        assert visit.page.locator("table.sortable th button").count() > 0, f"{name}: sort.js did not run"
        visit.close()


def test_headline_tables_hold_exactly_the_numbers_of_the_json(browser, committed_site):
    site = committed_site.out
    checked = 0
    for path in sorted(COMMITTED.glob("*.json")):
        payload = json.loads(path.read_text())
        if "cells" not in payload:
            continue
        [setting] = payload["settings"]  # the committed boards have one setting each
        visit = Visit(browser, site, f"{payload['dataset']}.html")
        for metric in ("mean_R@1", "class_mean_R@1"):
            expected = seed_summaries(payload, setting, metric)
            if not any(expected.values()):
                continue
            selector = f'table[data-table="{metric}"]'
            headers = visit.headers(selector)
            rows = visit.table(selector)
            assert sorted(r[0] for r in rows) == sorted({a for a, _ in expected}), metric
            for row in rows:
                for level, text in zip(headers[1:], row[1:]):
                    want = expected_text(expected.get((row[0], int(level)), []))
                    if want is None:  # no finished seed: the status, as the markdown shows it
                        assert text in ("n/a", "failed"), (path.name, metric, row[0], level)
                    else:
                        assert text == want, (path.name, metric, row[0], level)
                    checked += 1
        # Every metric, to the last digit: the all-metrics table's sort values are the JSON's means.
        headers = visit.headers('table[data-table="all-metrics"]')
        rows = visit.page.eval_on_selector('table[data-table="all-metrics"]',
                                           "t => Array.from(t.tBodies[0].rows, r => Array.from(r.cells, c => c.dataset.sort))")
        assert len(rows) == len({(c["aligner"], c["anchors"]) for c in payload["cells"]})
        for row in rows:
            aligner, anchors = row[0], int(float(row[1]))
            for metric, value in zip(headers[3:], row[3:]):
                values = seed_summaries(payload, setting, metric)[(aligner, anchors)]
                if values:
                    assert float(value) == pytest.approx(np.mean(values), rel=1e-12, abs=1e-15), (aligner, anchors, metric)
                else:
                    assert value == ""
                checked += 1
        visit.close()
    assert checked > 1000  # three boards, ~30 metrics each: the check cannot pass by checking nothing


def test_sorting_a_column_reorders_the_rows(browser, committed_site):
    visit = Visit(browser, committed_site.out, "synthetic-correlated.html")
    selector = 'table[data-table="mean_R@1"]'
    before = visit.table(selector)
    column = visit.headers(selector).index("100")
    assert column > 0
    header = visit.page.locator(f"{selector} thead th").nth(column).locator("button")
    header.click()
    ascending = [float(v) for v in visit.sort_values(selector, column) if v]
    assert ascending == sorted(ascending) and len(ascending) >= 5
    header.click()
    descending = [v for v in visit.sort_values(selector, column)]
    numbers = [float(v) for v in descending if v]
    assert numbers == sorted(numbers, reverse=True)
    assert descending[len(numbers):] == [""] * (len(descending) - len(numbers))  # n/a rows last either way
    after = visit.table(selector)
    assert sorted(map(tuple, after)) == sorted(map(tuple, before))  # the same rows, whole, in another order
    # By name: text comparison on the aligner column.
    visit.page.locator(f"{selector} thead th").nth(0).locator("button").click()
    names = [r[0] for r in visit.table(selector)]
    assert names == sorted(names)
    visit.close()


def test_each_chart_has_one_series_per_aligner(browser, committed_site, tiny_site):
    visit = Visit(browser, committed_site.out, "index.html")
    boards = visit.page.locator("section.board")
    assert boards.count() == len([p for p in COMMITTED.glob("*.json") if "cells" in json.loads(p.read_text())])
    for i in range(boards.count()):
        board = boards.nth(i)
        dataset = board.locator("h2 a").inner_text()
        payload = json.loads((COMMITTED / f"{dataset}.json").read_text())
        series = board.locator("svg.chart g.series")
        assert sorted(series.nth(j).get_attribute("data-aligner") for j in range(series.count())) == \
            sorted({c["aligner"] for c in payload["cells"]})
        assert board.locator("svg.chart polyline").count() == series.count()
    visit.close()
    tiny = Visit(browser, tiny_site.site, "index.html")
    names = sorted(tiny.page.locator("svg.chart g.series").evaluate_all("gs => gs.map(g => g.dataset.aligner)"))
    assert names == ["lstsq [Ada Example]", "procrustes", "relative"]
    tiny.close()


@pytest.mark.parametrize("which", ["committed", "tiny"])
def test_every_link_resolves(browser, committed_site, tiny_site, which):
    site = (committed_site.out if which == "committed" else tiny_site.site).resolve()
    checked = 0
    for name in pages_of(site):
        visit = Visit(browser, site, name)
        targets = visit.page.eval_on_selector_all("a[href], img[src], link[href], script[src]",
                                                  "els => els.map(e => e.href || e.src)")
        for target in targets:
            url, fragment = urldefrag(target)
            assert visit.inside(url), (name, target)
            path = Path(unquote(urlparse(url).path))
            assert path.is_file(), (name, target)
            if fragment and path.suffix == ".html":
                assert f'id="{fragment}"' in path.read_text(), (name, target)
            checked += 1
        visit.close()
    assert checked > (50 if which == "committed" else 10)


def test_pages_read_the_same_with_javascript_off(browser, committed_site):
    on = Visit(browser, committed_site.out, "fashion-mnist.html")
    off = Visit(browser, committed_site.out, "fashion-mnist.html", javascript=False)
    assert off.page.locator("table.sortable th button").count() == 0
    for selector in ('table[data-table="class_mean_R@1"]', 'table[data-table="all-metrics"]'):
        assert off.table(selector) == on.table(selector)
    assert off.page.locator("svg.chart g.series").count() == 7
    on.close()
    off.close()


def test_screenshot_of_the_index(committed_site, tmp_path_factory, browser):
    png = screenshot(committed_site.out, tmp_path_factory.mktemp("screenshots") / "index.png", browser)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a page with tables and charts, not a blank one
