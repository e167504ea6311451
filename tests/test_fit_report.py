"""What a fit chose (``Aligner.fit_report`` and the space's width) is recorded with its cell and tabled."""

import json
import sqlite3
import threading
import time

import pytest

import alignbench.store
from alignbench.leaderboard import over_seeds, boards, fitted_table, write_leaderboards
from alignbench.runner import Runner, Sweep
from alignbench.store import CellRecord, ResultStore

SMALL = ("synthetic-correlated", {"n_items": 200, "dim_x": 16, "dim_y": 16, "latent_dim": 4, "specific_dim": 4})
# Seed 002's setting: noise-free x = z A1, y = z A2 with a 2-D latent z.
NOISELESS_LATENT = ("synthetic-gmm", {"noise": 0.0, "n_items": 400})


def reporting(tmp_path, report="plain", levels=(5, 10), seeds=(0,)):
    return Sweep(aligners=[("reporting", {"counter_path": str(tmp_path / "fits.log"), "report": report})],
                 datasets=[SMALL], levels=list(levels), seeds=list(seeds))


def test_a_cell_records_what_its_fit_chose_as_plain_json_values(registry, store, tmp_path):
    Runner(registry, store).run(reporting(tmp_path))
    fitted = {r.anchors: r.fitted for r in store.records(status="ok")}
    assert fitted == {5: {"dim": 16, "anchors_seen": 5, "rule": "exact", "share": 0.5, "stopped": False},
                      10: {"dim": 16, "anchors_seen": 10, "rule": "exact", "share": 0.5, "stopped": True}}
    assert type(fitted[5]["anchors_seen"]) is int and type(fitted[5]["stopped"]) is bool  # not numpy scalars


@pytest.mark.parametrize("report, problem", [
    ("nan", "['share'] is nan; report finite numbers"),
    ("list", "['shape'] is a list; report numbers, strings or booleans"),
    ("dim", "reports the key 'dim', which is not a string or is the runner's own"),
    ("none", "returned NoneType; return a dict"),
])
def test_a_bad_fit_report_fails_its_cell_in_one_line(registry, store, tmp_path, report, problem):
    summary = Runner(registry, store).run(reporting(tmp_path, report, levels=(5,)))
    [(_, message)] = summary.failed
    assert message.startswith("reporting.fit_report()") and problem in message and "\n" not in message
    assert [r.status for r in store.records()] == ["failed"]


def test_the_null_space_reports_the_latent_dimension_of_noiseless_data_through_the_runner(registry, store):
    # Known by construction: the exact null space of a 2-D latent is 2-dimensional, found on the 2 + 2
    # informative directions; the records say so for every seed, and so does the leaderboard.
    Runner(registry, store).run(Sweep(aligners=[("nullspace", {})], datasets=[NOISELESS_LATENT], levels=[100],
                                      seeds=[0, 1]))
    assert [r.fitted for r in store.records()] == [{"dim": 2, "k_rule": "exact", "noise_floor": False,
                                                    "directions_x": 2, "directions_y": 2}] * 2
    [board] = boards(store.records())
    table = fitted_table(board).set_index(["aligner", "choice"])["100"]
    assert table.to_dict() == {("nullspace", "dim"): "2", ("nullspace", "directions_x"): "2",
                               ("nullspace", "directions_y"): "2", ("nullspace", "k_rule"): "exact",
                               ("nullspace", "noise_floor"): "no"}


def test_choices_over_seeds_read_as_one_value_a_range_or_a_count():
    assert over_seeds([4, 4, 4]) == "4"
    assert over_seeds([4, 24, 9]) == "4 to 24"
    assert over_seeds([0.12345, 0.12346]) == "0.1235"  # the same to 4 digits
    assert over_seeds([0.9996, 1.0]) == "0.9996 to 1"
    assert over_seeds([0.5, 0.25]) == "0.25 to 0.5"
    assert over_seeds([True, True]) == "yes" and over_seeds([False]) == "no"
    assert over_seeds([True, False, True]) == "yes in 2 of 3"
    assert over_seeds(["gap", "all", "gap"]) == "gap/all"
    assert over_seeds([1, True]) == "1/True" and over_seeds([]) == ""  # a bool is no number here


def test_the_leaderboard_tables_the_choices_and_the_json_lists_them_per_cell(registry, store, tmp_path):
    Runner(registry, store).run(reporting(tmp_path, levels=(5, 10), seeds=(0, 1)))
    md, csv, js = write_leaderboards(store, tmp_path / "boards")
    text = md.read_text()
    section = " ".join(text[text.index("### What the fit chose"):text.index("### All metrics")].split())
    assert "| reporting | dim | 16 | 16 |" in section and "| reporting | stopped | no | yes |" in section
    payload = json.loads(js.read_text())
    assert [(c["anchors"], c["seed"], c["fitted"]["anchors_seen"]) for c in payload["fitted"]] == \
        [(5, 0, 5), (5, 1, 5), (10, 0, 10), (10, 1, 10)]
    assert "anchors_seen" not in csv.read_text()  # the CSV holds scores only
    assert all("anchors_seen" not in cell for cell in payload["cells"])


OLD_SCHEMA = ("CREATE TABLE results (key TEXT PRIMARY KEY, dataset TEXT NOT NULL, aligner TEXT NOT NULL, "
              "anchors INTEGER NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL, config TEXT NOT NULL, "
              "metrics TEXT NOT NULL, timings TEXT NOT NULL, environment TEXT NOT NULL, "
              "message TEXT NOT NULL DEFAULT '', finished_at TEXT NOT NULL)")


def old_store(path):
    with sqlite3.connect(path) as old:  # the schema as alignbench wrote it before ``fitted``
        old.execute(OLD_SCHEMA)
        old.execute("INSERT INTO results VALUES ('k', 'd', 'a', 5, 0, 'ok', '{}', '{\"m\": 1.0}', '{}', '{}', '', "
                    "'now')")
    old.close()
    return path


def test_a_store_from_before_the_fitted_column_gains_it_and_keeps_its_cells(tmp_path):
    path = old_store(tmp_path / "old.sqlite")
    with ResultStore(path) as store:
        [old] = store.records()
        assert (old.metrics, old.fitted) == ({"m": 1.0}, {})
        store.put(CellRecord("j", "d", "a", 10, 0, "ok", {}, {}, {}, {}, "", "later", {"dim": 3, "rule": "gap"}))
    with ResultStore(path) as store:
        assert [r.fitted for r in store.records()] == [{}, {"dim": 3, "rule": "gap"}]


def test_a_read_only_store_from_before_the_fitted_column_is_still_read(tmp_path, monkeypatch):
    path = old_store(tmp_path / "old.sqlite")
    with ResultStore(path):  # turned to write-ahead logging once, as every store is
        pass
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE results DROP COLUMN fitted")
    db.close()
    connect = sqlite3.connect
    # Tests run as root, whom file permissions do not stop: open it read-only the way SQLite can.
    monkeypatch.setattr(alignbench.store.sqlite3, "connect",
                        lambda p, **kw: connect(f"file:{p}?mode=ro", **{**kw, "uri": True}))
    with ResultStore(path) as store:
        [old] = store.records()
        assert (old.key, old.fitted) == ("k", {})


def test_two_processes_opening_an_old_store_at_once_add_the_column_once(tmp_path):
    # The first holds the write lock with the column added and not yet committed, as a process that got
    # there first does; the second, which saw no column, must wait and then find it (adding it again
    # failed: "duplicate column name").
    path = old_store(tmp_path / "old.sqlite")
    first = sqlite3.connect(path, isolation_level=None)
    first.execute("PRAGMA journal_mode=WAL")
    first.execute("BEGIN IMMEDIATE")
    first.execute(alignbench.store.ADD_FITTED)
    opened = []

    def second():
        try:
            with ResultStore(path) as store:
                opened.append([r.fitted for r in store.records()])
        except Exception as exc:  # noqa: BLE001 - reported below
            opened.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)  # the second is waiting for the lock by now
    first.execute("COMMIT")
    first.close()
    thread.join()
    assert opened == [[{}]]
