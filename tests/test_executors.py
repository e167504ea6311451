"""Executors: local worker processes give the same records as the serial runner, lose no cell when a
worker dies, and leave a store that a killed driver resumes. (Ray: tests/test_executor_ray.py.)

Records are compared on everything but timings and finish times, with one BLAS thread in the serial
run as in each worker, so that floating-point sums run in the same order.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from threadpoolctl import threadpool_limits

from alignbench.cli import cli
from alignbench.errors import AlignbenchError, InvalidParameterError
from alignbench.executors import SerialExecutor, make_executor
from alignbench.worker_processes import ProcessExecutor
from alignbench.runner import Runner, Sweep
from alignbench.store import ResultStore
from counting_plugin import fits_logged

SUPPORT = Path(__file__).parent / "support"
SMALL = ("synthetic-correlated", {"n_items": 200, "dim_x": 16, "dim_y": 16, "latent_dim": 4, "specific_dim": 4})


def mixed_sweep(**changes) -> Sweep:
    """Every kind of outcome: ok (fmap and fmap-spectral share eigenbases), n/a (level 0 for
    procrustes, 500 beyond the train split), failed (broken), and damaged cells."""
    sweep = Sweep(aligners=[("fmap", {}), ("fmap-spectral", {}), ("procrustes", {}), ("broken", {})],
                  datasets=[SMALL], levels=[0, 5, 20, 500], seeds=[0, 1],
                  perturbations=[("drop", {"modality": "text"}), ("embedding-noise", {})], fractions=[50])
    for name, value in changes.items():
        setattr(sweep, name, value)
    return sweep


def comparable(store: ResultStore) -> dict:
    return {r.key: (r.status, r.message, r.metrics, r.config, r.dataset, r.aligner, r.anchors, r.seed)
            for r in store.records()}


def serial_records(registry, sweep: Sweep) -> dict:
    with threadpool_limits(1), ResultStore(":memory:") as store:
        Runner(registry, store).run(sweep)
        return comparable(store)


@pytest.fixture(scope="module")
def serial_mixed():
    from alignbench.plugins import load_registry
    import counting_plugin

    return serial_records(load_registry(extra=[counting_plugin]), mixed_sweep())


def test_worker_processes_give_the_serial_records_and_count_progress(registry, store, serial_mixed):
    executor = ProcessExecutor(2, threads=1)
    progress = []
    summary = Runner(registry, store, executor=executor).run(mixed_sweep(),
                                                             on_cell=lambda cell, status: progress.append(status))
    assert comparable(store) == serial_mixed
    statuses = [r[0] for r in serial_mixed.values()]
    assert {"ok", "n/a", "failed"} <= set(statuses)  # every kind of outcome is compared
    assert sorted(progress) == sorted(statuses)  # one progress step per cell, whichever worker ran it
    assert (summary.ran, summary.not_applicable, len(summary.failed)) == \
        (statuses.count("ok"), statuses.count("n/a"), statuses.count("failed"))
    stats = executor.stats
    assert stats.cells == len(serial_mixed) and stats.deaths == 0
    # The splits went to each worker once (one dataset, two workers), not with every cell: the
    # shared bytes are those of two copies, and a cell's task is small.
    assert stats.bytes_tasks / stats.cells < 10_000 < stats.bytes_shared
    assert not store.leases()


def test_the_cells_of_one_level_and_seed_go_to_one_worker(registry, store, tmp_path):
    """So that what they share in the in-memory memo (fmap-spectral reusing fmap's eigenbases) is there."""
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    sweep = Sweep(aligners=[("where", {"counter_path": str(log)}) for log in logs], datasets=[SMALL],
                  levels=[5, 10, 20, 30], seeds=[0])
    Runner(registry, store, executor=ProcessExecutor(2, threads=1)).run(sweep)
    a, b = (dict(line.split() for line in log.read_text().splitlines()) for log in logs)
    assert a.keys() == b.keys() == {"5", "10", "20", "30"}
    # Each level's two cells ran in one process, but for one at most: once no more cells are coming,
    # an idle worker takes the last waiting cell, whichever level's it is (which level that is
    # depends on the workers' speeds: a worker slow to start may still hold level 10).
    assert sum(a[level] != b[level] for level in a) <= 1
    assert len(set(a.values())) == 2  # and the levels were spread over both workers


def test_a_background_job_a_cell_started_neither_holds_up_the_sweep_nor_outlives_it(registry, store, tmp_path):
    """A job that inherits the worker's pipes kept its sentinel open: waiting on it to see the worker
    end waited for the job (60 s here), and the job was never killed."""
    log = tmp_path / "fits.log"
    sweep = Sweep(aligners=[("where", {"counter_path": str(log), "background": 60})], datasets=[SMALL],
                  levels=[5, 10], seeds=[0])
    started = time.monotonic()
    assert Runner(registry, store, executor=ProcessExecutor(2, threads=1)).run(sweep).ran == 2
    assert time.monotonic() - started < 30
    assert wait_until_gone(logged_children(log)), "a background job a cell started outlived the sweep"


def test_an_executor_kept_running_across_sweeps_holds_no_earlier_sweep_s_splits(registry, store):
    """The robustness command runs one sweep per dataset on one executor: every dataset's splits stayed in
    every worker (and in Ray's object store) until the command ended."""
    executor = ProcessExecutor(2, threads=1)
    other = ("synthetic-gmm", {"n_items": 200})
    with executor.running(registry):
        for dataset in (SMALL, other):
            sweep = Sweep(aligners=[("procrustes", {})], datasets=[dataset], levels=[5, 10], seeds=[0])
            assert Runner(registry, store, executor=executor).run(sweep).ran == 2
            assert not executor._shared and all(not worker.holds for worker in executor._pool)


def test_input_corruptions_are_encoded_by_the_driver_and_shipped_once(registry, store, tmp_path):
    """Raw items corrupted (image-noise) and encoded in the driver; the workers get the corrupted
    embeddings once, beside the splits, and give the serial records."""
    sweep = Sweep(aligners=[("lstsq", {}), ("procrustes", {})], datasets=[("raw-toy", {"n_items": 60})],
                  levels=[10], seeds=[0, 1], encoders={"image": ("toy-image", {}), "text": ("toy-text", {})},
                  perturbations=[("image-noise", {})], fractions=[25, 50])
    serial = serial_records(registry, sweep)
    executor = ProcessExecutor(2, threads=1)
    Runner(registry, store, executor=executor).run(sweep)
    assert comparable(store) == serial and len(serial) == 12
    assert {r.status for r in store.records()} == {"ok"}
    assert executor.stats.bytes_tasks / executor.stats.cells < 10_000


def test_a_rerun_with_workers_skips_finished_cells(registry, store):
    sweep = Sweep(aligners=[("procrustes", {})], datasets=[SMALL], levels=[5, 10], seeds=[0])
    Runner(registry, store).run(sweep)
    executor = ProcessExecutor(2, threads=1)
    summary = Runner(registry, store, executor=executor).run(sweep)
    assert (summary.ran, summary.skipped) == (0, 2) and executor.stats.cells == 0


def test_a_worker_killed_mid_cell_is_replaced_and_the_cell_retried(registry, store, tmp_path):
    counter, exits = tmp_path / "fits.log", tmp_path / "exits.log"
    sweep = Sweep(aligners=[("exiting", {"counter_path": str(counter), "exits_path": str(exits), "times": 1}),
                            ("procrustes", {})], datasets=[SMALL], levels=[5, 10, 20], seeds=[0, 1])
    executor = ProcessExecutor(2, threads=1)
    summary = Runner(registry, store, executor=executor).run(sweep)
    assert fits_logged(str(exits)) == 1 and executor.stats.deaths == 1  # one worker killed itself, once
    assert summary.ran == 12 and not summary.failed
    assert len(store) == 12 and fits_logged(str(counter)) == 6  # every cell stored once, each fit counted once


def test_a_cell_that_kills_every_worker_is_recorded_failed_and_the_rest_run(registry, store, tmp_path):
    exits = tmp_path / "exits.log"
    sweep = Sweep(aligners=[("exiting", {"counter_path": str(tmp_path / "fits.log"), "exits_path": str(exits),
                                         "times": 100, "child": True}), ("procrustes", {})],
                  datasets=[SMALL], levels=[5], seeds=[0])
    summary = Runner(registry, store, executor=ProcessExecutor(2, threads=1)).run(sweep)
    assert summary.ran == 1 and len(summary.failed) == 1
    [failed] = store.records(status="failed")
    assert failed.aligner == "exiting" and "worker process died" in failed.message and "2 times" in failed.message
    assert fits_logged(str(exits)) == 2  # tried twice, by two processes
    # What a dead worker's cell started ends with it (its process group), not at the end of the sweep only.
    children = [int(line.split()[1]) for line in exits.read_text().splitlines()]
    assert len(children) == 2 and wait_until_gone(children), "a process a dead worker's cell started outlived it"


def logged_pids(path) -> list[int]:
    try:
        return [int(line.split()[1]) for line in Path(path).read_text().splitlines()]
    except FileNotFoundError:
        return []


def logged_children(path) -> list[int]:
    return [int(line.split()[2]) for line in Path(path).read_text().splitlines()]


def wait_until_gone(pids, seconds: float = 10.0) -> bool:
    from alignbench.processes import process_gone

    deadline = time.monotonic() + seconds
    while not all(process_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return all(process_gone(pid) for pid in pids)


def test_a_cell_past_the_time_limit_is_stopped_recorded_failed_and_the_rest_run(registry, store, tmp_path):
    from alignbench.processes import process_gone

    log = tmp_path / "fits.log"
    sweep = Sweep(aligners=[("hanging", {"counter_path": str(log), "hang_at": [10], "child": True}),
                            ("procrustes", {})],
                  datasets=[SMALL], levels=[5, 10, 20], seeds=[0])
    executor = ProcessExecutor(2, threads=1, cell_timeout=5.0)
    started = time.monotonic()
    summary = Runner(registry, store, executor=executor).run(sweep)
    assert time.monotonic() - started < 60
    [failed] = store.records(status="failed")
    assert (failed.aligner, failed.anchors) == ("hanging", 10) and len(summary.failed) == 1
    assert "ran past --cell-timeout 5 s" in failed.message and "raise --cell-timeout" in failed.message
    assert len(store.records(status="ok")) == 5 and not store.leases()
    hung = [pid for anchors, pid in zip((5, 10, 20), logged_pids(log)) if anchors == 10]
    assert len(logged_pids(log)) == 3  # not retried: it would hang again
    assert all(process_gone(pid) for pid in hung)  # its worker was killed, not left running
    # and so were the processes its cells started (the others' with the pool, at the end of the sweep)
    assert wait_until_gone(logged_children(log)), "a process a cell started outlived the sweep"


def test_a_time_limit_alone_runs_cells_one_at_a_time_in_one_worker():
    executor = make_executor(None, None, None, cell_timeout=60)
    assert isinstance(executor, ProcessExecutor) and executor.workers == 1 and executor.cell_timeout == 60
    assert make_executor("processes", 2, None, cell_timeout=1.5).cell_timeout == 1.5


HANG_SCRIPT = """
import sys
sys.path.insert(0, {support!r})
import counting_plugin
from alignbench.worker_processes import ProcessExecutor
from alignbench.plugins import load_registry
from alignbench.runner import Runner, Sweep
from alignbench.store import ResultStore
if __name__ == "__main__":
    sweep = Sweep(aligners=[("hanging", {{"counter_path": {counter!r}, "child": True}})], datasets=[{small!r}],
                  levels=[5], seeds=[0])
    Runner(load_registry(extra=[counting_plugin]), ResultStore({db!r}), executor=ProcessExecutor(1, threads=1)).run(sweep)
"""


def test_a_worker_stuck_in_a_cell_exits_when_its_driver_is_killed(tmp_path):
    from alignbench.processes import process_gone

    counter = tmp_path / "fits.log"
    script = tmp_path / "driver.py"
    script.write_text(HANG_SCRIPT.format(support=str(SUPPORT), counter=str(counter), small=SMALL,
                                         db=str(tmp_path / "results.sqlite")))
    process = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 60
    while not logged_pids(counter) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    [worker] = logged_pids(counter)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while not process_gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process_gone(worker), "a worker stuck in a cell outlived its driver"
    assert wait_until_gone(logged_children(counter)), "a process the cell started outlived the driver"


KILL_SCRIPT = """
import sys
sys.path.insert(0, {support!r})
import counting_plugin
from alignbench.worker_processes import ProcessExecutor
from alignbench.plugins import load_registry
from alignbench.runner import Runner, Sweep
from alignbench.store import ResultStore
if __name__ == "__main__":
    sweep = Sweep(aligners=[("counting", {{"counter_path": {counter!r}, "sleep": 0.3}})],
                  datasets=[{small!r}], levels=[5, 10, 20], seeds=[0, 1, 2, 3])
    Runner(load_registry(extra=[counting_plugin]), ResultStore({db!r}),
           executor=ProcessExecutor(2, threads=1)).run(sweep)
"""


def test_a_killed_driver_leaves_no_worker_behind_and_resumes(registry, tmp_path):
    counter, db = tmp_path / "fits.log", tmp_path / "results.sqlite"
    script = tmp_path / "driver.py"
    script.write_text(KILL_SCRIPT.format(support=str(SUPPORT), counter=str(counter), small=SMALL, db=str(db)))
    process = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 60
    while fits_logged(str(counter)) < 4 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(1.0)  # a worker busy with a cell finishes it, finds the driver gone and exits
    after_kill = fits_logged(str(counter))
    time.sleep(1.0)
    assert fits_logged(str(counter)) == after_kill, "worker processes outlived their driver"
    with ResultStore(db) as store:
        finished = len(store.records(status="ok"))
        assert 2 <= finished < 12, "the kill should land mid-sweep"
        summary = Runner(registry, store, executor=ProcessExecutor(2, threads=1)).run(Sweep(
            aligners=[("counting", {"counter_path": str(counter), "sleep": 0.3})], datasets=[SMALL],
            levels=[5, 10, 20], seeds=[0, 1, 2, 3]))
        assert summary.skipped == finished and summary.ran == 12 - finished  # the dead driver's leases taken over
        assert len(store.records(status="ok")) == 12 and not store.leases()


@pytest.mark.parametrize("options, message", [
    (("processes", 0, None), "--workers must be at least 1, got 0"),
    (("serial", 2, None), "drop --workers 2"),
    (("processes", 2, "auto"), "--ray-address is for --executor ray"),
    (("serial", None, None, 10), "--cell-timeout stops a cell by ending the worker process"),
    ((None, None, None, 0), "--cell-timeout must be a number of seconds above 0, got 0"),
    ((None, None, None, float("inf")), "--cell-timeout must be a number of seconds above 0, got inf"),
])
def test_impossible_executor_options_are_one_clear_error(options, message):
    with pytest.raises(InvalidParameterError, match=message):
        make_executor(*options)


def test_the_executor_follows_the_options():
    assert isinstance(make_executor(None, None, None), SerialExecutor)
    workers = make_executor(None, 3, None)
    assert isinstance(workers, ProcessExecutor) and workers.workers == 3


def test_ray_missing_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(AlignbenchError, match=r'pip install -e "\.\[ray\]"'):
        make_executor("ray", None, None)


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--executor", "serial", "--workers", "2"], "drop --workers 2"),
    (["--executor", "serial", "--cell-timeout", "5"], "use --executor processes"),
    (["--cell-timeout", "-1"], "--cell-timeout must be a number of seconds above 0, got -1"),
])
def test_bad_executor_options_on_the_command_line_are_one_line(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["run", "--aligner", "procrustes", "--dataset", "synthetic-gmm", "--anchors", "5",
                                      "--seeds", "0", "--store", str(tmp_path / "s.sqlite"), "--out",
                                      str(tmp_path / "b"), *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s.sqlite").exists()  # refused before any work


def test_executor_ray_without_ray_on_the_command_line_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    result = CliRunner().invoke(cli, ["run", "--aligner", "procrustes", "--dataset", "synthetic-gmm", "--seeds", "0",
                                      "--executor", "ray", "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == 'Error: --executor ray: Ray is not installed; install it with: pip install -e ".[ray]"'


def test_run_with_workers_on_the_command_line_matches_the_serial_run(tmp_path):
    def run(store, *extra):
        args = ["run", "--aligner", "procrustes", "--aligner", "lstsq", "--dataset", "synthetic-correlated",
                "--param", "synthetic-correlated.n_items=200", "--anchors", "5,10", "--seeds", "0,1",
                "--store", str(store), "--out", str(tmp_path / "boards"), *extra]
        return subprocess.run([sys.executable, "-m", "alignbench", *args], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)

    parallel = run(tmp_path / "parallel.sqlite", "--workers", "2")
    assert parallel.returncode == 0, parallel.stderr
    assert "8 cells run, 0 already done" in parallel.stderr
    serial = run(tmp_path / "serial.sqlite")
    assert serial.returncode == 0, serial.stderr
    with ResultStore(tmp_path / "parallel.sqlite") as a, ResultStore(tmp_path / "serial.sqlite") as b:
        assert comparable(a) == comparable(b) and len(a) == 8


def test_importing_the_cli_does_not_import_ray():
    code = "import sys, alignbench.cli; assert 'ray' not in sys.modules and 'alignbench.executors' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
