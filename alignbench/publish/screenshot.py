"""A screenshot of the site's index in the system's headless Chromium (Playwright drives it; no browser
is downloaded). The README's image is made with::

    alignbench publish --out site && python -m alignbench.publish.screenshot site index.png
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import AlignbenchError

CHROMIUM_ENV = "ALIGNBENCH_CHROMIUM"
VIEWPORT = {"width": 1280, "height": 900}


def find_chromium() -> str:
    """The Chromium to drive: $ALIGNBENCH_CHROMIUM, else Debian's chromium on PATH."""
    for candidate in (os.environ.get(CHROMIUM_ENV), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    raise AlignbenchError(f"no Chromium found: install Debian's (apt-get install chromium; .ci/run does) or set "
                          f"${CHROMIUM_ENV} to a Chromium binary.")


def launch(playwright):
    # --no-sandbox: CI containers run as root, where Chromium's sandbox refuses to start.
    return playwright.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])


def screenshot(site: Path, png: Path, browser=None) -> Path:
    """Save the top of ``site``'s index page as ``png``; ``browser``: a launched Playwright browser to
    use (one is started otherwise)."""
    index = (site / "index.html").resolve()
    if not index.exists():
        raise AlignbenchError(f"{index} does not exist; run `alignbench publish --out {site}` first.")
    png.parent.mkdir(parents=True, exist_ok=True)
    if browser is not None:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(index.as_uri())
        page.screenshot(path=str(png))
        page.close()
        return png
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise AlignbenchError("Playwright is not installed: pip install -e '.[site]'.") from None
    with sync_playwright() as playwright:
        started = launch(playwright)
        try:
            return screenshot(site, png, started)
        finally:
            started.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m alignbench.publish.screenshot SITE_DIR OUT.png")
    try:
        print(screenshot(Path(sys.argv[1]), Path(sys.argv[2])))
    except AlignbenchError as exc:
        sys.exit(f"Error: {exc}")
