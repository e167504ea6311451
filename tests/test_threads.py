"""alignbench.threads: the one-thread BLAS scope, entered from several threads at once."""

import threading

import pytest
from threadpoolctl import threadpool_limits

from alignbench.threads import blas_threads, single_threaded


@pytest.fixture
def two_blas_threads():
    with threadpool_limits(limits=2, user_api="blas"):
        if blas_threads() != 2:
            pytest.skip("BLAS cannot be given two threads here")
        yield


def test_the_scope_limits_blas_and_restores_it(two_blas_threads):
    with single_threaded():
        assert blas_threads() == 1
        with single_threaded():
            assert blas_threads() == 1
        assert blas_threads() == 1  # the outer scope still holds it
    assert blas_threads() == 2
    with pytest.raises(RuntimeError), single_threaded():
        raise RuntimeError("a failing pass")
    assert blas_threads() == 2


@pytest.mark.parametrize("libraries", ["numpy's", "and faiss's"])
def test_scopes_of_several_threads_share_one_limit_and_restore_it_when_the_last_leaves(two_blas_threads, libraries):
    """The first thread in sets the limit, the last out restores it, whichever they are: with each
    thread restoring on its own, the one that entered second recorded 1 as the limit to restore.
    faiss brings an OpenBLAS threaded by OpenMP, whose limit holds per thread: each thread in the
    scope has it too (it failed when faiss was loaded, as in the whole test run)."""
    if libraries == "and faiss's":
        pytest.importorskip("faiss")
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with single_threaded():
            first_in.set()
            second_in.wait(10)
            seen["first"] = blas_threads()
        first_out.set()

    def second():
        first_in.wait(10)
        with single_threaded():
            second_in.set()
            first_out.wait(10)
            seen["second, after the first left"] = blas_threads()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen == {"first": 1, "second, after the first left": 1}
    assert blas_threads() == 2


def test_a_scope_entered_from_another_thread_than_the_main_one_limits_blas(two_blas_threads):
    seen = []

    def worker():
        with single_threaded():
            seen.append(blas_threads())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(20)
    assert seen == [1] and blas_threads() == 2


def test_a_blas_library_loaded_after_a_limit_does_not_raise_the_thread_count(two_blas_threads):
    """faiss loads its own OpenBLAS on import, at its default thread count: after a limit to one
    thread (a worker process's), the retrieval pass counted it and started two workers."""
    from threadpoolctl import threadpool_info

    pytest.importorskip("faiss")
    with threadpool_limits(limits=1, user_api="blas"):
        import faiss  # noqa: F401 - loaded now if no earlier test did
        with threadpool_limits(limits={info["filepath"]: 2 for info in threadpool_info()
                                       if info.get("threading_layer") == "openmp"}):
            assert blas_threads() == 1
