"""Faulty third-party plugins, installed as fake distributions beside the built-ins.

Each fault must stay that plugin's own failure: every built-in still loads under its own source,
the fault is recorded as one line naming the plugin, and strict mode turns it into an error.
"""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignbench.errors import PluginLoadError
from alignbench.plugins import load_registry
from fake_distributions import make_distribution

SUPPORT = Path(__file__).parent / "support"

HOOK = "import alignbench\n@alignbench.hookimpl\ndef alignbench_register_aligners(register):\n"
VALID = (
    "import alignbench\n"
    "class Own(alignbench.Aligner):\n"
    "    name = {name!r}\n"
    "    def __init__(self): pass\n"
    "    def _fit(self, xa, ya, xu, yu): pass\n"
    "    def _transform_x(self, x): return x\n"
    "    def _transform_y(self, y): return y\n"
)


def _builtins() -> dict[str, str]:
    """(kind, name) -> source of every built-in, loaded with no other plugin installed."""
    return {(s.kind, s.name): s.source for s in load_registry(strict=True).specs()}


BUILTINS = _builtins()


# (dist / module name, entry-point name or None, module source, failure stage, text the failure shows)
FAULTS = {
    "import-error": ("fault_import", None, "raise ImportError('needs a missing dependency')",
                     "import", "ImportError: needs a missing dependency"),
    "exit-at-import": ("fault_exit", None, "import sys\nsys.exit(3)\n", "import", "SystemExit: 3"),
    "hook-raises": ("fault_hook", None, HOOK + "    raise RuntimeError('registration bug')\n",
                    "alignbench_register_aligners", "RuntimeError: registration bug"),
    "hook-exits": ("fault_hook_exit", None, HOOK + "    raise SystemExit('bye')\n",
                   "alignbench_register_aligners", "SystemExit: bye"),
    "duplicate-sorting-first": ("aaa_dup", None, VALID.format(name="procrustes") + HOOK
                                + "    register('procrustes', Own)\n",
                                "register aligner 'procrustes'", "registered twice: by alignbench 0.1.0 "
                                "[builtin-aligners] and by aaa_dup 0.1 [aaa_dup]"),
    "duplicate-sorting-last": ("zzz_dup", None, VALID.format(name="procrustes") + HOOK
                               + "    register('procrustes', Own)\n",
                               "register aligner 'procrustes'", "registered twice: by alignbench 0.1.0 "
                               "[builtin-aligners] and by zzz_dup 0.1 [zzz_dup]"),
    "invalid-class": ("fault_class", None, "import alignbench\n"
                      "class Half(alignbench.Aligner):\n    name = 'half'\n"
                      "    def _fit(self, xa, ya, xu, yu): pass\n" + HOOK + "    register('half', Half)\n",
                      "register aligner 'half'", "Half does not implement _transform_x, _transform_y"),
    "not-a-component": ("fault_kind", None, "class Thing:\n    name = 'thing'\n" + HOOK
                        + "    register('thing', Thing)\n",
                        "register aligner 'thing'", "not a subclass of alignbench.Aligner"),
    "misnamed-class": ("fault_misnamed", None, VALID.format(name="other") + HOOK + "    register('own', Own)\n",
                       "register aligner 'own'", "Own.name is 'other'; set name = 'own'"),
    "unsafe-name": ("fault_name", None, VALID.format(name="../../x") + HOOK + "    register('../../x', Own)\n",
                    "register aligner '../../x'", "fault_name 0.1 [fault_name] registered aligner '../../x'"),
    "misspelt-hook": ("fault_typo", None, "import alignbench\n@alignbench.hookimpl\n"
                      "def alignbench_register_aligner(register):\n    pass\n",
                      "register", "unknown hook 'alignbench_register_aligner'"),
    "misspelt-hook-undecorated": ("fault_typo_plain", None, "def alignbench_register_aligner(register):\n    pass\n",
                                  "register", "alignbench_register_aligner is not an alignbench hook (did you "
                                  "mean alignbench_register_aligners?"),
    "hook-not-decorated": ("fault_plain", None, "def alignbench_register_aligners(register):\n    pass\n",
                           "register", "not decorated with @alignbench.hookimpl"),
}


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path for fake distributions; their modules are forgotten afterwards, so
    that a later test's module of the same name is imported afresh."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def _install(site, fault):
    name, entry_point, source, _, _ = FAULTS[fault]
    make_distribution(site, name, source, entry_point)
    return name


@pytest.mark.parametrize("fault", FAULTS)
def test_a_faulty_plugin_is_isolated_and_reported_in_one_line(site, fault):
    name = _install(site, fault)
    _, _, _, stage, text = FAULTS[fault]
    registry = load_registry(strict=False)
    loaded = {(s.kind, s.name): s.source for s in registry.specs()}
    assert {key: loaded.get(key) for key in BUILTINS} == BUILTINS  # every built-in, under its own source
    mine = [f for f in registry.failures if f.source == f"{name} 0.1 [{name}]"]
    assert [f.stage for f in mine] == [stage], registry.failures
    assert text in mine[0].error and "\n" not in mine[0].error
    assert len(registry.failures) == 1, "a fault must not be blamed on another plugin"


@pytest.mark.parametrize("fault", FAULTS)
def test_strict_mode_makes_each_fault_an_error(site, fault, monkeypatch):
    name = _install(site, fault)
    monkeypatch.setenv("ALIGNBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=f"strict mode.*{name} 0.1"):
        load_registry()


def test_a_duplicate_rejects_only_the_duplicate(site):
    """Before: the plugin sorting last won 'procrustes' and the built-in hook stopped at the clash,
    losing 'relative' and everything after it; the warning blamed the built-in."""
    make_distribution(site, "aaa_dup", VALID.format(name="procrustes") + HOOK
                      + "    register('procrustes', Own)\n    register('aaa-own', type('AaaOwn', (Own,), {'name': 'aaa-own'}))\n")
    make_distribution(site, "zzz_dup", VALID.format(name="procrustes") + HOOK
                      + "    register('procrustes', Own)\n    register('zzz-own', type('ZzzOwn', (Own,), {'name': 'zzz-own'}))\n")
    registry = load_registry(strict=False)
    assert registry.get("aligner", "procrustes").source == "alignbench 0.1.0 [builtin-aligners]"
    assert registry.load("aligner", "procrustes").__module__ == "alignbench_plugins.aligners.procrustes"
    assert {"relative", "nullspace", "aaa-own", "zzz-own"} <= set(registry.names("aligner"))
    assert sorted(f.source for f in registry.failures) == ["aaa_dup 0.1 [aaa_dup]", "zzz_dup 0.1 [zzz_dup]"]


def test_an_entry_point_named_like_a_builtin_one_loads_beside_it(site, caplog):
    make_distribution(site, "evil_clash", VALID.format(name="clash-own") + HOOK + "    register('clash-own', Own)\n",
                      entry_point="builtin-aligners")
    with caplog.at_level(logging.WARNING, logger="alignbench.plugins"):
        registry = load_registry(strict=True)
    loaded = {(s.kind, s.name): s.source for s in registry.specs()}
    assert {key: loaded.get(key) for key in BUILTINS} == BUILTINS
    assert registry.get("aligner", "clash-own").source == "evil_clash 0.1 [builtin-aligners]"
    [warning] = [r.getMessage() for r in caplog.records]
    assert "evil_clash 0.1 [builtin-aligners]" in warning and "alignbench 0.1.0 [builtin-aligners]" in warning
    assert "'evil_clash:builtin-aligners'" in warning


def test_blocking_a_clashing_entry_point_by_distribution_keeps_the_builtin(site, monkeypatch):
    make_distribution(site, "evil_clash2", VALID.format(name="clash-own") + HOOK + "    register('clash-own', Own)\n",
                      entry_point="builtin-aligners")
    monkeypatch.setenv("ALIGNBENCH_BLOCK_PLUGINS", "evil_clash2:builtin-aligners")
    registry = load_registry(strict=True)
    assert "clash-own" not in registry.names("aligner") and "procrustes" in registry.names("aligner")


def test_a_plugin_calling_sys_exit_at_import_does_not_take_the_cli_down(site):
    """Before: `alignbench list` exited with status 3 and printed nothing."""
    _install(site, "exit-at-import")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(SUPPORT), os.environ.get("PYTHONPATH", "")])}
    env.pop("ALIGNBENCH_STRICT_PLUGINS", None)
    done = subprocess.run([sys.executable, "-m", "alignbench", "list", "--kind", "aligner"], capture_output=True,
                          text=True, env=env, cwd=site)
    assert done.returncode == 0, done.stderr
    assert "procrustes" in done.stdout
    assert "fault_exit 0.1 [fault_exit] (import): SystemExit: 3" in done.stderr


def test_a_misspelt_hook_leaves_check_pending_clean_for_the_next_plugins(site):
    _install(site, "misspelt-hook")
    make_distribution(site, "zzz_fine", VALID.format(name="zzz-fine") + HOOK + "    register('zzz-fine', Own)\n")
    registry = load_registry(strict=False)
    assert "zzz-fine" in registry.names("aligner")
    assert [f.source for f in registry.failures] == ["fault_typo 0.1 [fault_typo]"]


def test_an_invalid_lazy_target_is_listed_then_fails_in_one_line_when_used(site):
    make_distribution(site, "fault_lazy", HOOK + "    register('half', 'lazy_targets:HalfAligner')\n")
    registry = load_registry(strict=True)  # listing does not import the target (tests/support is on sys.path)
    assert registry.get("aligner", "half").source == "fault_lazy 0.1 [fault_lazy]"
    with pytest.raises(PluginLoadError, match="aligner 'half' from fault_lazy 0.1.*does not implement"):
        registry.create("aligner", "half")
