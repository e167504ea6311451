"""Input-level corruptions: each changes exactly the rows it is asked to, the same way every time."""

import numpy as np
import pytest

from alignbench.errors import InvalidParameterError
from alignbench.plugins import load_registry
from alignbench.robustness import CorruptedItems, damaged_rows
from alignbench_plugins.datasets.fashion_mnist import CLASSES, captions_for
from alignbench_plugins.perturbations.text import synonym_table

CAPTIONS = [
    "A man riding a bike down the street.",
    "Two dogs playing in the grass near a tree.",
    "a small kitchen with a white table",
    "A woman holding an umbrella.",
    "Several people standing next to a large bus.",
    "the zebra",  # one word after the article, and no listed word
] + [c for label in range(len(CLASSES)) for c in captions_for(label)]


def textured_images(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(28, 28), dtype=np.uint8) for _ in range(n)] + \
        [rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def builtins():
    return load_registry()


def changed_rows(clean, damaged):
    return np.array([i for i, (a, b) in enumerate(zip(clean, damaged))
                     if (not np.array_equal(a, b) if isinstance(a, np.ndarray) else a != b)])


def damage_raw(perturbation, items, percent, seed):
    """What the runner does with raw items: pick rows among the changeable ones, corrupt those."""
    changeable = np.array([perturbation.can_change(item) for item in items])
    rows = damaged_rows(changeable, percent, seed)
    corrupted = CorruptedItems(items, perturbation, perturbation.seed)
    chosen = set(rows.tolist())
    return rows, [corrupted[i] if i in chosen else item for i, item in enumerate(items)]


@pytest.mark.parametrize("name, items, percent", [
    ("image-noise", textured_images(), 40),
    ("image-blur", textured_images(), 60),
    ("word-dropout", CAPTIONS, 50),
    ("synonyms", CAPTIONS, 80),
])
def test_each_corruption_changes_exactly_the_asked_fraction_reproducibly(builtins, name, items, percent):
    perturbation = builtins.create("perturbation", name)
    rows, damaged = damage_raw(perturbation, items, percent, seed=7)
    assert len(rows) == round(percent / 100 * len(items))
    np.testing.assert_array_equal(changed_rows(items, damaged), rows)
    _, again = damage_raw(perturbation, items, percent, seed=7)
    assert changed_rows(damaged, again).size == 0
    other_rows, _ = damage_raw(perturbation, items, percent, seed=8)
    assert set(other_rows) != set(rows)
    for item, corrupted in zip(items, damaged):  # the corrupted item is still a valid item of its kind
        assert type(corrupted) is type(item)
        if isinstance(item, np.ndarray):
            assert corrupted.shape == item.shape and corrupted.dtype == np.uint8


def test_image_noise_has_the_asked_strength_and_blur_smooths(builtins):
    flat = np.full((64, 64), 128, dtype=np.uint8)
    noisy = builtins.create("perturbation", "image-noise", {"sigma": 0.1}).corrupt_item(flat, np.random.default_rng(0))
    assert np.std(noisy / 255.0) == pytest.approx(0.1, rel=0.05)
    blur = builtins.create("perturbation", "image-blur", {"sigma": 2.0})
    assert not blur.can_change(flat)
    image = textured_images(1)[0]
    blurred = blur.corrupt_item(image, np.random.default_rng(0))
    assert np.abs(np.diff(blurred.astype(float), axis=1)).mean() < 0.3 * np.abs(np.diff(image.astype(float), axis=1)).mean()


@pytest.mark.parametrize("name", ["image-noise", "image-blur"])
@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32])
def test_a_slight_image_corruption_leaves_the_image_the_encoders_see(builtins, name, dtype):
    """A 16-bit image (or a float one in [0, 1]) damaged with a vanishing sigma is the 8-bit image the
    encoders read from it (16-bit levels are v / 257), not one rescaled otherwise."""
    from alignbench_plugins.encoders.images import as_uint8

    ramp = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    image = (ramp * 65535).astype(dtype) if dtype != np.float32 else ramp.astype(dtype)
    damaged = builtins.create("perturbation", name, {"sigma": 1e-6}).corrupt_item(image, np.random.default_rng(0))
    seen = as_uint8(image)
    assert seen.max() == 255 and seen.min() == 0
    assert np.abs(damaged.astype(int) - seen.astype(int)).max() <= 1


def test_word_dropout_never_empties_a_caption_and_skips_single_words(builtins):
    dropout = builtins.create("perturbation", "word-dropout", {"rate": 0.9})
    assert not dropout.can_change("zebra")
    for i, caption in enumerate(CAPTIONS):
        out = dropout.corrupt_item(caption, np.random.default_rng(i))
        words, kept = caption.split(), out.split()
        assert 1 <= len(kept) < len(words)
        assert all(w in words for w in kept)


def test_synonyms_swap_listed_words_only_and_keep_capitals(builtins):
    synonyms = builtins.create("perturbation", "synonyms", {"rate": 1.0})
    table = synonym_table()
    out = synonyms.corrupt_item("A man riding a bike.", np.random.default_rng(0))
    words = out.rstrip(".").split()
    assert words[0] == "A" and words[1] in table["man"] and words[3] == "a" and out.endswith(".")
    assert synonyms.corrupt_item("Dog on a sofa", np.random.default_rng(1)).split()[0] in \
        {s.capitalize() for s in table["dog"]}
    assert not synonyms.can_change("the zebra")


def test_every_fashion_mnist_caption_can_be_rewritten_by_the_shipped_list(builtins):
    synonyms = builtins.create("perturbation", "synonyms")
    assert all(synonyms.can_change(c) for label in range(len(CLASSES)) for c in captions_for(label))
    assert all(word not in options for word, options in synonym_table().items())


def test_a_malformed_word_list_names_the_line_and_the_format(tmp_path, builtins):
    bad = tmp_path / "words.tsv"
    bad.write_text("# mine\ncar\tautomobile\nboat\n")
    synonyms = builtins.create("perturbation", "synonyms", {"word_list": str(bad)})
    with pytest.raises(InvalidParameterError, match=r"line 3.*'boat'.*word<TAB>synonym"):
        synonyms.can_change("a boat")


def test_rates_outside_their_range_are_refused(builtins):
    with pytest.raises(InvalidParameterError, match=r"word-dropout.rate must be > 0 and < 1, got 1.5"):
        builtins.create("perturbation", "word-dropout", {"rate": 1.5}).validate()
    with pytest.raises(InvalidParameterError, match=r"synonyms.rate must be > 0 and <= 1, got 0"):
        builtins.create("perturbation", "synonyms", {"rate": 0}).validate()


def test_a_split_with_captions_synonyms_cannot_change_is_corrupted_whole(builtins):
    """The runner reads every caption of the damaged split through CorruptedItems (the damaged rows are
    picked among the changeable ones afterwards); a caption without a listed word stays as it is."""
    synonyms = builtins.create("perturbation", "synonyms")
    captions = ["a man riding a horse", "zebras grazing"]
    assert [synonyms.can_change(c) for c in captions] == [True, False]
    corrupted = list(CorruptedItems(captions, synonyms, seed=0))
    assert corrupted[1] == "zebras grazing" and corrupted[0] != captions[0]
