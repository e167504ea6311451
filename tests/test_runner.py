import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alignbench.errors import InvalidParameterError, UnknownPluginError
from alignbench.plan import describe
from alignbench.runner import Runner, Sweep
from alignbench.store import ResultStore
from counting_plugin import CountingAligner, Unsupervised, fits_logged

SMALL = ("synthetic-correlated", {"n_items": 200, "dim_x": 16, "dim_y": 16, "latent_dim": 4, "specific_dim": 4})


def counting_sweep(counter, levels=(0, 5, 10), seeds=(0, 1), sleep=0.0):
    return Sweep(aligners=[("counting", {"counter_path": str(counter), "sleep": sleep})], datasets=[SMALL],
                 levels=list(levels), seeds=list(seeds))


def test_a_sweep_stores_every_cell_and_a_rerun_skips_them(registry, store, tmp_path):
    counter = tmp_path / "fits.log"
    summary = Runner(registry, store).run(counting_sweep(counter))
    assert (summary.ran, summary.not_applicable, summary.skipped) == (4, 2, 0)  # level 0: n/a (needs 1 anchor)
    assert len(store) == 6 and fits_logged(counter) == 4
    record = store.records(status="ok")[0]
    assert {"mean_R@1", "i2t_R@5", "alignment_error_heldout"} <= set(record.metrics)
    per_metric = {f"metric:{m['name']}_s" for m in record.config["metrics"]}
    assert set(record.timings) == {"fit_s", "transform_s", "metrics_s"} | per_metric and "numpy" in record.environment
    assert record.timings["metrics_s"] == pytest.approx(sum(record.timings[k] for k in per_metric))
    assert record.config["aligner"]["params"] == {"counter_path": str(counter), "sleep": 0.0}

    again = Runner(registry, store).run(counting_sweep(counter))
    assert (again.ran, again.skipped) == (0, 6)
    assert fits_logged(counter) == 4, "a finished cell was computed again"


def test_an_interrupted_sweep_keeps_finished_cells_and_resumes(registry, store, tmp_path):
    counter = tmp_path / "fits.log"
    CountingAligner.interrupt_at = 2  # Ctrl-C during the third fit
    with pytest.raises(KeyboardInterrupt):
        Runner(registry, store).run(counting_sweep(counter))
    assert len(store.records(status="ok")) == 2
    CountingAligner.interrupt_at = None
    summary = Runner(registry, store).run(counting_sweep(counter))
    assert summary.ran == 2 and fits_logged(counter) == 4  # only the two unfinished cells ran


KILL_SCRIPT = """
import sys
sys.path.insert(0, {support!r})
import counting_plugin
from alignbench.plugins import load_registry
from alignbench.runner import Runner, Sweep
from alignbench.store import ResultStore
sweep = Sweep(aligners=[("counting", {{"counter_path": {counter!r}, "sleep": 0.4}})],
              datasets=[{small!r}], levels=[5, 10, 20], seeds=[0, 1, 2])
Runner(load_registry(extra=[counting_plugin]), ResultStore({db!r})).run(sweep)
"""


def test_a_killed_sweep_restarts_without_recomputing_finished_cells(registry, tmp_path):
    counter, db = tmp_path / "fits.log", tmp_path / "results.sqlite"
    script = KILL_SCRIPT.format(support=str(Path(__file__).parent / "support"), counter=str(counter),
                                small=SMALL, db=str(db))
    process = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while fits_logged(str(counter)) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with ResultStore(db) as store:
        finished = len(store.records(status="ok"))
        assert 2 <= finished < 9, "the kill should land mid-sweep"
        before = fits_logged(str(counter))
        summary = Runner(registry, store).run(Sweep(
            aligners=[("counting", {"counter_path": str(counter), "sleep": 0.4})], datasets=[SMALL],
            levels=[5, 10, 20], seeds=[0, 1, 2]))
        assert summary.skipped == finished and summary.ran == 9 - finished
        assert fits_logged(str(counter)) - before == 9 - finished
        assert len(store.records(status="ok")) == 9


def test_a_failing_aligner_fails_its_cells_only_and_is_retried(registry, store, tmp_path):
    sweep = Sweep(aligners=[("broken", {}), ("procrustes", {})], datasets=[SMALL], levels=[10], seeds=[0])
    summary = Runner(registry, store).run(sweep)
    assert summary.ran == 1 and len(summary.failed) == 1
    cell, message = summary.failed[0]
    assert cell.aligner == "broken" and "broken on purpose" in message
    assert Runner(registry, store).run(sweep).failed, "failed cells are retried, not skipped"


@pytest.mark.parametrize("how, said", [("exit", "SystemExit: 4"),
                                       ("unprintable", "Unprintable: (its message could not be read")])
def test_an_aligner_calling_sys_exit_fails_its_cells_only(registry, store, how, said):
    """In the driver's own process too (a serial sweep): SystemExit, and an exception whose message
    cannot be read, stopped the whole sweep."""
    sweep = Sweep(aligners=[("quitting", {"how": how}), ("procrustes", {})], datasets=[SMALL], levels=[10],
                  seeds=[0, 1])
    summary = Runner(registry, store).run(sweep)
    assert summary.ran == 2 and len(summary.failed) == 2
    assert all(cell.aligner == "quitting" and said in message for cell, message in summary.failed)


@pytest.mark.parametrize("mode, said", [
    ("int-key", "reports the key 1, which is not a name"),
    ("reserved", "reports the key 'status', which is not a name or is one of the tables' own columns"),
    ("text", "reports 'odd_a' = str; report numbers"),
    ("list", "returned list; return a dict"),
    ("inf", "reports 'odd_b' = -inf; report finite numbers (NaN where undefined)"),
    ("huge", "reports 'odd_a' = an integer too large for a float; report finite numbers"),
])
def test_a_metric_reporting_what_no_metric_may_fails_its_cells_and_the_tables_stay_whole(registry, store,
                                                                                         tmp_path, mode, said):
    """An int key crashed the sweep when the cell was stored, on every rerun; a key named like a
    table column (status, anchors) rewrote the leaderboard's own columns."""
    from alignbench.leaderboard import write_leaderboards

    sweep = Sweep(aligners=[("procrustes", {})], datasets=[SMALL], levels=[10], seeds=[0],
                  metrics=[("retrieval", {}), ("odd", {"mode": mode})])
    summary = Runner(registry, store).run(sweep)
    [(cell, message)] = summary.failed
    assert said in message and "\n" not in message
    clean = Sweep(aligners=[("procrustes", {})], datasets=[SMALL], levels=[10], seeds=[0])
    assert Runner(registry, store).run(clean).ran == 1
    write_leaderboards(store, tmp_path)
    assert "| procrustes |" in (tmp_path / f"{SMALL[0]}.md").read_text()


@pytest.mark.parametrize("fault, said", [
    ("init", "aligner 'faulty-at-planning' could not be made: ValueError: faulty init."),
    ("validate", "aligner 'faulty-at-planning' failed in validate(): RuntimeError: faulty validate."),
    ("path", "aligner 'faulty-at-planning': its parameters cannot be recorded in a result's key"),
])
def test_a_plugin_failing_while_the_sweep_is_planned_is_one_line_naming_it(registry, store, fault, said):
    from alignbench.errors import PluginLoadError

    sweep = Sweep(aligners=[("procrustes", {}), ("faulty-at-planning", {"fault": fault})], datasets=[SMALL],
                  levels=[10], seeds=[0])
    with pytest.raises(PluginLoadError) as error:
        Runner(registry, store).run(sweep)
    assert said in str(error.value) and "\n" not in str(error.value)
    assert len(store) == 0


def test_numpy_and_set_parameters_are_recorded_as_json_and_every_cell_is_stored(registry, store):
    """A numpy-scalar default was accepted in the cell's key but could not be stored: the sweep ended
    after its first cell."""
    summary = Runner(registry, store).run(Sweep(aligners=[("odd-defaults", {})], datasets=[SMALL], levels=[5, 10],
                                                seeds=[0, 1]))
    assert summary.ran == 4 and not summary.failed
    records = store.records()
    assert len(records) == 4 and all(r.status == "ok" for r in records)
    assert records[0].config["aligner"]["params"] == {"kind": "odd", "scale": 0.5, "tags": ["a", "b"]}


def test_a_nan_parameter_is_refused_while_the_sweep_is_planned(registry, store):
    from alignbench.errors import PluginLoadError

    with pytest.raises(PluginLoadError) as error:
        Runner(registry, store).run(Sweep(aligners=[("odd-defaults", {"kind": "nan"})], datasets=[SMALL],
                                          levels=[10], seeds=[0]))
    assert "aligner 'odd-defaults': a parameter is NaN" in str(error.value)
    assert "\n" not in str(error.value) and len(store) == 0


def test_an_infinite_parameter_runs_as_it_always_did_and_export_refuses_it_in_one_line(registry, store, tmp_path):
    """Infinity is a common "no limit" default: its cells keep the keys they had, and only a results
    file, which is strict JSON, cannot hold it."""
    from alignbench.plan import config_key
    from alignbench.submissions import SubmissionError, write_export

    runner = Runner(registry, store)
    sweep = Sweep(aligners=[("odd-defaults", {"kind": "inf"})], datasets=[SMALL], levels=[10], seeds=[0])
    [cell] = runner.plan(sweep)
    before = {**cell.config, "aligner": {**cell.config["aligner"],
                                         "params": {"kind": "inf", "scale": float("inf"), "tags": ["a", "b"]}}}
    assert cell.key == config_key(before)
    assert runner.run(sweep).ran == 1
    with pytest.raises(SubmissionError, match="infinite parameter"):
        write_export(store.records(), {"name": "me"}, tmp_path / "out.json")


def test_levels_beyond_the_train_split_are_not_applicable(registry, store):
    summary = Runner(registry, store).run(Sweep(aligners=[("procrustes", {})], datasets=[SMALL],
                                                levels=[10, 500], seeds=[0]))
    assert summary.ran == 1 and summary.not_applicable == 1
    [na] = store.records(status="n/a")
    assert na.anchors == 500 and "train split has 100 items" in na.message


def test_unknown_names_fail_before_any_work(registry, store):
    with pytest.raises(UnknownPluginError, match="Did you mean 'procrustes'"):
        Runner(registry, store).run(Sweep(aligners=[("procrustes", {}), ("procrustez", {})],
                                          datasets=[SMALL], levels=[5], seeds=[0]))
    assert len(store) == 0


def test_zero_anchor_aligners_get_every_train_item_unpaired(registry, store, monkeypatch):
    seen = []
    original = Unsupervised._fit
    monkeypatch.setattr(Unsupervised, "_fit", lambda self, *a: (original(self, *a), seen.append(self.seen_unpaired_)))
    summary = Runner(registry, store).run(Sweep(aligners=[("unsupervised-centring", {})], datasets=[SMALL],
                                                levels=[0, 10], seeds=[0]))
    assert summary.ran == 2
    assert seen == [(100, 500), (90, 450)]  # 100 train items with 5 captions each, minus the anchors


def test_raw_datasets_need_encoders_and_run_with_them(registry, store):
    sweep = Sweep(aligners=[("lstsq", {})], datasets=[("raw-toy", {})], levels=[10], seeds=[0])
    with pytest.raises(InvalidParameterError, match="--image-encoder"):
        Runner(registry, store).run(sweep)
    sweep.encoders = {"image": ("toy-image", {}), "text": ("toy-text", {})}
    summary = Runner(registry, store).run(sweep)
    assert summary.ran == 1
    [record] = store.records(status="ok")
    assert record.config["encoders"]["image"]["name"] == "toy-image"
    assert record.metrics["t2i_R@1"] == 1.0  # the toy encoders make the two sides identical


def test_the_cell_key_tracks_every_setting(registry, store):
    runner = Runner(registry, store)
    base = runner.plan(Sweep(aligners=[("procrustes", {})], datasets=[SMALL], levels=[5], seeds=[0]))[0]
    same = runner.plan(Sweep(aligners=[("procrustes", {"dim": None})], datasets=[SMALL], levels=[5], seeds=[0]))[0]
    assert base.key == same.key  # explicit defaults are the same cell
    for changed in (
        Sweep(aligners=[("procrustes", {"dim": 8})], datasets=[SMALL], levels=[5], seeds=[0]),
        Sweep(aligners=[("procrustes", {})], datasets=[(SMALL[0], {**SMALL[1], "noise": 0.2})], levels=[5], seeds=[0]),
        Sweep(aligners=[("procrustes", {})], datasets=[SMALL], levels=[5], seeds=[0], anchor_strategy="fps"),
        Sweep(aligners=[("procrustes", {})], datasets=[SMALL], levels=[5], seeds=[0],
              metrics=[("retrieval", {"ks": [1]})]),
    ):
        assert runner.plan(changed)[0].key != base.key


def test_an_aligners_own_seed_follows_the_cell_seed_unless_the_user_set_it(registry, store):
    """gw-procrustes, fmap and ot-riemannian kept seed=0 in every cell, so 'mean ± std over seeds'
    left out their initialisation."""
    runner = Runner(registry, store)
    aligners = [("gw-procrustes", {}), ("fmap", {"seed": 7}), ("procrustes", {}), ("lstsq", {})]
    cells = runner.plan(Sweep(aligners=aligners, datasets=[SMALL], levels=[5], seeds=[0, 3]))
    own_seed = {(c.aligner, c.seed): c.config["aligner"]["params"].get("seed") for c in cells}
    assert own_seed == {("gw-procrustes", 0): 0, ("gw-procrustes", 3): 3, ("fmap", 0): 7, ("fmap", 3): 7,
                        ("procrustes", 0): None, ("procrustes", 3): None, ("lstsq", 0): None, ("lstsq", 3): None}
    for cell in cells:  # seedless aligners (and seed 0, the default) are described, and keyed, as before
        if cell.aligner in ("procrustes", "lstsq", "fmap") or cell.seed == 0:
            assert cell.config["aligner"] == describe(registry, "aligner", cell.aligner, dict(aligners)[cell.aligner])
        assert cell.aligner_params == cell.config["aligner"]["params"]  # the typed spec says the same


def test_a_cell_another_process_holds_is_left_to_it_and_skipped_once_stored_there(registry, tmp_path):
    """Another process (here a thread with its own store) computes one cell: this run takes the
    others, comes back to that one at the end and finds it stored."""
    import threading

    from alignbench.store import CellRecord

    counter, db = tmp_path / "fits.log", tmp_path / "results.sqlite"
    sweep = counting_sweep(counter, levels=(5, 10), seeds=(0,))
    with ResultStore(db) as store:
        held = Runner(registry, store).plan(sweep)[0]
        claimed, progress = threading.Event(), []

        def other_process():
            with ResultStore(db) as other:
                assert other.claim(held.key, since=0) == "claimed"
                claimed.set()
                time.sleep(0.6)
                other.put(CellRecord(held.key, held.dataset, held.aligner, held.anchors, held.seed, "ok", held.config,
                                     {}, {}, {}, "", "now"))

        thread = threading.Thread(target=other_process)
        thread.start()
        claimed.wait(10)
        summary = Runner(registry, store).run(sweep, on_cell=lambda cell, status: progress.append((cell.key, status)))
        thread.join()
        assert (summary.ran, summary.skipped) == (1, 1) and fits_logged(counter) == 1
        assert progress[-1] == (held.key, "skipped") and len(progress) == 2
        assert len(store) == 2 and store.leases() == []


def test_a_cell_whose_lease_lapses_is_taken_over_at_the_end(registry, tmp_path):
    """A holder that stops renewing (hung, or on another machine and killed) loses the cell at expiry."""
    counter, db = tmp_path / "fits.log", tmp_path / "results.sqlite"
    sweep = counting_sweep(counter, levels=(5, 10), seeds=(0,))
    with ResultStore(db) as store, ResultStore(db, lease_seconds=0.5) as hung:
        held = Runner(registry, store).plan(sweep)[0]
        assert hung.claim(held.key, since=0) == "claimed"  # no heartbeat runs for it
        started = time.monotonic()
        summary = Runner(registry, store).run(sweep)
        assert (summary.ran, summary.skipped) == (2, 0) and fits_logged(counter) == 2
        assert 0.4 < time.monotonic() - started < 10
        assert store.leases() == []
