"""What an aligner's transform_x / transform_y returns: one row of numbers per input, both sides as wide."""

import numpy as np
import pytest

from alignbench.errors import AlignbenchError
from alignbench.runner import Runner, Sweep
from counting_plugin import Shaped

X = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)


@pytest.mark.parametrize("side, how, said", [
    ("x", "none", "aligner 'shaped' transform_x returned None; return an (inputs, d) array of real numbers, one row per input"),
    ("y", "rows", "aligner 'shaped' transform_y returned 99 rows for 100 inputs; return an (inputs, d) array"),
    ("x", "3d", "aligner 'shaped' transform_x returned a 3-D array of shape (100, 4, 1); return an (inputs, d) array"),
    ("y", "text", "aligner 'shaped' transform_y returned str, not an array of numbers"),
])
def test_an_output_of_the_wrong_shape_is_one_line_naming_the_aligner(side, how, said):
    aligner = Shaped(**{f"{side}_out": how}).fit(X[:10], X[:10])
    with pytest.raises(AlignbenchError) as caught:
        getattr(aligner, f"transform_{side}")(X)
    message = str(caught.value)
    assert said in message and "\n" not in message and "diverged" not in message


def test_a_nested_list_of_the_right_shape_is_an_output():
    z = Shaped(x_out="list").fit(X[:10], X[:10]).transform_x(X)
    assert z.shape == (100, 4) and z.dtype == np.float32


@pytest.mark.parametrize("bad", [np.array([["1.5"] * 4] * 100), np.ones((100, 4), dtype=bool),
                                 np.ones((100, 4), dtype=complex)])
def test_text_booleans_and_complex_numbers_are_no_output(bad):
    """The same rules as any embeddings alignbench reads (arrays.as_embeddings): real numbers only."""
    from alignbench.arrays import returned_matrix

    with pytest.raises(AlignbenchError, match="not an array of numbers"):
        returned_matrix(bad, "aligner 'x' transform_x", 100, "input")


def test_sides_of_different_widths_fail_the_cell_in_one_line(registry, store):
    small = ("synthetic-correlated", {"n_items": 200, "dim_x": 16, "dim_y": 16, "latent_dim": 4, "specific_dim": 4})
    summary = Runner(registry, store).run(Sweep(aligners=[("shaped", {"y_out": "wide"}), ("shaped", {})],
                                                datasets=[small], levels=[10], seeds=[0]))
    [(cell, message)] = summary.failed
    assert cell.aligner == "shaped" and "\n" not in message
    assert "aligner 'shaped' maps x to 4 columns and y to 5; both sides must land in one space" in message
    assert summary.ran == 1  # the other shaped cell, whose sides agree


def test_an_object_array_of_real_numbers_is_an_output():
    """Python floats mixed with numpy scalars (or a nullable pandas frame without nulls) make an object array."""
    from alignbench.arrays import returned_matrix

    mixed = np.array([[1.0, np.float32(2.0), 3, np.int64(4)]] * 100, dtype=object)
    z = returned_matrix(mixed, "aligner 'x' transform_x", 100, "input")
    assert z.dtype == np.float32 and z[0].tolist() == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(AlignbenchError, match="not an array of numbers"):
        returned_matrix(np.array([[1.0, "2"]] * 100, dtype=object), "aligner 'x' transform_x", 100, "input")
