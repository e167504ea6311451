import numpy as np
import pytest

from alignbench.memo import content_key, memoize_by_content
from alignbench_plugins.aligners.fmap import FunctionalMapAligner, SpectralFunctionalMapAligner
from alignbench_plugins.geometry.graphs import graph_eigenbasis, self_knn


def test_equal_contents_share_a_result_and_anything_else_does_not():
    calls = []

    @memoize_by_content(maxsize=2)
    def total(x, scale=1.0):
        calls.append(1)
        return x.sum() * scale, x * scale

    x = np.arange(6.0).reshape(2, 3)
    first = total(x)
    assert total(x.copy()) is first  # another object, the same bytes
    total(x, scale=2.0)
    total(x.reshape(3, 2))  # same bytes, another shape
    total(x.astype(np.float32))  # same values, another dtype
    assert len(calls) == 4
    assert total.memo_info() == {"hits": 1, "misses": 4, "size": 2}
    with pytest.raises(ValueError, match="read-only"):
        first[1][0, 0] = 9.0  # what the next caller gets cannot be changed
    total.memo_clear()
    assert total.memo_info() == {"hits": 0, "misses": 0, "size": 0}


def test_the_least_recently_used_result_is_dropped():
    @memoize_by_content(maxsize=2)
    def double(x):
        return x * 2

    a, b, c = (np.full(3, v) for v in (1.0, 2.0, 3.0))
    double(a), double(b), double(a), double(c)  # b is the least recently used
    double(a)
    assert double.memo_info()["hits"] == 2
    double(b)
    assert double.memo_info()["misses"] == 4


def test_keys_tell_apart_what_can_change_a_result():
    x = np.zeros((2, 2), np.float32)
    assert content_key(x, 15) == content_key(x.copy(), 15)
    assert content_key(x, 15) != content_key(x, 16)
    assert content_key(x, seed=0) != content_key(x, seed=1)
    with pytest.raises(TypeError):
        content_key({"unhashable": 1})


def test_fmap_and_fmap_spectral_on_one_cell_build_each_eigenbasis_once_and_fit_as_without_reuse():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 12)).astype(np.float32)
    y = (x @ rng.standard_normal((12, 10)) + 0.1 * rng.standard_normal((300, 10))).astype(np.float32)
    args = (x[:20], y[:20], x[20:], y[20:][::-1].copy())
    graph_eigenbasis.memo_clear(), self_knn.memo_clear()
    fmap = FunctionalMapAligner().fit(*args)
    spectral = SpectralFunctionalMapAligner().fit(*args)
    assert graph_eigenbasis.memo_info() == {"hits": 2, "misses": 2, "size": 2}
    # fmap's two kNN searches; fmap-spectral's Nystrom extension weighs with the same two graphs.
    assert self_knn.memo_info() == {"hits": 2, "misses": 2, "size": 2}
    graph_eigenbasis.memo_clear(), self_knn.memo_clear()
    fresh = SpectralFunctionalMapAligner().fit(*args)
    np.testing.assert_array_equal(fresh.C_, spectral.C_)
    np.testing.assert_array_equal(fresh.transform_y(y), spectral.transform_y(y))
    assert fmap.eigvals_full_x_ is spectral.eigvals_full_x_


def test_a_sweep_runs_level_by_level_so_fmap_spectral_reuses_fmaps_eigenbases(registry, store):
    from alignbench.runner import Runner, Sweep

    small = ("synthetic-correlated", {"n_items": 300, "dim_x": 16, "dim_y": 12, "latent_dim": 4, "specific_dim": 4})
    sweep = Sweep(aligners=[("fmap", {}), ("fmap-spectral", {})], datasets=[small], levels=[5, 25, 50], seeds=[0],
                  metrics=[("retrieval", {})])
    graph_eigenbasis.memo_clear()
    summary = Runner(registry, store).run(sweep)
    assert summary.ran == 6
    # Each level: fmap builds the two eigenbases, fmap-spectral finds them (the memo holds 8).
    assert graph_eigenbasis.memo_info()["misses"] == 6 and graph_eigenbasis.memo_info()["hits"] == 6
