from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# No test may reach a model hub: loading must work from local files alone, as in CI.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

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


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own embedding cache directory."""
    monkeypatch.setenv("ALIGNBENCH_CACHE", str(tmp_path / "embedding-cache"))


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
