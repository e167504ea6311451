"""`alignbench compare A B`: cells that moved by more than their seeds' spread."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from alignbench.cli import cli
from alignbench.compare import compare, load_values

COMMITTED = Path(__file__).parent.parent.parent / "leaderboards"


def shifted(payload: dict, aligner: str, anchors: int, metric: str, by) -> dict:
    out = json.loads(json.dumps(payload))
    for cell in out["cells"]:
        if cell["aligner"] == aligner and cell["anchors"] == anchors and cell.get(metric) is not None:
            cell[metric] = by(cell[metric], cell["seed"])
    return out


@pytest.fixture
def before(tmp_path):
    path = tmp_path / "before.json"
    path.write_text((COMMITTED / "synthetic-correlated.json").read_text())
    return path


def invoke(*args):
    return CliRunner().invoke(cli, ["compare", *map(str, args)])


def test_the_same_results_have_no_moved_cell(before, tiny_site):
    result = invoke(before, COMMITTED / "synthetic-correlated.json", "--fail-on-change")
    assert result.exit_code == 0 and "0 of 42 cells moved" in result.output
    # A store against the leaderboard JSON it wrote: equal up to the JSON's 6 decimals.
    result = invoke(tiny_site.store, tiny_site.leaderboards / "synthetic-correlated.json", "--fail-on-change")
    assert result.exit_code == 0, result.output
    assert "0 of 6 cells moved" in result.output


def test_a_cell_moved_beyond_its_spread_is_reported_and_fails_the_check(before, tmp_path):
    payload = json.loads(before.read_text())
    after = tmp_path / "after.json"
    after.write_text(json.dumps(shifted(payload, "procrustes", 100, "mean_R@1", lambda v, s: v - 0.05)))
    result = invoke(before, after, "--metric", "mean_R@1")
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if "procrustes" in line]
    assert len(lines) == 1 and "100" in lines[0] and "-0.05" in lines[0]
    assert "1 of 42 cells moved" in result.output
    assert invoke(before, after, "--fail-on-change").exit_code == 1


def test_a_change_within_the_seeds_spread_is_not_a_move(before):
    payload = json.loads(before.read_text())
    values = load_values(before)[("synthetic-correlated", next(iter(payload["settings"])), "gw-procrustes", 100)].metrics["mean_R@1"]
    spread = float(__import__("numpy").std(values, ddof=1))
    assert spread > 0.05  # gw-procrustes at 100 anchors is that unstable (16.8 ± 15.7 in the README)
    moved = shifted(payload, "gw-procrustes", 100, "mean_R@1", lambda v, s: v + spread / 2)
    after = before.with_name("after.json")
    after.write_text(json.dumps(moved))
    assert compare(load_values(before), load_values(after)).moved == []
    assert invoke(before, after, "--fail-on-change").exit_code == 0


@pytest.mark.parametrize("make, message", [
    (lambda t: t / "missing.json", "does not exist"),
    (lambda t: (t / "notes.txt", (t / "notes.txt").write_text("hello"))[0], "neither a results store"),
    (lambda t: (t / "x.json", (t / "x.json").write_text("[1, 2]"))[0], "is not a leaderboard JSON"),
    (lambda t: COMMITTED / "synthetic-gmm.json", "share no cell"),
    (lambda t: t, "is a folder"),
    (lambda t: (t / "deep.json", (t / "deep.json").write_text("[" * 100_000 + "]" * 100_000))[0],
     "is not a leaderboard JSON"),
    (lambda t: (t / "huge.json", (t / "huge.json").write_text(json.dumps(
        {"dataset": "d", "cells": [{"setting": "s", "aligner": "a", "anchors": 5, "seed": 0, "status": "ok",
                                    "mean_R@1": 10**400}]})))[0], "has mean_R@1 = 1000"),
])
def test_bad_inputs_are_one_line(before, tmp_path, make, message):
    result = invoke(before, make(tmp_path))
    assert result.exit_code != 0 and "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: ") and message in line


@pytest.mark.parametrize("text, message", [("NaN", "has mean_R@1 = nan"), ("Infinity", "has mean_R@1 = inf"),
                                           ("1e400", "has mean_R@1 = inf")])
def test_a_metric_that_is_not_finite_is_one_line_not_a_hidden_change(before, tmp_path, text, message):
    """NaN compares unequal to nothing moved: '0 of 6 cells moved', and --fail-on-change passed."""
    payload = json.loads(before.read_text())
    marked = shifted(payload, "procrustes", 100, "mean_R@1", lambda v, s: "MARK")
    after = tmp_path / "after.json"
    after.write_text(json.dumps(marked).replace('"MARK"', text))
    result = invoke(before, after, "--fail-on-change")
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: {after} {message}") and "null where a metric does not apply" in line


def test_a_metric_no_cell_has_is_an_error_not_an_empty_check(before, tmp_path):
    """A typo in --metric compared nothing, and --fail-on-change passed whatever had moved."""
    payload = json.loads(before.read_text())
    after = tmp_path / "after.json"
    after.write_text(json.dumps(shifted(payload, "procrustes", 100, "mean_R@1", lambda v, s: v - 0.05)))
    result = invoke(before, after, "--fail-on-change", "--metric", "mean_R@1x")
    assert result.exit_code == 1 and "--metric mean_R@1x: no cell on either side has it" in result.output
    assert "mean_R@1," in result.output and len(result.output.strip().splitlines()) == 1


def test_a_cell_that_now_fails_or_is_gone_fails_the_check(before, tmp_path):
    payload = json.loads(before.read_text())
    broken = json.loads(json.dumps(payload))
    for cell in broken["cells"]:
        if cell["aligner"] == "procrustes" and cell["anchors"] == 100:
            cell["status"] = "failed"
            for name in list(cell):
                if name not in ("aligner", "anchors", "seed", "setting", "status"):
                    cell[name] = None
    after = tmp_path / "after.json"
    after.write_text(json.dumps(broken))
    result = invoke(before, after, "--fail-on-change")
    assert result.exit_code == 1
    assert "procrustes anchors=100: seeds ok, ok, ok -> failed, failed, failed" in result.output
    assert "1 changed status" in result.output
    gone = dict(payload, cells=[c for c in payload["cells"] if c["aligner"] != "relative"])
    after.write_text(json.dumps(gone))
    result = invoke(before, after, "--fail-on-change")
    assert result.exit_code == 1 and "relative anchors=5: only in" in result.output
    assert invoke(before, before, "--fail-on-change").exit_code == 0


@pytest.mark.parametrize("cells, said", [
    ([{"aligner": "a"}], "is not a leaderboard JSON"), ([1, 2], "is not a leaderboard JSON"),
    ([{"setting": "s", "aligner": "a", "anchors": 5, "seed": 0, "status": "ok", "mean_R@1": "abc"}],
     "has mean_R@1 = abc in a cell of a at 5 anchors, not a finite number"),
    ([{"setting": "s", "aligner": "a", "anchors": 5, "seed": 0, "status": "ok", "mean_R@1": True}],
     "has mean_R@1 = True"),
    ([{"setting": "s", "aligner": "a", "anchors": 5, "seed": 0, "status": "ok"},
      {"setting": 1, "aligner": "a", "anchors": 5, "seed": 0, "status": "ok"}], "is not a leaderboard JSON")])
def test_a_malformed_leaderboard_json_is_one_line(tmp_path, before, cells, said):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dataset": "d", "cells": cells}))
    result = invoke(before, bad)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert said in result.output and len(result.output.strip().splitlines()) == 1


def test_an_infinite_parameter_in_a_setting_is_compared_like_any_other(before, tmp_path):
    """A plugin parameter may be infinite ("no limit"); alignbench writes it as Infinity in the setting."""
    payload = json.loads(before.read_text())
    setting = next(iter(payload["settings"].values()))
    setting["dataset"]["params"]["limit"] = float("inf")
    after = tmp_path / "after.json"
    after.write_text(json.dumps(payload))
    assert "Infinity" in after.read_text()
    result = invoke(before, after, "--fail-on-change")
    assert result.exit_code == 0, result.output
