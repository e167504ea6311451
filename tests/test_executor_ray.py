"""The Ray executor on a local two-CPU cluster, started once for this module (Ray starts in seconds):
the same records as the serial runner, splits put in the object store once, a worker killed mid-cell
retried, and an unreachable cluster reported in one line."""

import socket
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from extras import needs_extra  # tests/support

from alignbench.errors import AlignbenchError
from alignbench.ray_cluster import RayExecutor
from alignbench.runner import Runner, Sweep
from alignbench.store import ResultStore
from counting_plugin import fits_logged

ray = needs_extra("ray", "ray")

SUPPORT = Path(__file__).parent / "support"
SMALL = ("synthetic-correlated", {"n_items": 200, "dim_x": 16, "dim_y": 16, "latent_dim": 4, "specific_dim": 4})


def test_an_unreachable_ray_address_is_one_line(registry, store):
    """Before the module's cluster starts: ray.init would join that one instead."""
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    sweep = Sweep(aligners=[("procrustes", {})], datasets=[SMALL], levels=[5], seeds=[0])
    with pytest.raises(AlignbenchError, match=f"cannot reach a Ray cluster at 127.0.0.1:{port}.*ray start --head"):
        Runner(registry, store, executor=RayExecutor(f"127.0.0.1:{port}")).run(sweep)
    assert len(store) == 0 and not store.leases()


@pytest.fixture(scope="module")
def cluster():
    """A local cluster whose workers import the test plugins, as the driver does."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(SUPPORT)}})
    yield
    ray.shutdown()


def comparable(store: ResultStore) -> dict:
    return {r.key: (r.status, r.message, r.metrics, r.config) for r in store.records()}


def test_ray_gives_the_serial_records_and_ships_the_splits_once(cluster, registry, store):
    sweep = Sweep(aligners=[("fmap", {}), ("procrustes", {}), ("broken", {})], datasets=[SMALL],
                  levels=[0, 5, 20, 500], seeds=[0, 1], perturbations=[("drop", {"modality": "image"})],
                  fractions=[50])
    with threadpool_limits(1), ResultStore(":memory:") as store_serial:
        Runner(registry, store_serial).run(sweep)
        serial = comparable(store_serial)
    executor = RayExecutor()
    progress = []
    Runner(registry, store, executor=executor).run(sweep, on_cell=lambda cell, status: progress.append(status))
    assert comparable(store) == serial
    assert {"ok", "n/a", "failed"} <= {r.status for r in store.records()}
    assert len(progress) == len(serial) == executor.stats.cells
    assert ray.is_initialized(), "a cluster the runner joined is left running"
    # One dataset: its splits are put once; every task carries a cell spec and anchor rows only.
    splits = Runner(registry, store).splits_for(store.records()[0].config)
    assert executor.stats.bytes_shared < 1.5 * (splits.train.x.nbytes + splits.train.y.nbytes
                                                + splits.test.x.nbytes + splits.test.y.nbytes)
    assert executor.stats.bytes_tasks / executor.stats.cells < 10_000


def test_a_ray_worker_killed_mid_cell_is_retried(cluster, registry, store, tmp_path):
    counter, exits = tmp_path / "fits.log", tmp_path / "exits.log"
    sweep = Sweep(aligners=[("exiting", {"counter_path": str(counter), "exits_path": str(exits), "times": 1})],
                  datasets=[SMALL], levels=[5, 10], seeds=[0])
    summary = Runner(registry, store, executor=RayExecutor()).run(sweep)
    assert fits_logged(str(exits)) == 1 and summary.ran == 2 and not summary.failed
    assert len(store) == 2 and fits_logged(str(counter)) == 2


def test_a_cell_past_the_time_limit_is_given_up_and_its_ray_worker_ends(cluster, registry, store, tmp_path):
    import time

    from alignbench.processes import process_gone

    log = tmp_path / "fits.log"
    # Stuck in a thread pool's thread: a plain exit of the worker would wait for it forever.
    sweep = Sweep(aligners=[("hanging", {"counter_path": str(log), "hang_at": [10], "in_pool": True}),
                            ("procrustes", {})], datasets=[SMALL], levels=[5, 10], seeds=[0])
    summary = Runner(registry, store, executor=RayExecutor(cell_timeout=5.0)).run(sweep)
    [failed] = store.records(status="failed")
    assert (failed.aligner, failed.anchors) == ("hanging", 10) and len(summary.failed) == 1
    assert "ran past --cell-timeout 5 s" in failed.message
    assert summary.ran == 3 and not store.leases()
    fits = [line.split() for line in log.read_text().splitlines()]
    assert len(fits) == 2  # the hung cell was not tried again
    [hung] = [int(pid) for anchors, pid in fits if anchors == "10"]
    deadline = time.monotonic() + 30
    while not process_gone(hung) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process_gone(hung), "the worker process that gave up on the cell is still running it"


def test_encoding_on_the_cluster_is_sharded_resumable_and_gives_the_serial_entry(cluster, registry, store,
                                                                                  tmp_path, monkeypatch):
    """raw-toy's 60 train and 60 test images in shards of 16 (the cache's chunk, patched down from 512),
    encoded by encoder actors; the first run dies on the shard of train item 40, the second encodes
    only the shards the first did not cache."""
    import alignbench.cache
    from alignbench.cache import EmbeddingCache

    monkeypatch.setattr(alignbench.cache, "CHUNK", 16)
    log, marker = tmp_path / "encoded.log", tmp_path / "fail-once"
    image = ("toy-image-logged", {"log_path": str(log), "fail_marker": str(marker), "fail_at": 40})
    sweep = Sweep(aligners=[("procrustes", {})], datasets=[("raw-toy", {"n_items": 60})], levels=[5], seeds=[0],
                  encoders={"image": image, "text": ("toy-text", {})})
    serial_cache = EmbeddingCache(tmp_path / "serial-cache")
    with ResultStore(":memory:") as serial_store:
        Runner(registry, serial_store, cache=serial_cache).run(sweep)
    log.unlink()

    cache = EmbeddingCache(tmp_path / "ray-cache")
    marker.touch()
    with pytest.raises(Exception, match="fails once on purpose"):
        Runner(registry, store, cache=cache, executor=RayExecutor()).run(sweep)
    kept = {e.meta["dataset"]["shard"][0] for e in cache.entries()
            if "shard" in e.meta["dataset"] and e.meta["dataset"]["side"] == "image"}
    first_run = fits_logged(str(log))
    # Shard 32 is submitted once an actor is free, so a shard before it finished (and was cached) first.
    assert kept and 32 not in kept and len(kept) <= first_run < 4

    Runner(registry, store, cache=cache, executor=RayExecutor()).run(sweep)
    # The lines after the first run's count: the second run's, and possibly a late one of the first run
    # (a shard an actor was still encoding when the failure stopped the run; the kill is asynchronous).
    # Neither can be a cached shard: a shard is logged before it is returned, so before it is cached.
    after = [int(n) for n in log.read_text().split()[first_run:]]
    assert set(after) == ({0, 16, 32, 48} - kept) | {1000, 1016, 1032, 1048}  # missing shards only
    assert sorted(n for n in after if n >= 1000) == [1000, 1016, 1032, 1048]  # the test split, once
    entries = {e.key: e for e in cache.entries()}
    serial_entries = {e.key: e for e in serial_cache.entries()}
    assert entries.keys() == serial_entries.keys()  # the serial run's keys, no shard left behind
    for key in entries:
        assert np.array_equal(np.load(cache.directory / f"{key}.npy"), np.load(serial_cache.directory / f"{key}.npy"))
    assert [r.status for r in store.records()] == ["ok"]
