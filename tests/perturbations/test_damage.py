"""Which rows a perturbation damages, and what an aligner sees afterwards."""

import numpy as np
import pytest

from alignbench import Anchors, PairedData
from alignbench.errors import InvalidParameterError
from alignbench.plugins import load_registry
from alignbench.robustness import (apply_damage, damaged_rows, embedding_noise_sigma, side_of, surviving_anchors)
from alignbench.runner import unpaired_items


@pytest.fixture(scope="module")
def builtins():
    return load_registry()


def test_damaged_rows_are_exactly_the_fraction_nested_and_reproducible():
    changeable = np.ones(1001, dtype=bool)
    rows = {p: damaged_rows(changeable, p, seed=3) for p in (20, 40, 50, 60, 80)}
    for percent, chosen in rows.items():
        assert len(chosen) == round(percent / 100 * 1001)
        assert len(np.unique(chosen)) == len(chosen)
    assert set(rows[20]) < set(rows[40]) < set(rows[50]) < set(rows[60]) < set(rows[80])
    np.testing.assert_array_equal(damaged_rows(changeable, 40, seed=3), rows[40])
    assert set(damaged_rows(changeable, 40, seed=4)) != set(rows[40])


def test_damaged_rows_come_only_from_rows_the_perturbation_can_change():
    changeable = np.zeros(100, dtype=bool)
    changeable[::2] = True
    chosen = damaged_rows(changeable, 40, seed=0)
    assert len(chosen) == 40 and changeable[chosen].all()
    with pytest.raises(InvalidParameterError, match="can change only 50 of 100 rows.*lower the fraction"):
        damaged_rows(changeable, 60, seed=0)
    with pytest.raises(InvalidParameterError, match="between 1 and 99"):
        damaged_rows(changeable, 100, seed=0)


def paired(n_items=50, texts_per_item=2, seed=0):
    rng = np.random.default_rng(seed)
    return PairedData(x=rng.standard_normal((n_items, 6)).astype(np.float32),
                      y=rng.standard_normal((n_items * texts_per_item, 5)).astype(np.float32),
                      text_item=np.repeat(np.arange(n_items), texts_per_item))


def anchors_of(train, items):
    items = np.asarray(items)
    texts = np.searchsorted(train.text_item, items)  # each item's first text
    return Anchors(items=items, texts=texts, x=train.x[items], y=train.y[texts])


def test_dropping_images_loses_their_pairs_and_keeps_their_captions_unpaired(builtins):
    train = paired()
    drop = builtins.create("perturbation", "drop", {"modality": "image"})
    rows = damaged_rows(np.ones(train.n_items, bool), 40, seed=0)
    damage = apply_damage(train, drop, side_of(drop, ("image", "text")), rows, seed=0)
    assert damage.kept_items.sum() == 30 and damage.kept_texts.all()
    anchors = surviving_anchors(anchors_of(train, np.arange(20)), damage)
    assert set(anchors.items) == set(range(20)) - set(rows)
    np.testing.assert_array_equal(anchors.x, train.x[anchors.items])
    xu, yu = unpaired_items(damage.train, anchors, 0, damage.kept_items, damage.kept_texts)
    # Unpaired images: the 30 survivors that are not anchors; unpaired captions: every caption of a
    # non-anchor image, the dropped images' captions included.
    assert len(xu) == 30 - len(anchors.items)
    assert len(yu) == 2 * (50 - len(anchors.items))
    dropped_x = {tuple(train.x[i]) for i in rows}
    assert not dropped_x & {tuple(row) for row in xu}


def test_dropping_captions_loses_the_anchor_pairs_that_used_them(builtins):
    train = paired()
    drop = builtins.create("perturbation", "drop", {"modality": "text"})
    rows = damaged_rows(np.ones(train.n_texts, bool), 50, seed=1)
    damage = apply_damage(train, drop, "y", rows, seed=1)
    assert damage.kept_texts.sum() == 50 and damage.kept_items.all()
    full = anchors_of(train, np.arange(25))
    anchors = surviving_anchors(full, damage)
    assert set(anchors.texts) == set(full.texts) - set(rows)
    assert len(anchors.items) == len(anchors.texts) == len(anchors.x) == len(anchors.y)


def test_embedding_noise_hits_exactly_the_rows_asked_for_at_the_asked_snr(builtins):
    rng = np.random.default_rng(0)
    train = PairedData(x=(3 * rng.standard_normal((4000, 64)) + 5).astype(np.float32),
                       y=rng.standard_normal((4000, 8)).astype(np.float32), text_item=np.arange(4000))
    noise = builtins.create("perturbation", "embedding-noise", {"modality": "image", "snr_db": 10.0})
    rows = damaged_rows(np.ones(4000, bool), 25, seed=2)
    damage = apply_damage(train, noise, "x", rows, seed=2)
    changed = np.flatnonzero((damage.train.x != train.x).any(axis=1))
    np.testing.assert_array_equal(changed, rows)
    added = damage.train.x[rows] - train.x[rows]
    signal = np.mean((train.x - train.x.mean(0)) ** 2)  # 9: the noise must not count the mean of 5
    assert np.mean(added ** 2) == pytest.approx(signal / 10, rel=0.02)
    assert embedding_noise_sigma(train.x, 0.0) == pytest.approx(3.0, rel=0.01)
    again = apply_damage(train, noise, "x", rows, seed=2)
    np.testing.assert_array_equal(again.train.x, damage.train.x)
    np.testing.assert_array_equal(damage.train.y, train.y)


def test_embedding_noise_of_a_row_is_the_same_at_every_fraction(builtins):
    train = paired(n_items=200, texts_per_item=1)
    noise = builtins.create("perturbation", "embedding-noise", {"modality": "text"})
    small = damaged_rows(np.ones(200, bool), 20, seed=5)
    large = damaged_rows(np.ones(200, bool), 60, seed=5)
    a = apply_damage(train, noise, "y", small, seed=5).train.y
    b = apply_damage(train, noise, "y", large, seed=5).train.y
    np.testing.assert_array_equal(a[small], b[small])


def test_a_modality_the_dataset_lacks_is_named_with_the_ones_it_has(builtins):
    drop = builtins.create("perturbation", "drop", {"modality": "audio"})
    with pytest.raises(InvalidParameterError, match="'audio'.*image and text"):
        side_of(drop, ("image", "text"))


def test_no_raw_items_random_stream_is_another_purposes_stream_of_the_same_seed():
    """An item's corruption, the damaged rows, the embedding noise and the unpaired shuffle draw from
    different streams, for every item index: a stream shared by two purposes couples what should be
    independent draws (item 181's noise was the damaged-row permutation's bits)."""
    from alignbench.robustness import _NOISE_STREAM, _ROWS_STREAM, item_rng

    def state(generator):
        return tuple(generator.bit_generator.state["state"].values())

    for seed in (0, 1, 2):
        others = {state(np.random.default_rng(np.random.SeedSequence(entropy)))
                  for entropy in ([seed, _ROWS_STREAM], [seed, _NOISE_STREAM], [seed, 1], [seed])}
        items = [state(item_rng(seed, index)) for index in range(5000)]
        assert len(set(items)) == len(items) and not others & set(items)
    # The damaged rows come from their stream: the check above looks at the streams that are used.
    rows = damaged_rows(np.ones(400, dtype=bool), 50, 3)
    expected = np.sort(np.random.default_rng(np.random.SeedSequence([3, _ROWS_STREAM])).permutation(400)[:200])
    assert np.array_equal(rows, expected)
