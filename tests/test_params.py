from typing import Literal

import pytest

from alignbench.errors import InvalidParameterError
from alignbench.params import build, get_params, parse_assignment


class Component:
    def __init__(self, dim: int | None = None, alpha: float = 1.0, mode: Literal["a", "b"] = "a",
                 ks: tuple[int, ...] = (1, 5), flag: bool = True):
        self.dim, self.alpha, self.mode, self.ks, self.flag = dim, alpha, mode, ks, flag


def test_effective_parameters_include_defaults():
    assert get_params(build(Component, {"dim": 3}, label="c")) == {
        "dim": 3, "alpha": 1.0, "mode": "a", "ks": (1, 5), "flag": True}


def test_ints_widen_to_float_and_lists_become_tuples():
    made = build(Component, {"alpha": 2, "ks": [1, 10]}, label="c")
    assert made.alpha == 2.0 and isinstance(made.alpha, float)
    assert made.ks == (1, 10)


@pytest.mark.parametrize("params, message", [
    ({"dim": "64"}, "'dim' must be int or null"),
    ({"dim": True}, "'dim' must be int or null"),
    ({"mode": "c"}, r"must be one of \['a', 'b'\]"),
    ({"flag": 1}, "'flag' must be bool"),
    ({"ks": 5}, "'ks' must be a list"),
    ({"alpah": 1.0}, "Did you mean 'alpha'"),
])
def test_wrong_parameters_are_rejected_with_the_reason(params, message):
    with pytest.raises(InvalidParameterError, match=message):
        build(Component, params, label="c")


def test_assignments_are_parsed_as_json():
    assert parse_assignment("procrustes.dim=64") == ("procrustes", "dim", 64)
    assert parse_assignment("procrustes.normalize=false") == ("procrustes", "normalize", False)
    assert parse_assignment("retrieval.ks=[1,5]") == ("retrieval", "ks", [1, 5])
    assert parse_assignment("x.mode=pca") == ("x", "mode", "pca")  # not JSON: a plain string
    with pytest.raises(InvalidParameterError, match="NAME.KEY=VALUE"):
        parse_assignment("dim=64")


class Unresolvable:
    def __init__(self, alpha: "NoSuchType" = 1.0):  # noqa: F821 - a plugin's annotation that names nothing
        self.alpha = alpha


def test_an_annotation_that_names_nothing_is_one_line_naming_the_component():
    from alignbench.errors import PluginLoadError
    from alignbench.params import numeric_parameters

    for call in (lambda: build(Unresolvable, {}, label="aligner 'x'"), lambda: numeric_parameters(Unresolvable)):
        with pytest.raises(PluginLoadError) as caught:
            call()
        message = str(caught.value)
        assert "NameError: name 'NoSuchType' is not defined" in message and "\n" not in message
        assert "parameter annotations that cannot be resolved" in message
    with pytest.raises(PluginLoadError, match="^aligner 'x' "):
        build(Unresolvable, {}, label="aligner 'x'")
