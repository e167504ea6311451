import sys

import pytest

from alignbench.errors import DuplicatePluginError, InvalidParameterError, PluginLoadError, UnknownPluginError
from alignbench.registry import InvalidRegistrationError, Registry


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
    registry.add("aligner", "lazy", "lazy_targets:LazyAligner", source="test")
    sys.modules.pop("lazy_targets", None)
    registry.get("aligner", "lazy")
    assert "lazy_targets" not in sys.modules
    assert registry.load("aligner", "lazy").__name__ == "LazyAligner"
    assert "lazy_targets" in sys.modules


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


def test_a_duplicate_keeps_the_first_registration():
    registry = Registry()
    registry.add("aligner", "same", "pkg_a:A", source="package-a 1.0")
    with pytest.raises(DuplicatePluginError, match="the one from package-a 1.0 is kept"):
        registry.add("aligner", "same", "pkg_b:B", source="package-b 2.0")
    assert registry.get("aligner", "same").source == "package-a 1.0"


def test_a_rejected_registration_is_recorded_and_the_next_one_goes_on():
    registry = Registry()
    register = registry.registrar("aligner", "messy-pkg 1.0")
    register("lazy", "lazy_targets:LazyAligner")
    register("lazy", "lazy_targets:LazyAligner")
    register("../../x", "lazy_targets:LazyAligner")
    register("ok-name", "lazy_targets:LazyAligner")
    assert registry.names("aligner") == ["lazy", "ok-name"]
    assert [f.stage for f in registry.failures] == ["register aligner 'lazy'", "register aligner '../../x'"]
    assert all(f.source == "messy-pkg 1.0" and "\n" not in f.error for f in registry.failures)


@pytest.mark.parametrize("name", ["../../x", "a/b", "Procrustes", "", " x", "-x", ".hidden", "x y", "naïve", 3])
def test_names_that_are_not_safe_file_names_are_rejected(name):
    with pytest.raises(InvalidRegistrationError, match="bad-pkg 0.1 registered aligner .*: a name is lower-case"):
        Registry().add("aligner", name, "lazy_targets:LazyAligner", source="bad-pkg 0.1")


@pytest.mark.parametrize("name", ["procrustes", "fmap-spectral", "ot_v1.2", "0-shot"])
def test_ordinary_names_are_accepted(name):
    Registry().add("metric", name, "m:M", source="test")


@pytest.mark.parametrize("cls, message", [
    ("HalfAligner", "HalfAligner does not implement _transform_y"),
    ("NotAnAligner", "class NotAnAligner, not a subclass of alignbench.Aligner"),
    ("Misnamed", "Misnamed.name is 'something-else'; set name = 'half'"),
])
def test_a_class_that_is_not_a_valid_component_is_rejected_at_registration(cls, message):
    import lazy_targets

    with pytest.raises(InvalidRegistrationError, match=f"aligner 'half' from bad-pkg 0.1.*{message}"):
        Registry().add("aligner", "half", getattr(lazy_targets, cls), source="bad-pkg 0.1")


def test_a_class_of_another_kind_is_rejected():
    import lazy_targets

    with pytest.raises(InvalidRegistrationError, match="not a subclass of alignbench.Metric"):
        Registry().add("metric", "lazy", lazy_targets.LazyAligner, source="test")


@pytest.mark.parametrize("cls, message", [
    ("HalfAligner", "does not implement _transform_y"),
    ("NotAnAligner", "not a subclass of alignbench.Aligner"),
    ("Misnamed", "name is 'something-else'"),
])
def test_a_lazy_target_is_checked_when_it_is_loaded(cls, message):
    registry = Registry()
    registry.add("aligner", "half", f"lazy_targets:{cls}", source="bad-pkg 0.1")  # listing stays cheap
    for use in (lambda: registry.load("aligner", "half"), lambda: registry.create("aligner", "half")):
        with pytest.raises(PluginLoadError, match=message) as info:
            use()
        assert "\n" not in str(info.value) and "bad-pkg 0.1" in str(info.value)


def test_a_lazy_target_that_exits_at_import_is_a_load_error(tmp_path, monkeypatch):
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    registry.add("aligner", "quitter", "exits_on_import:Quitter", source="quitter 0.1")
    with pytest.raises(PluginLoadError, match="quitter 0.1.*SystemExit: 3"):
        registry.load("aligner", "quitter")
