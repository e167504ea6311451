import sys

import pytest

from alignbench.errors import DuplicatePluginError, InvalidParameterError, PluginLoadError, UnknownPluginError
from alignbench.registry import Registry


def test_unknown_name_lists_known_names_and_closest(registry):
    with pytest.raises(UnknownPluginError) as info:
        registry.get("aligner", "procrustez")
    message = str(info.value)
    assert "Did you mean 'procrustes'?" in message
    for name in ("lstsq", "nullspace", "procrustes", "relative"):
        assert name in message


def test_duplicate_name_is_an_error_naming_both_sources():
    registry = Registry()
    registry.add("aligner", "same", "pkg_a:A", source="package-a 1.0")
    with pytest.raises(DuplicatePluginError, match="package-a 1.0.*package-b 2.0"):
        registry.add("aligner", "same", "pkg_b:B", source="package-b 2.0")


def test_targets_are_imported_only_when_used():
    registry = Registry()
    registry.add("aligner", "lazy", "json.tool:main", source="test")
    sys.modules.pop("json.tool", None)
    registry.get("aligner", "lazy")
    assert "json.tool" not in sys.modules
    assert callable(registry.load("aligner", "lazy"))
    assert "json.tool" in sys.modules


def test_a_target_that_fails_to_import_names_the_plugin_and_the_fix():
    registry = Registry()
    registry.add("aligner", "ghost", "no_such_module_anywhere:Ghost", source="ghost-pkg 0.1")
    with pytest.raises(PluginLoadError, match="ghost.*ghost-pkg 0.1.*ModuleNotFoundError.*Reinstall"):
        registry.load("aligner", "ghost")


def test_target_must_name_a_class_in_a_module():
    with pytest.raises(ValueError, match="module:Class"):
        Registry().add("aligner", "x", "justamodule", source="test")


def test_create_checks_parameters(registry):
    assert registry.create("aligner", "procrustes", {"dim": 8}).dim == 8
    with pytest.raises(InvalidParameterError, match="no parameter 'dimm'.*Did you mean 'dim'"):
        registry.create("aligner", "procrustes", {"dimm": 8})
