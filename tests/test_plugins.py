import subprocess
import sys

import pytest

from alignbench.errors import PluginLoadError
from alignbench.plugins import load_registry
from alignbench.testing import check_aligner
from fake_distributions import make_distribution


def test_builtins_come_through_entry_points():
    registry = load_registry(strict=True)
    builtins = {s.name: s.source for s in registry.specs() if s.source.startswith("alignbench ")}
    assert {"lstsq", "procrustes", "relative", "nullspace", "synthetic-gmm", "synthetic-correlated",
            "retrieval", "alignment-error"} <= set(builtins)
    assert builtins["procrustes"].endswith("[builtin-aligners]")


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(tmp_path, monkeypatch):
    make_distribution(tmp_path, "broken_on_import", "raise ImportError('needs a missing dependency')")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry(strict=False)
    assert "procrustes" in registry.names("aligner")
    [failure] = [f for f in registry.failures if "broken_on_import" in f.source]
    assert failure.stage == "import" and "needs a missing dependency" in failure.error


def test_strict_mode_raises_on_a_broken_plugin(tmp_path, monkeypatch):
    make_distribution(tmp_path, "broken_strict", "raise ImportError('boom')")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ALIGNBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="broken_strict.*boom"):
        load_registry()


def test_a_hook_that_raises_is_that_plugins_failure_only(tmp_path, monkeypatch):
    source = (
        "import alignbench\n"
        "@alignbench.hookimpl\n"
        "def alignbench_register_aligners(register):\n"
        "    raise RuntimeError('registration bug')\n"
    )
    make_distribution(tmp_path, "raises_in_hook", source)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry(strict=False)
    assert "procrustes" in registry.names("aligner")
    assert any("raises_in_hook" in f.source and "registration bug" in f.error for f in registry.failures)


def test_a_misspelt_hook_is_caught(tmp_path, monkeypatch):
    source = (
        "import alignbench\n"
        "@alignbench.hookimpl\n"
        "def alignbench_register_alligners(register):\n"
        "    pass\n"
    )
    make_distribution(tmp_path, "typo_hook", source)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry(strict=False)
    assert any("typo_hook" in f.source and f.stage == "register" and "alligners" in f.error
               for f in registry.failures)


def test_blocked_plugins_are_skipped(monkeypatch):
    monkeypatch.setenv("ALIGNBENCH_BLOCK_PLUGINS", "builtin-metrics")
    registry = load_registry()
    assert registry.names("metric") == []
    assert "procrustes" in registry.names("aligner")


def test_listing_plugins_imports_no_heavy_module():
    code = (
        "import sys, alignbench.cli\n"
        "from alignbench.plugins import load_registry\n"
        "load_registry()\n"
        "heavy = [m for m in ('torch', 'transformers', 'alignbench_plugins.aligners.procrustes') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_example_third_party_plugin_is_discovered(example_plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(example_plugin_site))
    registry = load_registry(strict=True)
    spec = registry.get("aligner", "example-ridge")
    assert spec.source == "alignbench-example 0.1.0 [example]"


def test_the_example_plugin_passes_the_conformance_suite_the_readme_shows(example_plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(example_plugin_site))
    registry = load_registry(strict=True)
    ridge = registry.create("aligner", "example-ridge", {})
    assert check_aligner(ridge) == 16  # the 2 parameter checks and the 14 behavioural ones
