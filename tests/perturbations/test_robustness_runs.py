"""The runner sweeps perturbations like supervision levels; the robustness tables read the results."""

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from alignbench.cache import EmbeddingCache
from alignbench.cli import cli
from alignbench.errors import InvalidParameterError
from alignbench.robustness_board import (check_claim, clean_table, drop_table, long_table, robustness_boards, wide_table,
                                         write_robustness)
from alignbench.runner import Runner, Sweep
from alignbench.store import CellRecord, ResultStore
from counting_plugin import ToyImageEncoder

SMALL = ("synthetic-correlated", {"n_items": 200, "dim_x": 16, "dim_y": 16, "latent_dim": 4, "specific_dim": 4})
RAW_TOY = ("raw-toy", {"n_items": 60})
TOY_ENCODERS = {"image": ("toy-image", {}), "text": ("toy-text", {})}


def sweep(perturbations, fractions=(50,), dataset=SMALL, aligners=("lstsq",), levels=(20,), seeds=(0,), **extra):
    return Sweep(aligners=[(a, {}) for a in aligners], datasets=[dataset], levels=list(levels), seeds=list(seeds),
                 perturbations=list(perturbations), fractions=list(fractions), **extra)


def test_damaged_cells_sit_beside_clean_ones_whose_keys_do_not_change(registry, store):
    runner = Runner(registry, store)
    clean = {c.key for c in runner.plan(sweep([]))}
    cells = runner.plan(sweep([("drop", {"modality": "text"}), ("embedding-noise", {})], fractions=(20, 60)))
    assert len(cells) == 1 + 2 * 2
    assert clean == {c.key for c in cells if not c.perturbation}
    assert sorted(c.perturbation for c in cells if c.perturbation) == [
        "drop(text) 20%", "drop(text) 60%", "embedding-noise(image) 20%", "embedding-noise(image) 60%"]

    summary = runner.run(sweep([("drop", {"modality": "text"})], fractions=(20, 60)))
    assert summary.ran == 3 and not summary.failed
    damaged = [r for r in store.records() if "perturbation" in r.config]
    assert {r.config["perturbation"]["fraction"] for r in damaged} == {20, 60}
    assert all(r.config["perturbation"]["stage"] == "drop" for r in damaged)
    again = runner.run(sweep([("drop", {"modality": "text"})], fractions=(20, 60)))
    assert (again.ran, again.skipped) == (0, 3)


def test_bad_perturbation_settings_fail_before_any_work(registry, store):
    runner = Runner(registry, store)
    with pytest.raises(InvalidParameterError, match="need damage fractions"):
        runner.plan(sweep([("drop", {})], fractions=()))
    with pytest.raises(InvalidParameterError, match="between 1 and 99"):
        runner.plan(sweep([("drop", {})], fractions=(0,)))
    with pytest.raises(InvalidParameterError, match="damages image items, not 'text'"):
        runner.plan(sweep([("image-noise", {"modality": "text"})]))
    with pytest.raises(InvalidParameterError, match="standard protocol"):
        runner.plan(sweep([("drop", {})], protocol="paper"))
    assert len(store) == 0


def test_raw_corruptions_of_a_dataset_of_embeddings_are_refused_before_any_cell(registry, store):
    """They were n/a cell by cell, and the robustness table came out empty without a word."""
    with pytest.raises(InvalidParameterError, match="synonyms corrupts raw items .* holds embeddings"):
        Runner(registry, store).run(sweep([("synonyms", {})]))
    assert len(store) == 0


def test_raw_corruption_is_encoded_once_cached_apart_and_damages_exactly_the_fraction(registry, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    damaged_sweep = sweep([("image-noise", {})], fractions=(25, 50), dataset=RAW_TOY, levels=(10,), seeds=(0, 1),
                          encoders=TOY_ENCODERS)
    with ResultStore(tmp_path / "a.sqlite") as store:
        runner = Runner(registry, store, cache=cache)
        cells = [c for c in runner.plan(damaged_sweep) if c.perturbation]
        splits = runner.splits_for(cells[0].config)
        for cell in cells:
            damage = runner.damage(cell, splits)
            corrupted = runner.data.corrupted_inputs(cell).embedded
            assert len(damage.rows) == round(cell.config["perturbation"]["fraction"] / 100 * 60)
            # The damaged rows hold the corrupted copy, the others stay clean. (A toy image whose
            # pixel sits at 0 may come back unchanged: the noise is clipped to the pixel range.)
            np.testing.assert_array_equal(damage.train.x[damage.rows], corrupted[damage.rows])
            clean = np.setdiff1d(np.arange(60), damage.rows)
            np.testing.assert_array_equal(damage.train.x[clean], splits.train.x[clean])
            assert (corrupted[damage.rows] != splits.train.x[damage.rows]).any(axis=1).mean() > 0.9
            np.testing.assert_array_equal(damage.train.y, splits.train.y)
    entries = [e.meta["dataset"] for e in cache.entries()]
    assert sum("perturbation" in d for d in entries) == 1  # one corrupted copy of the train images
    calls = ToyImageEncoder.calls
    with ResultStore(tmp_path / "b.sqlite") as store:
        summary = Runner(registry, store, cache=cache).run(damaged_sweep)
    assert summary.ran == 6 and not summary.failed
    assert ToyImageEncoder.calls == calls, "cached embeddings were encoded again"


def test_an_aligner_left_without_anchors_is_not_applicable(registry, store):
    Runner(registry, store).run(sweep([("drop", {"modality": "image"})], fractions=(99,), levels=(2,)))
    record = [r for r in store.records() if "perturbation" in r.config][0]
    assert record.status == "n/a" and "0 of 2 anchor pairs survive" in record.message


def record(aligner, seed, value, fraction=None, perturbation="drop", modality="text", anchors=100):
    config = {"dataset": {"name": "toy", "params": {}}, "encoders": {}, "anchors": anchors, "seed": seed,
              "aligner": {"name": aligner, "params": {}, "source": "test"}, "anchor_strategy": "random",
              "metrics": [{"name": "retrieval", "params": {}, "source": "test", "version": "2"}]}
    if fraction is not None:
        config["perturbation"] = {"name": perturbation, "params": {"modality": modality}, "source": "test",
                                  "stage": "drop", "fraction": fraction}
    key = f"{aligner}-{seed}-{fraction}-{perturbation}-{modality}-{anchors}"
    return CellRecord(key=key, dataset="toy", aligner=aligner, anchors=anchors, seed=seed, status="ok", config=config,
                      metrics={"mean_R@1": value}, timings={}, environment={}, message="", finished_at="")


@pytest.fixture
def known_store(tmp_path):
    """Clean and damaged results with known means and a small seed spread: ot-riemannian 0.70 -> 0.665
    at 50% (-5%), its contrastive-only ablation 0.50 -> 0.30 (-40%), lstsq 0.40 -> 0.10 at 80% (-75%)."""
    with ResultStore(tmp_path / "known.sqlite") as store:
        for seed in (0, 1):
            store.put(record("ot-riemannian", seed, [0.71, 0.69][seed]))
            store.put(record("ot-riemannian", seed, [0.67, 0.66][seed], fraction=50))
            store.put(record("ot-riemannian-contrastive", seed, [0.51, 0.49][seed]))
            store.put(record("ot-riemannian-contrastive", seed, [0.31, 0.29][seed], fraction=50))
            store.put(record("lstsq", seed, 0.4))
            store.put(record("lstsq", seed, 0.1, fraction=80))
        yield store


def test_relative_drops_against_the_clean_run_are_computed_from_the_seed_means(known_store):
    (rboard,) = robustness_boards(known_store.records())
    drops = drop_table(long_table(rboard), "mean_R@1").set_index(["aligner", "fraction"])
    assert drops.loc[("ot-riemannian", 50), "clean"] == pytest.approx(0.70)
    assert drops.loc[("ot-riemannian", 50), "relative_drop"] == pytest.approx(0.05)
    assert drops.loc[("ot-riemannian-contrastive", 50), "relative_drop"] == pytest.approx(0.40)
    assert drops.loc[("lstsq", 80), "relative_drop"] == pytest.approx(0.75)
    # The standard error of the seeds' own drops (each against its own clean run): paired, not the
    # two means' errors combined, which would count the spread the seeds' anchors share twice.
    expected = np.std([1 - 0.67 / 0.71, 1 - 0.66 / 0.69], ddof=1) / np.sqrt(2)
    assert drops.loc[("ot-riemannian", 50), "drop_error"] == pytest.approx(expected)
    (check,) = check_claim(drops.reset_index(), "mean_R@1")
    assert check.holds is True and check.perturbation == "drop(text)"
    assert "ot-riemannian 5% ± 1" in check.sentence() and "holds here" in check.sentence()


def test_a_drop_within_its_seed_error_of_the_bound_leaves_the_claim_undecided(known_store):
    """A near-chance score whose seeds disagree: -5% and -40% on seeds that differ by 0.2 decide nothing."""
    for seed in (0, 1):
        known_store.put(record("ot-riemannian", seed, [0.8, 0.6][seed]))
        known_store.put(record("ot-riemannian", seed, [0.7, 0.63][seed], fraction=50))
    (rboard,) = robustness_boards(known_store.records())
    (check,) = check_claim(drop_table(long_table(rboard), "mean_R@1"), "mean_R@1")
    assert check.geometric_holds is None and check.contrastive_holds is True and check.holds is None
    assert "cannot be decided here" in check.sentence() and "geometric <= 10%: undecided" in check.sentence()


def test_clean_runs_of_aligners_or_seeds_never_damaged_stay_out_of_the_tables(known_store):
    """The main sweep's cells in the same store (another aligner, or another seed, at the same level)
    are no baseline: the clean mean is over the damaged cells' own seeds."""
    known_store.put(record("relative", 0, 0.3))
    known_store.put(record("ot-riemannian", 2, 0.10))  # a third seed, never damaged
    (rboard,) = robustness_boards(known_store.records())
    assert "relative" not in set(long_table(rboard)["aligner"])
    assert {r.aligner for r in rboard.clean} == {"ot-riemannian", "ot-riemannian-contrastive", "lstsq"}
    assert {r.seed for r in rboard.clean} == {0, 1}
    drops = drop_table(long_table(rboard), "mean_R@1").set_index(["aligner", "fraction"])
    assert drops.loc[("ot-riemannian", 50), "clean"] == pytest.approx(0.70)


def test_the_clean_mean_is_over_the_same_seeds_as_the_damaged_one(known_store):
    """A damaged cell that did not finish leaves its seed out of both means."""
    damaged = [r for r in known_store.records() if r.aligner == "ot-riemannian" and r.seed == 1
               and "perturbation" in r.config][0]
    known_store.put(dataclasses.replace(damaged, status="failed", metrics={}))
    (rboard,) = robustness_boards(known_store.records())
    drops = drop_table(long_table(rboard), "mean_R@1").set_index(["aligner", "fraction"])
    assert drops.loc[("ot-riemannian", 50), "clean"] == pytest.approx(0.71)
    assert drops.loc[("ot-riemannian", 50), "relative_drop"] == pytest.approx(1 - 0.67 / 0.71)
    assert np.isnan(drops.loc[("ot-riemannian", 50), "drop_error"])


def test_one_seed_decides_nothing(tmp_path):
    with ResultStore(tmp_path / "one.sqlite") as store:
        store.put(record("ot-riemannian", 0, 0.7))
        store.put(record("ot-riemannian", 0, 0.7, fraction=50))
        store.put(record("ot-riemannian-contrastive", 0, 0.5))
        store.put(record("ot-riemannian-contrastive", 0, 0.1, fraction=50))
        (rboard,) = robustness_boards(store.records())
    (check,) = check_claim(drop_table(long_table(rboard), "mean_R@1"), "mean_R@1")
    assert check.holds is None and check.geometric_holds is None and check.contrastive_holds is None


def test_the_claim_fails_when_the_geometric_loss_drops_too_much(known_store):
    for seed in (0, 1):
        known_store.put(record("ot-riemannian", seed, 0.5, fraction=50))  # replaces: 0.70 -> 0.50 (-29%)
    (rboard,) = robustness_boards(known_store.records())
    (check,) = check_claim(drop_table(long_table(rboard), "mean_R@1"), "mean_R@1")
    assert check.holds is False and check.geometric_holds is False and check.contrastive_holds is True
    assert "does not hold here (geometric <= 10%: no; contrastive-only >= 30%: yes)" in check.sentence()


def test_robustness_files_are_deterministic_and_hold_the_table(known_store, tmp_path):
    first = write_robustness(known_store, tmp_path / "a")
    second = write_robustness(known_store, tmp_path / "b")
    assert [p.name for p in first] == ["toy-robustness.md", "toy-robustness.csv", "toy-robustness.json"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()
    markdown = first[0].read_text()
    assert "| ot-riemannian-contrastive | drop(text)     | 50.0    | 30.0 (-40%) |" in markdown
    assert "holds here" in markdown
    assert "changes each item the same way in every seed" in markdown  # what ± spans, said
    payload = json.loads(first[2].read_text())
    assert payload["claim_seed_001"][0]["holds"] is True
    assert set(payload["claim_seed_001"][0]["standard_errors"]) == {"ot-riemannian", "ot-riemannian-contrastive"}
    assert {round(row["relative_drop"], 6) for row in payload["summary"]} == {0.05, 0.4, 0.75}


def test_the_main_leaderboard_leaves_damaged_cells_out(known_store, tmp_path):
    from alignbench.leaderboard import boards

    (board,) = boards(known_store.records())
    assert all("perturbation" not in r.config for r in board.records) and len(board.records) == 6


def test_robustness_command_runs_a_small_suite(tmp_path):
    args = ["robustness", "--dataset", "synthetic-gmm", "--aligner", "lstsq", "--perturbation", "drop:text",
            "--perturbation", "embedding-noise", "--fractions", "20,60", "--anchors", "10", "--seeds", "0",
            "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert re.search(r"\| lstsq +\| drop\(text\) +\| [\d.]+ +\| [\d.]+ \([+-]?\d+%\) +\| [\d.]+ \(", result.output)
    assert (tmp_path / "synthetic-gmm-robustness.csv").exists()
    assert not (tmp_path / "synthetic-gmm.md").exists()
    # `alignbench leaderboard` rewrites both kinds of table from the store, byte for byte.
    table = (tmp_path / "synthetic-gmm-robustness.md").read_bytes()
    again = CliRunner().invoke(cli, ["leaderboard", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "b" / "synthetic-gmm-robustness.md").read_bytes() == table
    assert (tmp_path / "b" / "synthetic-gmm.md").exists()  # the clean cells' leaderboard


@pytest.mark.parametrize("args, message", [
    (["--perturbation", "dropp"], "unknown perturbation 'dropp'. Did you mean 'drop'?"),
    (["--perturbation", ":text"], "write NAME or NAME:MODALITY"),
    (["--fractions", "20,x"], "--fractions must be comma-separated integers"),
    (["--perturbation", "drop:audio"], "damages 'audio', but synthetic-gmm holds image and text"),
])
def test_robustness_command_errors_name_the_fix(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["robustness", "--dataset", "synthetic-gmm", "--aligner", "lstsq", "--seeds", "0",
                                      "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path), *args])
    assert result.exit_code != 0
    assert message in result.output


def test_list_shows_the_perturbations():
    result = CliRunner().invoke(cli, ["list", "--kind", "perturbation"])
    assert result.exit_code == 0, result.output
    for name in ("drop", "embedding-noise", "image-noise", "image-blur", "word-dropout", "synonyms"):
        assert re.search(rf"^perturbation +{name} +alignbench ", result.output, re.M), name


def test_damaged_cells_record_the_anchor_pairs_left_and_the_table_shows_the_choices_that_moved(registry, store,
                                                                                               tmp_path):
    damage = [("drop", {"modality": "text"}), ("embedding-noise", {})]
    Runner(registry, store).run(sweep(damage, fractions=(20, 60), aligners=("procrustes",), levels=(20,)))
    fitted = {(r.config["perturbation"]["name"], r.config["perturbation"]["fraction"]): r.fitted
              for r in store.records() if "perturbation" in r.config}
    # Noise removes no pair; a drop removes the anchors whose caption it takes, more at 60% (nested).
    assert fitted[("embedding-noise", 20)]["anchor_pairs"] == fitted[("embedding-noise", 60)]["anchor_pairs"] == 20
    left = [fitted[("drop", f)]["anchor_pairs"] for f in (20, 60)]
    assert 20 > left[0] > left[1] > 0
    rank = {damage: choices["map_rank"] for damage, choices in fitted.items()}
    # The pairs bound the rank of the map they determine (16 dimensions bound it too).
    assert all(rank[damage] <= min(choices["anchor_pairs"], 16) for damage, choices in fitted.items())
    assert rank[("drop", 60)] < rank[("embedding-noise", 60)]
    [md, _, js] = write_robustness(store, tmp_path)
    section = " ".join(md.read_text().split("### What the fits chose", 1)[1].split("### Perturbation", 1)[0].split())
    assert f"| procrustes | drop(text) | anchor_pairs | 20 | {left[0]} | {left[1]} |" in section
    assert "| procrustes | drop(text) | map_rank |" in section
    assert "embedding-noise" not in section  # nothing the noise changed
    cells = json.loads(js.read_text())["fitted"]
    assert [(c["perturbation"], c["fraction"], c["fitted"]["anchor_pairs"]) for c in cells] == [
        ("drop(text)", 20, left[0]), ("drop(text)", 60, left[1]), ("embedding-noise(image)", 20, 20),
        ("embedding-noise(image)", 60, 20)]


def test_a_fraction_without_a_finished_cell_is_no_change_of_what_the_fit_chose(tmp_path):
    from alignbench.robustness_board import fitted_table

    with ResultStore(tmp_path / "s.sqlite") as store:
        for seed in (0, 1):
            store.put(dataclasses.replace(record("nullspace", seed, 0.5), fitted={"dim": 5}))
            store.put(dataclasses.replace(record("nullspace", seed, 0.4, fraction=50), fitted={"dim": 5}))
            store.put(dataclasses.replace(record("nullspace", seed, 0.0, fraction=80), status="n/a", metrics={}))
        [rboard] = robustness_boards(store.records())
        assert fitted_table(rboard, 100).empty  # 5, 5 and nothing: unchanged (anchor_pairs stays 100 too)
        store.put(dataclasses.replace(record("nullspace", 0, 0.3, fraction=80), fitted={"dim": 3}))
        [rboard] = robustness_boards(store.records())
        assert fitted_table(rboard, 100).to_dict("records") == [
            {"aligner": "nullspace", "perturbation": "drop(text)", "choice": "dim", "clean": "5", "50%": "5",
             "80%": "3"}]


def _frame(cells):
    """(perturbation, fraction, seed, status, value) -> a long table of one aligner at 100 anchors."""
    return pd.DataFrame([dict(aligner="a", perturbation=p, fraction=f, anchors=100, seed=s, status=st,
                              m=v if st == "ok" else np.nan) for p, f, s, st, v in cells])


def test_a_drop_compares_the_same_seeds_when_a_clean_cell_failed():
    # Seed 1's clean cell failed: its damaged score (0.10) has no baseline and must not enter the mean.
    frame = _frame([("clean", 0, 0, "ok", 0.5), ("clean", 0, 1, "failed", 0), ("clean", 0, 2, "ok", 0.7),
                    ("drop(image)", 50, 0, "ok", 0.4), ("drop(image)", 50, 1, "ok", 0.1), ("drop(image)", 50, 2, "ok", 0.5)])
    [row] = drop_table(frame, "m").to_dict("records")
    assert row["seeds"] == 2 and row["value"] == pytest.approx(0.45) and row["clean"] == pytest.approx(0.6)
    assert row["relative_drop"] == pytest.approx(1 - 0.45 / 0.6)
    # The drop's standard error is over the same two seeds' own drops: 0.2 and 1 - 0.5/0.7.
    assert row["drop_error"] == pytest.approx(np.std([0.2, 1 - 0.5 / 0.7], ddof=1) / np.sqrt(2))


def test_a_fraction_over_fewer_seeds_says_so_beside_its_drop():
    cells = [("clean", 0, s, "ok", c) for s, c in ((0, 0.5), (1, 0.9), (2, 0.7))]
    cells += [("drop(image)", 20, s, "ok", c - 0.1) for s, c in ((0, 0.5), (1, 0.9), (2, 0.7))]
    cells += [("drop(image)", 80, 0, "ok", 0.2), ("drop(image)", 80, 1, "n/a", 0), ("drop(image)", 80, 2, "ok", 0.4)]
    [row] = wide(cells)
    assert row["clean"] == "70.0" and row["20%"] == "60.0 (-14%)"
    assert row["80%"] == "30.0 (-50%; 2 of 3 seeds)"  # 0.3 against seeds 0 and 2's clean mean 0.6


def wide(cells):
    frame = _frame(cells)
    return wide_table(drop_table(frame, "m"), 100, clean_table(frame, "m"), frame["seed"].nunique()).to_dict("records")


def test_means_over_fewer_seeds_say_so_whichever_cell_is_missing():
    # Each fraction misses another seed (same count, other seeds); then a clean cell fails, which
    # takes its seed out of every fraction: every such mean says over how many seeds it is.
    clean = [("clean", 0, s, "ok", c) for s, c in ((0, 0.5), (1, 0.9), (2, 0.4))]
    cells = clean + [("drop(image)", 20, 0, "ok", 0.4), ("drop(image)", 20, 1, "ok", 0.8),
                     ("drop(image)", 20, 2, "failed", 0), ("drop(image)", 80, 0, "ok", 0.2),
                     ("drop(image)", 80, 1, "failed", 0), ("drop(image)", 80, 2, "ok", 0.4)]
    [row] = wide(cells)
    assert row == {"aligner": "a", "perturbation": "drop(image)", "clean": "60.0",
                   "20%": "60.0 (-14%; 2 of 3 seeds)", "80%": "30.0 (-33%; 2 of 3 seeds)"}
    failed_clean = [("clean", 0, 1, "failed", 0) if c[2] == 1 else c for c in clean]
    [row] = wide(failed_clean + [(p, f, s, "ok", 0.3) for p, f, s, _, _ in cells[3:]])
    assert row == {"aligner": "a", "perturbation": "drop(image)", "clean": "45.0 (2 of 3 seeds)",
                   "20%": "30.0 (-33%; 2 of 3 seeds)", "80%": "30.0 (-33%; 2 of 3 seeds)"}


def test_input_corruptions_record_how_their_items_streams_are_drawn(registry, store):
    """The streams that corrupt raw items changed once: cells and corrupted copies from before keep
    keys of their own, and drop and embedding-stage cells keep theirs."""
    from alignbench.plan import perturbation_identity
    from alignbench.robustness import ITEM_STREAMS

    cells = Runner(registry, store).plan(sweep([("word-dropout", {}), ("drop", {"modality": "text"})],
                                               dataset=RAW_TOY, encoders=TOY_ENCODERS))
    damaged = {c.config["perturbation"]["stage"]: c.config["perturbation"] for c in cells if c.perturbation}
    assert damaged["input"]["item_streams"] == ITEM_STREAMS == 2
    assert perturbation_identity(damaged["input"])["item_streams"] == 2
    assert "item_streams" not in damaged["drop"]


def test_one_perturbation_with_other_parameters_or_item_streams_is_another_row(tmp_path):
    """Cells of one perturbation and modality under two parameter sets, or from before and after its
    item streams changed, were one row averaging both."""
    from alignbench.robustness_board import robustness_boards

    def damaged(seed, value, **change):
        cell = record("lstsq", seed, value, fraction=50, perturbation="image-noise", modality="image")
        damage = cell.config["perturbation"]
        damage.update(stage="input", item_streams=2)
        damage["params"] = {**damage["params"], "sigma": 0.2}
        for key, new in change.items():
            if key == "sigma":
                damage["params"]["sigma"] = new
            elif new is None:
                damage.pop(key)
            else:
                damage[key] = new
        return dataclasses.replace(cell, key=f"{cell.key}-{sorted(change.items())}")

    records = [record("lstsq", 0, 0.4), damaged(0, 0.3), damaged(0, 0.1, sigma=0.5), damaged(0, 0.2, item_streams=None)]
    [rboard] = robustness_boards(records)
    table = long_table(rboard)
    rows = dict(zip(table["perturbation"], table["mean_R@1"]))
    assert rows == {"clean": 0.4, "image-noise(image; sigma=0.2) [test, version none, item streams 2]": 0.3,
                    "image-noise(image; sigma=0.5)": 0.1,
                    "image-noise(image; sigma=0.2) [test, version none, item streams 1]": 0.2}
    # One parameter set alone keeps the plain label, which the claim checks and the README read.
    [alone] = robustness_boards(records[:2])
    assert set(long_table(alone)["perturbation"]) == {"clean", "image-noise(image)"}
