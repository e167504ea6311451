"""The conformance suite tests behaviour: each check fails on a component with that check's bug planted.

A suite that passes a broken component is worse than none (sklearn #33003). For every behavioural
check there is a deliberately broken component here that it must catch, and a sound one it must pass.
"""

import subprocess
import sys
import textwrap
import unittest

import numpy as np
import pytest

import alignbench
from alignbench.errors import InvalidInputError
from alignbench.testing import (check_dataset, check_encoder, check_metric, dataset_checks, encoder_checks,
                                expect_failures, metric_checks, nonempty, permuted_result, random_result, run_checks,
                                toy_result)


def _run(checks, name):
    [check] = [c for c in checks if c.id.endswith(f"-{name}")]
    return check()


# --------------------------------------------------------------------------------------- metrics


class ToyRecall(alignbench.Metric):
    """A sound metric: how often an item's nearest text is one of its own."""

    name = "toy-recall"
    higher_is_better = {"recall": True}

    def __init__(self):
        pass

    def compute(self, result):
        distances = ((result.zx[:, None, :] - result.zy[None, :, :]) ** 2).sum(-1)
        nearest = result.test.text_item[np.argmin(distances, axis=1)]
        return {"recall": float(np.mean(nearest == np.arange(len(result.zx))))}


class AlwaysHalf(ToyRecall):
    name = "always-half"

    def compute(self, result):
        return {"recall": 0.5}


class PrefersNoise(ToyRecall):
    """Declares the wrong direction: a perfect alignment scores worse than a random one."""

    name = "prefers-noise"
    higher_is_better = {"recall": False}


class FirstRowOnly(ToyRecall):
    """Scores only the first item: depends on the order the items come in."""

    name = "first-row"

    def compute(self, result):
        return {"recall": float(result.zx[0] @ result.zy[result.test.texts_of(0)[0]])}


def test_a_sound_metric_passes_every_check():
    assert check_metric(ToyRecall()) == 7  # the 2 parameter checks skip: it has no numeric parameter


def test_a_metric_that_always_returns_one_value_is_caught():
    with pytest.raises(AssertionError, match="no score tells a perfect alignment from a random one"):
        _run(metric_checks(AlwaysHalf()), "check_perfect_beats_random")


def test_a_metric_that_scores_noise_above_a_perfect_alignment_is_caught():
    with pytest.raises(AssertionError, match="perfect alignment scores worse than a random one on: recall"):
        _run(metric_checks(PrefersNoise()), "check_perfect_beats_random")


def test_a_metric_that_depends_on_item_order_is_caught():
    with pytest.raises(AssertionError, match="reordering the items .* changed"):
        _run(metric_checks(FirstRowOnly()), "check_invariant_to_item_order")


def test_a_metric_whose_scores_break_its_declared_relations_is_caught():
    class CappedRecall(ToyRecall):
        """Declares recall at most 0.5: the perfect alignment's 1.0 breaks it."""

        @classmethod
        def inconsistencies(cls, values):
            return [f"recall = {values['recall']} is above 0.5"] if values["recall"] > 0.5 else []

    with pytest.raises(AssertionError, match="on the perfect alignment: recall = 1.0 is above 0.5"):
        _run(metric_checks(CappedRecall()), "check_scores_keep_their_declared_relations")


def test_the_reference_alignments_are_what_they_claim():
    perfect, random = toy_result(), random_result()
    assert np.array_equal(perfect.test.x, random.test.x) and np.array_equal(perfect.anchors.x, random.anchors.x)
    assert ToyRecall().compute(perfect)["recall"] == 1.0 and ToyRecall().compute(random)["recall"] < 0.2
    moved = permuted_result(perfect)
    assert not np.array_equal(moved.zx, perfect.zx)
    assert ToyRecall().compute(moved) == ToyRecall().compute(perfect)
    assert sorted(map(tuple, moved.test.latent)) == sorted(map(tuple, perfect.test.latent))


def test_expected_failures_on_the_class_apply_to_every_kind():
    class Declared(AlwaysHalf):
        expected_failures = {"check_perfect_beats_random": "a constant, on purpose"}

    assert check_metric(Declared()) == 7
    with pytest.raises(AssertionError, match="was expected to fail .* but passed; remove it"):
        class Stale(ToyRecall):
            expected_failures = {"check_perfect_beats_random": "no longer true"}

        check_metric(Stale())


# --------------------------------------------------------------------------------------- datasets


class Splits(alignbench.Dataset):
    """Embedded toy data; ``leak=True`` hands the train rows out again as the test split, under new ids."""

    name = "toy-splits"

    def __init__(self, leak: bool = False):
        self.leak = leak

    def load(self):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((40, 4)).astype(np.float32)

        def split(rows, prefix):
            return alignbench.PairedData(x=x[rows], y=x[rows] + 0.1, text_item=np.arange(len(rows)),
                                         item_ids=tuple(f"{prefix}-{i}" for i in range(len(rows))))

        return alignbench.DatasetSplits(train=split(np.arange(20), "train"),
                                        test=split(np.arange(20) if self.leak else np.arange(20, 40), "test"))


class RawSplits(Splits):
    """Raw images; the leaking version copies one train image into the test split."""

    name = "toy-raw-splits"
    raw = True

    def load(self):
        images = [np.full((6, 6), i, np.uint8) for i in range(12)]
        test = images[6:] if not self.leak else images[7:] + [images[0].copy()]

        def split(items, prefix):
            return alignbench.PairedData(x=items, y=[f"image {i}" for i in range(len(items))],
                                         text_item=np.arange(len(items)),
                                         item_ids=tuple(f"{prefix}-{i}" for i in range(len(items))))

        return alignbench.DatasetSplits(train=split(images[:6], "train"), test=split(test, "test"))


@pytest.mark.parametrize("dataset", [Splits, RawSplits])
def test_a_sound_dataset_passes_every_check(dataset):
    assert check_dataset(dataset()) == 5  # no numeric parameter: the parameter checks skip


@pytest.mark.parametrize("dataset", [Splits, RawSplits])
def test_a_test_split_that_repeats_train_items_is_caught_by_content(dataset):
    checks = dataset_checks(dataset(leak=True))
    _run(checks, "check_splits_disjoint")  # the ids differ, so the id check alone passes it
    with pytest.raises(AssertionError, match="test items equal a train item.*leaks training data"):
        _run(checks, "check_no_test_item_in_train")


# --------------------------------------------------------------------------------------- encoders


class ToyTextEncoder(alignbench.Encoder):
    """A sound encoder: character counts, one row per text, whatever the batch."""

    name = "toy-chars"
    modality = "text"
    parameter_ranges = {"scale": alignbench.Range(low=0, open_low=True)}

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    @property
    def dim(self):
        return 26

    def encode(self, items):
        if not all(isinstance(item, str) for item in items):
            raise InvalidInputError("toy-chars encodes text; pass strings")
        out = np.zeros((len(items), 26), np.float32)
        for row, text in enumerate(items):
            for char in text.lower():
                if "a" <= char <= "z":
                    out[row, ord(char) - 97] += self.scale
        return out


class IgnoresInput(ToyTextEncoder):
    name = "ignores-input"

    def encode(self, items):
        return np.ones((len(items), 26), np.float32)


class RandomOutput(ToyTextEncoder):
    name = "random-output"

    def encode(self, items):
        return np.random.default_rng().standard_normal((len(items), 26)).astype(np.float32)


class BatchDependent(ToyTextEncoder):
    """Normalizes over the batch, as a batch-norm layer left in training mode would."""

    name = "batch-dependent"

    def encode(self, items):
        e = super().encode(items)
        return (e - e.mean(0)) if len(e) > 1 else e


class Float64(ToyTextEncoder):
    name = "float64"

    def encode(self, items):
        return super().encode(items).astype(np.float64)


class FlatWhenEmpty(ToyTextEncoder):
    name = "flat-when-empty"

    def encode(self, items):
        return super().encode(items) if items else np.zeros((0,), np.float32)


class Unavailable(IgnoresInput):
    name = "unavailable"

    def available(self):
        return False


class TakesAnything(ToyTextEncoder):
    """Encodes images as if they were text: the characters of their repr."""

    name = "takes-anything"

    def encode(self, items):
        return super().encode([item if isinstance(item, str) else repr(item) for item in items])


class FailsDeepInside(ToyTextEncoder):
    """Images reach the tokenizer and fail there, with an error that says nothing about modalities."""

    name = "fails-deep-inside"

    def encode(self, items):
        return super().encode([item.lower() for item in items])


class VagueError(ToyTextEncoder):
    name = "vague-error"

    def encode(self, items):
        if not all(isinstance(item, str) for item in items):
            raise InvalidInputError("bad input")
        return super().encode(items)


def test_a_sound_encoder_passes_every_check():
    assert check_encoder(ToyTextEncoder()) == 10


@pytest.mark.parametrize("encoder, check, message", [
    (IgnoresInput(), "check_distinct_items_differ", "got the same embedding: the encoder ignores its input"),
    (RandomOutput(), "check_deterministic", "encoding the same items twice gave other numbers"),
    (BatchDependent(), "check_batch_size_invariant", "depends on the batch it is encoded in"),
    (Float64(), "check_output_shape_and_dtype", "dtype float64, expected float32"),
    (FlatWhenEmpty(), "check_empty_input", r"no items gave shape \(0,\), expected \(0, 26\)"),
    (TakesAnything(), "check_rejects_the_other_modality", "image items were encoded by a text encoder"),
    (FailsDeepInside(), "check_rejects_the_other_modality", "expected InvalidInputError naming 'text', got AttributeError"),
    (VagueError(), "check_rejects_the_other_modality", "does not say the encoder takes text"),
], ids=lambda v: v if isinstance(v, str) and v.startswith("check_") else None)
def test_a_broken_encoder_is_caught(encoder, check, message):
    with pytest.raises(AssertionError, match=message):
        _run(encoder_checks(encoder), check)


def test_an_unavailable_encoder_is_skipped_with_the_reason_not_passed():
    checks = encoder_checks(Unavailable())
    with pytest.raises(unittest.SkipTest, match="not available here"):
        _run(checks, "check_distinct_items_differ")  # would fail if it ran
    _run(checks, "check_params_roundtrip")  # needs no model: runs anyway, like the parameter checks
    _run(checks, "check_out_of_range_parameters_rejected")
    with pytest.raises(AssertionError, match="all 7 conformance checks were skipped|none ran"):
        run_checks([c for c in checks if not any(word in c.id for word in ("roundtrip", "modality", "parameter"))])


def test_an_encoder_skips_only_when_it_says_it_is_unavailable():
    class Broken(FlatWhenEmpty):
        def available(self):
            return True

    with pytest.raises(AssertionError):
        _run(encoder_checks(Broken()), "check_empty_input")


def test_encoder_checks_take_items_of_other_modalities():
    class Audio(ToyTextEncoder):
        modality = "audio"

    with pytest.raises(AssertionError, match="pass items="):
        _run(encoder_checks(Audio()), "check_output_shape_and_dtype")
    checks = encoder_checks(Audio(), items=["beep", "boop bop"])
    with pytest.raises(unittest.SkipTest, match="no sample items of a modality other than 'audio'"):
        _run(checks, "check_rejects_the_other_modality")
    assert run_checks(checks) == 9  # the other-modality check skipped, with its reason


# --------------------------------------------------------------------------------------- empty suites


def test_an_empty_list_of_checks_becomes_a_failing_check():
    [check] = nonempty([], "aligner checks")
    with pytest.raises(AssertionError, match="no aligner checks were collected"):
        check()


def test_the_readme_parametrize_pattern_fails_on_an_empty_suite(tmp_path):
    """pytest skips a test parametrized over an empty list, which a CI run reads as green."""
    (tmp_path / "test_empty_suite.py").write_text(textwrap.dedent("""
        import pytest
        from alignbench.testing import nonempty

        @pytest.mark.parametrize("check", nonempty([]), ids=lambda c: c.id)
        def test_conformance(check):
            check()
    """))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1 and "1 failed" in done.stdout, done.stdout


def test_expected_failures_must_name_a_check_and_give_a_reason():
    checks = metric_checks(ToyRecall())
    with pytest.raises(ValueError, match="name no check: check_typo"):
        expect_failures(checks, {"check_typo": "x"})
    with pytest.raises(ValueError, match="needs a stated reason"):
        expect_failures(checks, {"check_has_version": " "})


# --------------------------------------------------------------------------------------- parameters


def test_a_numeric_parameter_without_a_declared_range_fails():
    class Undeclared(ToyTextEncoder):
        parameter_ranges = {}

    with pytest.raises(AssertionError, match=r"\['scale'\] have no entry in parameter_ranges"):
        _run(encoder_checks(Undeclared()), "check_numeric_parameters_declare_ranges")


def test_a_range_for_no_parameter_fails():
    class Stale(ToyTextEncoder):
        parameter_ranges = {"scale": alignbench.Range(low=0), "width": alignbench.Range(low=1)}

    with pytest.raises(AssertionError, match=r"names \['width'\], which are not parameters"):
        _run(encoder_checks(Stale()), "check_numeric_parameters_declare_ranges")


def test_a_validate_that_skips_the_ranges_fails():
    class Forgetful(ToyTextEncoder):
        def validate(self):  # does not call super().validate()
            pass

    with pytest.raises(AssertionError, match=r"scale=0.0 is outside .* but validate\(\) accepted it"):
        _run(encoder_checks(Forgetful()), "check_out_of_range_parameters_rejected")


def test_a_range_error_must_be_one_line_naming_the_parameter():
    from alignbench.errors import InvalidParameterError

    class Vague(ToyTextEncoder):
        def validate(self):
            if not self.scale > 0:
                raise InvalidParameterError("bad value\nsee the docs")

    with pytest.raises(AssertionError, match="should be one line naming toy-chars.scale"):
        _run(encoder_checks(Vague()), "check_out_of_range_parameters_rejected")


def test_values_just_outside_each_bound_and_nan_are_refused():
    """The probes: below a closed low bound, at an open one, above a high one, NaN for floats, as lists
    for list parameters; each refused with a one-line error naming the parameter."""
    class Bounded(ToyTextEncoder):
        parameter_ranges = {"scale": alignbench.Range(low=0, high=4, open_low=True)}

    _run(encoder_checks(Bounded()), "check_out_of_range_parameters_rejected")
    for value in (0.0, -1.0, 5.0, float("nan")):
        with pytest.raises(alignbench.errors.InvalidParameterError, match=rf"toy-chars.scale must be .*got {value}"):
            Bounded(scale=value).validate()
    Bounded(scale=4.0).validate()  # the closed high bound is allowed


def test_a_component_without_numeric_parameters_skips_the_parameter_checks_with_the_reason():
    checks = metric_checks(ToyRecall())
    for name in ("check_numeric_parameters_declare_ranges", "check_out_of_range_parameters_rejected"):
        with pytest.raises(unittest.SkipTest, match="ToyRecall has no numeric parameters"):
            _run(checks, name)


def test_float_probes_sit_just_beyond_a_closed_bound():
    """A closed bound is probed with the nearest float beyond it, so that a check written with the
    wrong comparison (> for >=) is caught; optional floats are probed as floats, NaN included."""
    from typing import Optional

    from alignbench.testing import _outside

    probes = _outside(alignbench.Range(low=0, high=1), Optional[float])
    assert probes[0] == -5e-324 and probes[1] == np.nextafter(1.0, 2.0) and np.isnan(probes[2])
    assert _outside(alignbench.Range(low=1), int) == [0]
    assert _outside(alignbench.Range(low=0, open_low=True), tuple[int, ...]) == [(0,)]
