from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS / "support"))  # the test-only plugin modules

import counting_plugin  # noqa: E402

from alignbench.plugins import load_registry  # noqa: E402
from alignbench.store import ResultStore  # noqa: E402


@pytest.fixture
def registry():
    """Installed plugins (the built-ins come through their entry points) plus the test plugin."""
    return load_registry(extra=[counting_plugin])


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "results.sqlite") as results:
        yield results


@pytest.fixture(autouse=True)
def _reset_interrupt():
    counting_plugin.CountingAligner.interrupt_at = None
    yield
    counting_plugin.CountingAligner.interrupt_at = None


@pytest.fixture(scope="session")
def example_plugin_site(tmp_path_factory) -> Path:
    """tests/plugin_example installed by pip, as a user would, into a directory of its own."""
    target = tmp_path_factory.mktemp("example-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(TESTS / "plugin_example")],
        check=True,
    )
    return target
