"""Cell leases: several processes on one store share a sweep, each cell computed once.

The multi-process tests start real processes (a Runner each, on one store) behind a start line, so
that they really run side by side, and count fits through the counting test plugin: one log per
aligner variant, one line (the anchor count) per fit.
"""

import dataclasses
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alignbench.errors import StoreError
from alignbench.runner import Runner, Sweep
from alignbench.store import CellRecord, ResultStore
from counting_plugin import fits_logged

SUPPORT = Path(__file__).parent / "support"
GMM = ("synthetic-gmm", {"n_items": 200, "dim_x": 16, "dim_y": 16})
LEVELS, SEEDS, VARIANTS = [5, 10, 20], [0, 1], 4
CELLS = VARIANTS * len(LEVELS) * len(SEEDS)  # 24

WORKER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {support!r})
import counting_plugin
from alignbench.plugins import load_registry
from alignbench.runner import Runner, Sweep
from alignbench.store import ResultStore
sweep = Sweep(aligners=[("counting", {{"counter_path": c, "sleep": {sleep}}}) for c in {counters!r}],
              datasets=[{gmm!r}], levels={levels!r}, seeds={seeds!r})
runner = Runner(load_registry(extra=[counting_plugin]), ResultStore({db!r}))
runner.plan(sweep)
Path({ready!r}).touch()
while not Path({go!r}).exists():
    time.sleep(0.01)
summary = runner.run(sweep)
print(summary.ran, summary.skipped, summary.not_applicable, len(summary.failed))
"""


def counters(tmp_path: Path) -> list[str]:
    return [str(tmp_path / f"fits-{variant}.log") for variant in range(VARIANTS)]


def sweep(tmp_path: Path, sleep: float) -> Sweep:
    return Sweep(aligners=[("counting", {"counter_path": c, "sleep": sleep}) for c in counters(tmp_path)],
                 datasets=[GMM], levels=LEVELS, seeds=SEEDS)


def start_workers(tmp_path: Path, n: int, sleep: float) -> list[subprocess.Popen]:
    """``n`` processes on one store, released together once all have planned the sweep."""
    go = tmp_path / "go"
    workers = []
    for i in range(n):
        script = WORKER.format(support=str(SUPPORT), counters=counters(tmp_path), sleep=sleep, gmm=GMM,
                               levels=LEVELS, seeds=SEEDS, db=str(tmp_path / "results.sqlite"),
                               ready=str(tmp_path / f"ready-{i}"), go=str(go))
        workers.append(subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{i}").exists() for i in range(n)):
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            for worker in workers:  # the others would wait for the go file for ever
                worker.kill()
            raise AssertionError("a worker did not start")
        time.sleep(0.05)
    go.touch()
    return workers


def fits_per_variant(tmp_path: Path) -> list[list[int]]:
    """For each aligner variant, the anchor counts of its fits, sorted."""
    result = []
    for counter in counters(tmp_path):
        lines = Path(counter).read_text().split() if Path(counter).exists() else []
        result.append(sorted(int(line) for line in lines))
    return result


@pytest.mark.parametrize("processes", [2, 4])
def test_processes_on_one_store_compute_every_cell_once(tmp_path, processes):
    workers = start_workers(tmp_path, processes, sleep=0.25)
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    summaries = [tuple(map(int, out.split())) for out in outputs]
    ran = [s[0] for s in summaries]
    assert sum(fits_logged(c) for c in counters(tmp_path)) == CELLS, f"fits per process summary: {summaries}"
    assert fits_per_variant(tmp_path) == [sorted(LEVELS * len(SEEDS))] * VARIANTS
    assert sum(ran) == CELLS and all(s[1] == CELLS - s[0] for s in summaries)  # the rest: done by the others
    assert sum(1 for r in ran if r) >= 2, f"one process did all the work: {summaries}"
    with ResultStore(tmp_path / "results.sqlite") as store:
        assert len(store.records(status="ok")) == CELLS
        assert store.leases() == [], "a finished sweep left leases behind"


def test_a_killed_process_leaves_no_cell_lost(registry, tmp_path):
    """kill -9 mid-cell: its lease names a dead process on this host, so the next run takes it over."""
    worker, = start_workers(tmp_path, 1, sleep=0.2)
    db = tmp_path / "results.sqlite"
    deadline = time.monotonic() + 60
    while not (sum(fits_logged(c) for c in counters(tmp_path)) >= 3 and computing(db, counters(tmp_path))):
        assert worker.poll() is None and time.monotonic() < deadline, "the sweep ended before the kill"
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)  # the claimed cell is in its 0.2 s fit: still claimed
    worker.wait()
    with ResultStore(db) as store:
        finished = len(store.records(status="ok"))
        assert 3 <= finished < CELLS
        assert [lease.pid for lease in store.leases()] == [worker.pid], "the kill left no lease to take over"
        before = sum(fits_logged(c) for c in counters(tmp_path))
        started = time.monotonic()
        summary = Runner(registry, store).run(sweep(tmp_path, sleep=0.2))
        assert time.monotonic() - started < 20, "the dead process's lease was waited out"
        assert (summary.ran, summary.skipped) == (CELLS - finished, finished)
        assert sum(fits_logged(c) for c in counters(tmp_path)) - before == CELLS - finished
        assert len(store.records(status="ok")) == CELLS and store.leases() == []


def computing(db: Path, counter_paths: list[str]) -> bool:
    """Whether a cell is claimed and in its fit (every fit logged so far is stored)."""
    with sqlite3.connect(db) as reader:
        held = reader.execute("SELECT COUNT(*) FROM leases WHERE released_at IS NULL").fetchone()[0]
        stored = reader.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    reader.close()
    return held == 1 and stored == sum(fits_logged(c) for c in counter_paths)


# ---------------------------------------------------------------------- the claim itself
def test_a_claim_is_refused_while_another_live_process_holds_the_cell(tmp_path):
    db = tmp_path / "results.sqlite"
    with ResultStore(db) as first, ResultStore(db) as second:
        assert first.claim("cell-a", since=0) == "claimed"
        assert second.claim("cell-a", since=0) == "held"
        assert second.claim("cell-b", since=0) == "claimed"
        first.put(record("cell-a"))  # storing the cell releases it
        assert second.claim("cell-a", since=0) == "done"
        assert [lease.key for lease in first.leases()] == ["cell-b"]


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with ResultStore(tmp_path / "results.sqlite") as store:
        host = store.leases_host
        plant_lease(store, "cell-a", host=host, pid=dead.pid, expires_in=3600)
        plant_lease(store, "cell-b", host=host, pid=os.getppid(), expires_in=3600)  # alive
        assert store.claim("cell-a", since=0) == "claimed"
        assert store.claim("cell-b", since=0) == "held"


def test_a_lease_from_another_host_is_trusted_until_it_expires(tmp_path):
    with ResultStore(tmp_path / "results.sqlite") as store:
        plant_lease(store, "cell-a", host="elsewhere", pid=1, expires_in=3600)
        plant_lease(store, "cell-b", host="elsewhere", pid=1, expires_in=-1)
        assert store.claim("cell-a", since=0) == "held"
        assert store.claim("cell-b", since=0) == "claimed"


def test_the_heartbeat_renews_leases_while_a_cell_computes(tmp_path):
    db = tmp_path / "results.sqlite"
    with ResultStore(db, lease_seconds=1.0) as holder, ResultStore(db) as other:
        with holder.renewing_leases():
            assert holder.claim("cell-a", since=0) == "claimed"
            time.sleep(2.5)  # two and a half lease lengths: only the heartbeat keeps it
            plant_host(other, "cell-a", "elsewhere")  # no pid shortcut: expiry alone decides
            assert other.claim("cell-a", since=0) == "held"
        assert holder.leases() == [], "leases outlived the block that held them"
        assert holder.claim("cell-b", since=0) == "claimed"
        time.sleep(1.3)  # no heartbeat now
        plant_host(other, "cell-b", "elsewhere")
        assert other.claim("cell-b", since=0) == "claimed", "an expired lease was not taken over"


def test_a_cell_another_process_stored_as_failed_during_this_run_is_not_run_again(tmp_path):
    db = tmp_path / "results.sqlite"
    with ResultStore(db) as first, ResultStore(db) as second:
        assert first.claim("cell-a", since=0) == "claimed"
        run_started = time.time()
        first.put(dataclasses.replace(record("cell-a", status="failed"), message="boom"))
        assert second.claim("cell-a", since=run_started) == "failed"  # failed within this run: not retried
        assert second.message("cell-a") == "boom"
        assert second.claim("cell-a", since=time.time() + 1) == "claimed"  # a later run retries it


def test_a_cell_that_failed_in_another_process_during_the_run_is_this_runs_failure_too(registry, tmp_path):
    # Another process sharing the sweep stores the cell as failed just before this one claims it: the
    # run must not retry it, and must not count it as done (the command then exited 0 with a failed cell).
    db = tmp_path / "results.sqlite"
    sweep = Sweep(aligners=[("broken", {}), ("procrustes", {})], datasets=[GMM], levels=[5], seeds=[0])
    with ResultStore(db) as mine, ResultStore(db) as other:
        runner = Runner(registry, mine)
        [broken] = [c for c in runner.plan(sweep) if c.aligner == "broken"]
        claim = mine.claim

        def claim_after_the_other(key, **options):
            if key == broken.key and other.claim(key, since=0) == "claimed":
                other.put(dataclasses.replace(record(key, status="failed"), message="RuntimeError: elsewhere"))
            return claim(key, **options)

        mine.claim = claim_after_the_other
        summary = runner.run(sweep)
    assert summary.ran == 1 and summary.skipped == 0
    [(cell, message)] = summary.failed
    assert cell.key == broken.key and message == "RuntimeError: elsewhere (in another process running this sweep)"


def test_an_interrupted_run_releases_its_leases(registry, store, tmp_path):
    from counting_plugin import CountingAligner

    CountingAligner.interrupt_at = 2
    with pytest.raises(KeyboardInterrupt):
        Runner(registry, store).run(sweep(tmp_path, sleep=0.0))
    assert store.leases() == []


def test_a_store_from_before_leases_opens_and_gains_the_table(tmp_path):
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as old:  # the schema as alignbench wrote it before leases
        old.execute("CREATE TABLE results (key TEXT PRIMARY KEY, dataset TEXT NOT NULL, aligner TEXT NOT NULL, "
                    "anchors INTEGER NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL, config TEXT NOT NULL, "
                    "metrics TEXT NOT NULL, timings TEXT NOT NULL, environment TEXT NOT NULL, "
                    "message TEXT NOT NULL DEFAULT '', finished_at TEXT NOT NULL)")
        old.execute("INSERT INTO results VALUES ('k', 'd', 'a', 5, 0, 'ok', '{}', '{}', '{}', '{}', '', 'now')")
    old.close()
    with ResultStore(db) as store:
        assert len(store) == 1 and store.claim("k", since=0) == "done" and store.claim("j", since=0) == "claimed"


def test_a_leases_table_of_another_schema_is_refused(tmp_path):
    db = tmp_path / "s.sqlite"
    with ResultStore(db):
        pass
    with sqlite3.connect(db) as other:
        other.execute("DROP TABLE leases")
        other.execute("CREATE TABLE leases (a, b)")
    other.close()
    with pytest.raises(StoreError, match="another schema"):
        ResultStore(db)


def record(key: str, status: str = "ok") -> CellRecord:
    return CellRecord(key, "d", "a", 5, 0, status, {}, {}, {}, {}, "", "now")


def plant_lease(store: ResultStore, key: str, *, host: str, pid: int, expires_in: float) -> None:
    with sqlite3.connect(store.path) as db:
        db.execute("INSERT INTO leases VALUES (?, ?, ?, ?, ?, NULL)",
                   (key, f"{host}/{pid}/planted", host, pid, time.time() + expires_in))
    db.close()


def plant_host(store: ResultStore, key: str, host: str) -> None:
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE leases SET host = ? WHERE key = ?", (host, key))
    db.close()


def test_the_lease_host_names_this_machine(tmp_path):
    with ResultStore(tmp_path / "results.sqlite") as store:
        assert store.leases_host.startswith(socket.gethostname())


def test_setting_up_a_store_is_retried_while_sqlite_answers_locked(tmp_path):
    import sqlite3

    from alignbench.store import retry_while_locked

    db = sqlite3.connect(tmp_path / "x.sqlite")
    calls = []

    def locked_twice():
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "set up"

    assert retry_while_locked(locked_twice, db) == "set up" and len(calls) == 3

    def damaged():
        calls.append(1)
        raise sqlite3.OperationalError("file is not a database")

    calls.clear()
    with pytest.raises(sqlite3.OperationalError, match="not a database"):
        retry_while_locked(damaged, db)
    assert len(calls) == 1  # anything but a lock is not retried

    def always_locked():
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        retry_while_locked(always_locked, db, seconds=0.2)


def test_a_cell_other_code_computed_is_done_unless_this_code_is_asked_for(tmp_path):
    import time

    from alignbench.store import CellRecord, ResultStore

    with ResultStore(tmp_path / "s.sqlite") as store:
        record = CellRecord(key="k", dataset="d", aligner="a", anchors=5, seed=0, status="ok", config={}, metrics={},
                            timings={}, environment={"code": "older"}, message="", finished_at="2026-11-26T18:00:00")
        store.put(record)
        assert store.finished("k") and store.finished("k", "older") and not store.finished("k", "newer")
        assert store.claim("k", since=time.time()) == "done"
        assert store.claim("k", since=time.time(), code="older") == "done"
        assert store.claim("k", since=time.time(), code="newer") == "claimed"
        store.put(CellRecord(**{**record.__dict__, "environment": {"code": "newer"}}))
        assert store.finished("k", "newer") and not store.finished("k", "older")
        assert not store.finished("missing")
