"""Conformance checks that plugin authors run in their own tests, like scikit-learn's check_estimator.

Use in a test module::

    import pytest
    from alignbench.testing import aligner_checks

    @pytest.mark.parametrize("check", aligner_checks(MyAligner()), ids=lambda c: c.id)
    def test_conformance(check):
        check()

or ``check_aligner(MyAligner())`` to run all and get the number that ran. A check raises
AssertionError with what went wrong; a suite that ran no check is itself a failure, and so is an
empty list of checks handed to ``parametrize`` (the ``*_checks`` functions never return one: an
empty suite comes back as one failing check). Encoder checks skip, with the reason, only where the
encoder says it is not available here (``available()`` is False). A check a component is known to
fail is declared with its reason (``expected_failures`` on the class, or ``expect_failures``) and
must then fail: once it passes, the exemption has to go.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
import unittest
from dataclasses import dataclass
from typing import Any, Callable, Sequence, get_origin

import numpy as np

from ..errors import AlignbenchError, InvalidInputError, InvalidParameterError, NotFittedError
from ..interfaces import Aligner, AlignmentResult, Anchors, Dataset, Encoder, Metric, PairedData, Perturbation
from ..params import Range, number_types, numeric_parameters, parameter_defaults
from .toy import random_rotation, rotated_pair, top1_accuracy

__all__ = [
    "Check", "aligner_checks", "dataset_checks", "encoder_checks", "metric_checks", "perturbation_checks",
    "check_aligner", "check_dataset", "check_encoder", "check_metric", "check_perturbation", "run_checks",
    "expect_failures", "nonempty", "toy_result", "random_result", "permuted_result",
    "random_rotation", "rotated_pair", "top1_accuracy",
]


@dataclass(frozen=True)
class Check:
    """One named conformance check bound to one component."""

    id: str
    function: Callable[[], None]

    def __call__(self) -> None:
        self.function()


def run_checks(checks: list[Check]) -> int:
    """Run every check; return how many ran. Zero checks, or none that ran (all skipped), is a
    failure, not a pass."""
    if not checks:
        raise AssertionError("no conformance checks were collected; the suite would pass vacuously")
    ran, skipped = 0, []
    for check in checks:
        try:
            check()
        except unittest.SkipTest as skip:
            skipped.append(f"{check.id}: {skip}")
            continue
        ran += 1
    if not ran:
        raise AssertionError(f"all {len(checks)} conformance checks were skipped, none ran: {skipped[0]}")
    return ran


def nonempty(checks: list[Check], what: str = "conformance checks") -> list[Check]:
    """``checks``, or one failing check if there are none: pytest's ``parametrize`` over an empty
    list skips the test, which would read as green."""
    if checks:
        return list(checks)

    def no_checks_collected():
        raise AssertionError(f"no {what} were collected; the suite would pass vacuously")

    return [Check("no-checks-collected", no_checks_collected)]


def expect_failures(checks: list[Check], reasons: dict[str, str]) -> list[Check]:
    """Mark checks (by function name, e.g. ``"check_empty_input"``) as expected to fail, each with
    its reason. Strict: an expected failure that passes is a failure, and so is a name no check has."""
    names = {c.id.rsplit("-", 1)[-1] for c in checks}
    unknown = sorted(set(reasons) - names)
    if unknown:
        raise ValueError(f"expected failures name no check: {', '.join(unknown)}; checks are {', '.join(sorted(names))}")
    return [_expect_to_fail(c, reasons[c.id.rsplit("-", 1)[-1]]) if c.id.rsplit("-", 1)[-1] in reasons else c
            for c in checks]


def _expect_to_fail(check: Check, reason: str) -> Check:
    name = check.id.rsplit("-", 1)[-1]
    if not reason or not reason.strip():
        raise ValueError(f"expected failure of {name} needs a stated reason")

    def expected_to_fail():
        try:
            check()
        except AssertionError:
            return
        raise AssertionError(f"{name} was expected to fail ({reason}) but passed; remove it from expected_failures")

    return Check(f"{check.id}[expected failure: {reason}]", expected_to_fail)


def _suite(component, functions) -> list[Check]:
    """Checks named ``Label(params)-check_name``, the parameter checks first, with the class's
    ``expected_failures`` applied."""
    label = _label(component)
    checks = [Check(f"{label}-{f.__name__}", f) for f in (*_parameter_checks(component), *functions)]
    return nonempty(expect_failures(checks, dict(getattr(type(component), "expected_failures", {}))))


def _parameter_checks(component) -> tuple[Callable[[], None], ...]:
    """Every numeric parameter declares its possible values (``parameter_ranges``), and ``validate``
    refuses a value just outside each bound in one line naming ``name.key``."""
    cls = type(component)

    def skip_without_numbers():
        if not numeric_parameters(cls) and not cls.parameter_ranges:
            raise unittest.SkipTest(f"{cls.__name__} has no numeric parameters")

    def check_numeric_parameters_declare_ranges():
        skip_without_numbers()
        numeric, declared = set(numeric_parameters(cls)), set(cls.parameter_ranges)
        assert numeric <= declared, (
            f"numeric parameter(s) {sorted(numeric - declared)} have no entry in parameter_ranges; declare their "
            f"possible values, e.g. parameter_ranges = {{{sorted(numeric - declared)[0]!r}: Range(low=1)}}, or "
            f"Range() for any finite number")
        assert declared <= set(parameter_defaults(cls)), (
            f"parameter_ranges names {sorted(declared - set(parameter_defaults(cls)))}, which are not parameters")

    def check_out_of_range_parameters_rejected():
        skip_without_numbers()
        params, hints = component.get_params(), typing.get_type_hints(cls.__init__)
        for key, allowed in cls.parameter_ranges.items():
            for value in _outside(allowed, hints.get(key)):
                where = f"{component.name}.{key}"
                try:
                    cls(**{**params, key: value}).validate()
                except InvalidParameterError as exc:
                    message = str(exc)
                    assert where in message and "\n" not in message, (
                        f"{key}={value!r}: the error should be one line naming {where}, got {message!r}")
                    continue
                raise AssertionError(f"{key}={value!r} is outside {allowed} but validate() accepted it")

    return check_numeric_parameters_declare_ranges, check_out_of_range_parameters_rejected


def _outside(allowed: Range, annotation: Any) -> list[Any]:
    """Values just outside ``allowed`` of the annotated kind: for a float parameter the nearest float
    beyond a closed bound (the bound itself where it is open) and NaN; for an int one beyond; a
    one-element list for a list parameter."""
    container = get_origin(annotation) if get_origin(annotation) in (tuple, list) else None
    kind = float if float in number_types(annotation) else int
    values = []
    for bound, is_open, away in ((allowed.low, allowed.open_low, -np.inf), (allowed.high, allowed.open_high, np.inf)):
        if bound is None:
            continue
        if is_open:
            values.append(kind(bound))
        else:
            values.append(float(np.nextafter(float(bound), away)) if kind is float else int(bound) + int(np.sign(away)))
    if kind is float:
        values.append(float("nan"))
    return [container([v]) if container else v for v in values]


def _fresh(component):
    """An unfitted copy with the same parameters (scikit-learn's clone)."""
    return type(component)(**component.get_params())


def _label(component) -> str:
    return f"{type(component).__name__}({', '.join(f'{k}={v!r}' for k, v in component.get_params().items())})"


# --------------------------------------------------------------------------------------- aligners


def aligner_checks(aligner: Aligner) -> list[Check]:
    """The conformance checks for one configured aligner instance."""
    n_anchors = max(aligner.min_anchors, 40)
    x, y, _ = rotated_pair(n=n_anchors + 200, dim=12, noise=0.05, seed=7)
    data = {"xa": x[:n_anchors], "ya": y[:n_anchors], "xu": x[n_anchors:], "yu": y[n_anchors:]}
    # Unpaired items are shuffled so that row order carries no pairing.
    rng = np.random.default_rng(0)
    data["yu"] = data["yu"][rng.permutation(len(data["yu"]))]

    def fitted(a: Aligner | None = None) -> Aligner:
        a = a or _fresh(aligner)
        return a.fit(data["xa"], data["ya"], data["xu"], data["yu"])

    def check_fit_returns_self():
        a = _fresh(aligner)
        assert a.fit(data["xa"], data["ya"], data["xu"], data["yu"]) is a, "fit must return self"

    def check_output_shapes_and_dtype():
        a = fitted()
        zx, zy = a.transform_x(x[:30]), a.transform_y(y[:20])
        assert zx.ndim == 2 and zx.shape[0] == 30, f"transform_x gave shape {zx.shape} for 30 items"
        assert zy.ndim == 2 and zy.shape[0] == 20, f"transform_y gave shape {zy.shape} for 20 items"
        assert zx.shape[1] == zy.shape[1], f"the two sides land in different spaces: {zx.shape[1]} vs {zy.shape[1]} dims"
        assert zx.dtype == np.float32 and zy.dtype == np.float32, "outputs must be float32"

    def check_outputs_finite():
        a = fitted()
        assert np.isfinite(a.transform_x(x)).all() and np.isfinite(a.transform_y(y)).all(), "NaN or inf in output"

    def check_deterministic():
        first, second = fitted(), fitted()
        np.testing.assert_array_equal(first.transform_x(x), second.transform_x(x), err_msg="two fits differ (x)")
        np.testing.assert_array_equal(first.transform_y(y), second.transform_y(y), err_msg="two fits differ (y)")

    def check_params_roundtrip():
        params = aligner.get_params()
        assert _fresh(aligner).get_params() == params, "constructor does not store its parameters unchanged"

    def check_fit_does_not_modify_input():
        xa, ya = data["xa"].copy(), data["ya"].copy()
        fitted()
        np.testing.assert_array_equal(xa, data["xa"], err_msg="fit modified x_anchors")
        np.testing.assert_array_equal(ya, data["ya"], err_msg="fit modified y_anchors")

    def check_fit_on_few_anchors():
        few = max(aligner.min_anchors, 2)
        a = _fresh(aligner).fit(data["xa"][:few], data["ya"][:few], data["xu"], data["yu"])
        assert np.isfinite(a.transform_x(x)).all(), f"non-finite output after fitting on {few} anchors"

    def check_aligns_a_rotation():
        # Held-out items of a noisy rotation: any aligner worth benchmarking beats chance (1/200) widely.
        a = fitted()
        accuracy = top1_accuracy(a.transform_x(data["xu"]), a.transform_y(y[n_anchors:]))
        assert accuracy > 0.2, f"top-1 accuracy {accuracy:.3f} on a rotated copy (chance 0.005)"

    def check_rejects_nan():
        bad = data["xa"].copy()
        bad[3, 1] = np.nan
        _expect(InvalidInputError, lambda: _fresh(aligner).fit(bad, data["ya"]), "NaN in x_anchors")

    def check_rejects_mismatched_pairs():
        _expect(InvalidInputError, lambda: _fresh(aligner).fit(data["xa"], data["ya"][:-1]), "unequal anchor counts")

    def check_rejects_wrong_dimension():
        a = fitted()
        _expect(InvalidInputError, lambda: a.transform_x(x[:, :-1]), "x with the wrong number of columns")

    def check_transform_before_fit():
        _expect(NotFittedError, lambda: _fresh(aligner).transform_x(x), "transform_x before fit")
        _expect(NotFittedError, lambda: _fresh(aligner).fit_report(), "fit_report before fit")

    def check_fit_report():
        # What the runner records with each cell: plain values (fitted_choices says what is wrong in one
        # line), the same for the same fit, after a fit on few anchors as after a full one.
        from alignbench.evaluate import fitted_choices

        few = max(aligner.min_anchors, 2)
        for a in (fitted(), _fresh(aligner).fit(data["xa"][:few], data["ya"][:few], data["xu"], data["yu"])):
            try:
                fitted_choices(a, a.transform_x(x[:1]).shape[1])
            except AlignbenchError as exc:
                raise AssertionError(str(exc)) from None
        assert fitted().fit_report() == fitted().fit_report(), "two identical fits report different choices"

    def check_too_few_anchors_rejected():
        if aligner.min_anchors == 0:
            a = _fresh(aligner).fit(x[:0], y[:0], data["xu"], data["yu"])
            assert np.isfinite(a.transform_x(x)).all(), "unsupervised fit gave non-finite output"
            return
        short = aligner.min_anchors - 1
        _expect(InvalidInputError, lambda: _fresh(aligner).fit(x[:short], y[:short]), f"{short} anchors")

    # A check listed in the class's ``expected_failures`` must fail (strict xfail): if it passes,
    # the stated reason is stale and the exemption has to go.
    return _suite(aligner, (
        check_fit_returns_self, check_output_shapes_and_dtype, check_outputs_finite, check_deterministic,
        check_params_roundtrip, check_fit_does_not_modify_input, check_fit_on_few_anchors, check_aligns_a_rotation,
        check_rejects_nan, check_rejects_mismatched_pairs, check_rejects_wrong_dimension,
        check_transform_before_fit, check_too_few_anchors_rejected, check_fit_report,
    ))


def _expect(error: type[Exception], action: Callable[[], object], what: str) -> None:
    try:
        action()
    except error:
        return
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{what}: expected {error.__name__}, got {type(exc).__name__}: {exc}") from exc
    raise AssertionError(f"{what}: expected {error.__name__}, nothing was raised")


def check_aligner(aligner: Aligner) -> int:
    return run_checks(aligner_checks(aligner))


# --------------------------------------------------------------------------------------- datasets


def dataset_checks(dataset: Dataset) -> list[Check]:
    """Checks for a dataset that can be loaded here (embedded or raw)."""
    loaded: dict[str, object] = {}

    def splits():
        if "splits" not in loaded:
            loaded["splits"] = dataset.load()
        return loaded["splits"]

    def check_has_both_splits():
        s = splits()
        for name in ("train", "test"):
            part = getattr(s, name)
            assert isinstance(part, PairedData), f"{name} split is {type(part).__name__}, not PairedData"
            assert part.n_items > 0 and part.n_texts >= part.n_items, f"{name} split is empty or lacks texts"

    def check_deterministic_load():
        again = _fresh(dataset).load()
        for name in ("train", "test"):
            a, b = getattr(splits(), name), getattr(again, name)
            np.testing.assert_array_equal(a.text_item, b.text_item, err_msg=f"{name} group structure differs")
            if a.is_embedded:
                np.testing.assert_array_equal(a.x, b.x, err_msg=f"{name} x differs between loads")
                np.testing.assert_array_equal(a.y, b.y, err_msg=f"{name} y differs between loads")
            assert a.item_ids == b.item_ids, f"{name} item ids differ between loads"

    def check_splits_disjoint():
        s = splits()
        if s.train.item_ids is not None and s.test.item_ids is not None:
            shared = set(s.train.item_ids) & set(s.test.item_ids)
            assert not shared, f"{len(shared)} items are in both splits, e.g. {sorted(shared)[:3]}"

    def check_embeddings_valid():
        s = splits()
        for name in ("train", "test"):
            part = getattr(s, name)
            if part.is_embedded:
                for side in ("x", "y"):
                    array = getattr(part, side)
                    assert array.dtype == np.float32, f"{name}.{side} is {array.dtype}, not float32"
                    assert np.isfinite(array).all(), f"{name}.{side} has NaN or inf"
                assert part.x.shape[1] == s.test.x.shape[1], "train and test x have different dimensions"

    def check_no_test_item_in_train():
        # By content, not by id: a split that hands the train rows out again under new ids leaks too.
        s = splits()
        train = {_row_digest(item): i for i, item in enumerate(s.train.x)}
        leaked = [(j, train[d]) for j, d in enumerate(map(_row_digest, s.test.x)) if d in train]
        assert not leaked, (f"{len(leaked)} of {s.test.n_items} test items equal a train item, e.g. test item "
                            f"{leaked[0][0]} = train item {leaked[0][1]}: the test split leaks training data")

    return _suite(dataset, (check_has_both_splits, check_deterministic_load, check_splits_disjoint,
                            check_embeddings_valid, check_no_test_item_in_train))


def _row_digest(item: Any) -> str:
    """A content hash of one row or raw item (array, string, bytes, an image with ``tobytes``, or
    anything whose str is its content, such as a file path)."""
    if isinstance(item, np.ndarray):
        array = np.ascontiguousarray(item)
        data = f"{array.dtype.str}{array.shape}".encode() + array.tobytes()
    elif isinstance(item, bytes):
        data = item
    elif callable(getattr(item, "tobytes", None)):  # e.g. a PIL image
        data = f"{type(item).__name__}:{getattr(item, 'size', '')}".encode() + item.tobytes()
    else:
        data = f"{type(item).__name__}:{item}".encode()
    return hashlib.sha256(data).hexdigest()


def check_dataset(dataset: Dataset) -> int:
    return run_checks(dataset_checks(dataset))


# --------------------------------------------------------------------------------------- metrics


class _IdentityAligner(Aligner):
    name = "identity"
    min_anchors = 0

    def _fit(self, xa, ya, xu, yu):
        pass

    def _transform_x(self, x):
        return x

    def _transform_y(self, y):
        return y


def toy_result(n_items: int = 60, texts_per_item: int = 3, dim: int = 8, seed: int = 0) -> AlignmentResult:
    """A perfect alignment (each text equals its item plus small noise) with known latent and labels.

    The toy aligner also "found" matches between the unpaired rows (every unpaired text of an item
    matched to that item), as aligners that fit on their own matches report them (``matches_``)."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_items, dim)).astype(np.float32)
    text_item = np.repeat(np.arange(n_items), texts_per_item)
    y = (latent[text_item] + 0.01 * rng.standard_normal((len(text_item), dim))).astype(np.float32)
    test = PairedData(x=latent, y=y, text_item=text_item, latent=latent, labels=np.arange(n_items) % 3)
    aligner = _IdentityAligner().fit(latent[:5], y[:5 * texts_per_item:texts_per_item])
    anchors = Anchors(items=np.arange(5), texts=np.arange(5) * texts_per_item, x=latent[:5], y=y[:15:3])
    items, texts = np.arange(5, n_items), np.arange(5 * texts_per_item, len(text_item))
    # (y row, x row) in fit's rows, anchors first: unpaired text t is y row 5 + t - 15, its item x row 5 + i - 5.
    aligner.matches_ = np.stack([5 + np.arange(len(texts)), text_item[texts]], axis=1)
    aligner.kept_matches_ = np.ones(len(texts), dtype=bool)
    return AlignmentResult(test=test, zx=latent, zy=y, anchors=anchors, aligner=aligner, train=test,
                           unpaired_rows=(items, texts))


class _RandomAligner(Aligner):
    """Ignores its input: seeded Gaussian noise of the right shape, a different draw per side."""

    name = "random"
    min_anchors = 0

    def __init__(self, dim: int = 8, seed: int = 1):
        self.dim = dim
        self.seed = seed

    def _fit(self, xa, ya, xu, yu):
        pass

    def _noise(self, rows: np.ndarray, side: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, side, len(rows)])
        return rng.standard_normal((len(rows), self.dim)).astype(np.float32)

    def _transform_x(self, x):
        return self._noise(x, 0)

    def _transform_y(self, y):
        return self._noise(y, 1)


def random_result(seed: int = 1, **toy) -> AlignmentResult:
    """``toy_result(**toy)``'s data and anchors aligned at random: both sides mapped to independent
    noise, and the aligner's own matches pointing at random items."""
    perfect = toy_result(**toy)
    aligner = _RandomAligner(dim=perfect.zx.shape[1], seed=seed).fit(perfect.anchors.x, perfect.anchors.y)
    matches = perfect.aligner.matches_.copy()
    n_x_rows = len(perfect.anchors.items) + len(perfect.unpaired_rows[0])
    matches[:, 1] = np.random.default_rng(seed).integers(0, n_x_rows, len(matches))
    aligner.matches_, aligner.kept_matches_ = matches, np.ones(len(matches), dtype=bool)
    return dataclasses.replace(perfect, zx=aligner.transform_x(perfect.test.x), zy=aligner.transform_y(perfect.test.y),
                               aligner=aligner)


def permuted_result(result: AlignmentResult, seed: int = 2) -> AlignmentResult:
    """The same alignment with the held-out items in another order, each item's texts moving with it
    (in their own order): every score must stay the same."""
    test = result.test
    order = np.random.default_rng(seed).permutation(test.n_items)
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    texts = np.concatenate([test.texts_of(i) for i in order])

    def rows(a, index):
        return None if a is None else (tuple(a[i] for i in index) if isinstance(a, tuple) else a[index])

    moved = PairedData(x=test.x[order], y=test.y[texts], text_item=position[test.text_item[texts]],
                       item_ids=rows(test.item_ids, order), latent=rows(test.latent, order),
                       labels=rows(test.labels, order))
    return dataclasses.replace(result, test=moved, zx=result.zx[order], zy=result.zy[texts])


def metric_checks(metric: Metric) -> list[Check]:
    def check_returns_finite_floats():
        scores = metric.compute(toy_result())
        assert scores, "compute returned no scores"
        for key, value in scores.items():
            assert isinstance(key, str), f"score name {key!r} is not a string"
            assert isinstance(value, float), f"{key} is {type(value).__name__}, not float"
            assert np.isfinite(value), f"{key} = {value} on a clean toy alignment"

    def check_declares_directions():
        for key in metric.compute(toy_result()):
            assert metric.direction(key) is not None, f"{key} has no entry in higher_is_better"

    def check_deterministic():
        assert metric.compute(toy_result()) == _fresh(metric).compute(toy_result()), "two computations differ"

    def check_has_version():
        assert isinstance(type(metric).version, str) and type(metric).version, "metric needs a version string"

    def check_perfect_beats_random():
        # A score that does not tell a perfect alignment from noise measures nothing (e.g. a constant).
        perfect, random = metric.compute(toy_result()), _fresh(metric).compute(random_result())
        assert set(perfect) == set(random), f"keys differ: {sorted(set(perfect) ^ set(random))}"
        worse, better = [], []
        for key in perfect:
            higher = metric.direction(key)
            if higher is None:
                continue
            gain = (perfect[key] - random[key]) * (1 if higher else -1)
            if gain < 0 and not np.isclose(perfect[key], random[key], rtol=1e-6, atol=1e-12):
                worse.append(f"{key} {perfect[key]:.4g} vs {random[key]:.4g}")
            elif gain > 0 and not np.isclose(perfect[key], random[key], rtol=1e-6, atol=1e-12):
                better.append(key)
        assert not worse, f"a perfect alignment scores worse than a random one on: {'; '.join(worse)}"
        assert better, f"no score tells a perfect alignment from a random one: {perfect} vs {random}"

    def check_invariant_to_item_order():
        for name, result in (("perfect", toy_result()), ("random", random_result())):
            before, after = metric.compute(result), _fresh(metric).compute(permuted_result(result))
            assert set(before) == set(after), f"keys differ after reordering items: {sorted(set(before) ^ set(after))}"
            moved = [f"{k} {before[k]:.6g} -> {after[k]:.6g}" for k in before
                     if not np.isclose(before[k], after[k], rtol=1e-5, atol=1e-8, equal_nan=True)]
            assert not moved, f"reordering the items (with their texts) changed the {name} alignment's {'; '.join(moved)}"

    def check_scores_keep_their_declared_relations():
        # Results files are held to ``inconsistencies``: the metric's own scores must pass it.
        for name, result in (("perfect", toy_result()), ("random", random_result())):
            problems = type(metric).inconsistencies(metric.compute(result))
            assert not problems, f"on the {name} alignment: {'; '.join(problems)}"

    return _suite(metric, (check_returns_finite_floats, check_declares_directions, check_deterministic,
                           check_has_version, check_perfect_beats_random, check_invariant_to_item_order,
                           check_scores_keep_their_declared_relations))


def check_metric(metric: Metric) -> int:
    return run_checks(metric_checks(metric))


# --------------------------------------------------------------------------------------- perturbations

SAMPLE_CAPTIONS = ["A man riding a bike down the street.", "Two dogs playing in the grass near a tree.",
                   "a small kitchen with a white table", "A woman holding an umbrella on a rainy day."]


def sample_items(modality: str) -> list:
    """A few raw items of a modality: textured 8-bit images (grey and colour) or captions."""
    if modality == "text":
        return list(SAMPLE_CAPTIONS)
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(28, 28), dtype=np.uint8), rng.integers(0, 256, size=(32, 24, 3), dtype=np.uint8)]


def perturbation_checks(perturbation: Perturbation, items: list | None = None) -> list[Check]:
    """Conformance checks for one configured perturbation. ``items``: raw items its modality holds
    (default: small images or captions)."""
    from ..robustness import STAGES, item_rng

    stage = type(perturbation).stage

    def check_declares_stage_and_modality():
        assert stage in STAGES, f"stage {stage!r} is not one of {STAGES}"
        assert isinstance(getattr(perturbation, "modality", None), str), "needs a modality parameter"
        allowed = type(perturbation).modalities
        assert not allowed or perturbation.modality in allowed, f"modality {perturbation.modality!r} not in {allowed}"

    def check_params_round_trip():
        assert _fresh(perturbation).get_params() == perturbation.get_params(), "get_params does not round-trip"

    checks = [check_declares_stage_and_modality, check_params_round_trip]
    if stage == "input":
        raw = items if items is not None else sample_items(perturbation.modality)

        def check_has_a_content_seed():
            assert isinstance(getattr(perturbation, "seed", None), int), "input-stage perturbations take a seed"

        def check_changes_every_changeable_item():
            changeable = [item for item in raw if perturbation.can_change(item)]
            assert changeable, "can_change refused every sample item"
            for i, item in enumerate(changeable):
                out = perturbation.corrupt_item(item, item_rng(0, i))
                assert type(out) is type(item), f"returned {type(out).__name__} for {type(item).__name__}"
                same = np.array_equal(out, item) if isinstance(item, np.ndarray) else out == item
                assert not same, f"item {i} is changeable but came back unchanged"

        def check_deterministic_under_a_seed():
            for i, item in enumerate(raw):
                if perturbation.can_change(item):
                    a = perturbation.corrupt_item(item, item_rng(3, i))
                    b = _fresh(perturbation).corrupt_item(item, item_rng(3, i))
                    assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, "same seed, other result"

        checks += [check_has_a_content_seed, check_changes_every_changeable_item, check_deterministic_under_a_seed]
    elif stage == "embedding":
        e = np.random.default_rng(1).standard_normal((50, 8)).astype(np.float32)
        rows = np.arange(0, 50, 3)

        def check_changes_only_the_given_rows():
            out = perturbation.corrupt_embeddings(e.copy(), rows, np.random.default_rng(0))
            assert out.shape == e.shape and np.isfinite(out).all(), "bad shape or non-finite values"
            changed = np.flatnonzero((out != e).any(axis=1))
            assert np.array_equal(changed, rows), f"changed rows {changed.tolist()}, asked {rows.tolist()}"

        def check_deterministic_under_a_seed():
            a = perturbation.corrupt_embeddings(e.copy(), rows, np.random.default_rng(5))
            b = _fresh(perturbation).corrupt_embeddings(e.copy(), rows, np.random.default_rng(5))
            assert np.array_equal(a, b), "same seed, other result"

        checks += [check_changes_only_the_given_rows, check_deterministic_under_a_seed]
    return _suite(perturbation, checks)


def check_perturbation(perturbation: Perturbation, items: list | None = None) -> int:
    return run_checks(perturbation_checks(perturbation, items))


# --------------------------------------------------------------------------------------- encoders


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal within float32 rounding of a network's arithmetic (relative to the largest value)."""
    scale = float(np.max(np.abs(a))) if a.size else 1.0
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-4, atol=1e-5 * max(scale, 1e-30)))


def encoder_checks(encoder: Encoder, items: Sequence[Any] | None = None) -> list[Check]:
    """Conformance checks for one configured encoder on a few tiny raw ``items`` of its modality
    (default: small images or captions): shape and float32 dtype, determinism, batch-size and order
    invariance within float32 tolerance, distinct items differ, empty input, and items of the other
    modality (captions for an image encoder, images for a text encoder) rejected with an
    InvalidInputError that names the encoder's modality. The checks that encode skip, with the
    reason, when ``encoder.available()`` is False here (libraries or weights missing); they never
    download."""
    modality = type(encoder).modality
    raw = list(items) if items is not None else (sample_items(modality) if modality in ("image", "text") else None)
    cache: dict[str, np.ndarray] = {}

    def encoded() -> np.ndarray:
        if "all" not in cache:
            cache["all"] = encoder.encode(raw)
        return cache["all"]

    def encoding(check):
        def run():
            if not encoder.available():
                raise unittest.SkipTest(f"{encoder.name or type(encoder).__name__} is not available here "
                                        f"(available() is False: its libraries or weights are missing)")
            assert raw is not None, f"modality {modality!r} has no sample items; pass items= to encoder_checks"
            assert len(raw) >= 2, "encoder checks need at least two distinct items"
            check()

        run.__name__ = check.__name__
        return run

    def check_declares_modality():
        assert isinstance(modality, str) and modality, "an encoder needs a modality (e.g. 'image', 'text')"

    def check_params_roundtrip():
        assert _fresh(encoder).get_params() == encoder.get_params(), "get_params does not round-trip"

    @encoding
    def check_output_shape_and_dtype():
        e = encoded()
        assert isinstance(e, np.ndarray), f"encode returned {type(e).__name__}, not a numpy array"
        assert e.shape == (len(raw), encoder.dim), f"shape {e.shape} for {len(raw)} items, expected {(len(raw), encoder.dim)}"
        assert e.dtype == np.float32, f"dtype {e.dtype}, expected float32"
        assert np.isfinite(e).all(), "NaN or inf in the embeddings"

    @encoding
    def check_deterministic():
        assert _close(encoded(), np.asarray(encoder.encode(raw))), "encoding the same items twice gave other numbers"

    @encoding
    def check_batch_size_invariant():
        one_by_one = np.concatenate([np.asarray(encoder.encode([item])) for item in raw])
        assert _close(encoded(), one_by_one), "an item's embedding depends on the batch it is encoded in"
        reversed_order = np.asarray(encoder.encode(raw[::-1]))[::-1]
        assert _close(encoded(), reversed_order), "an item's embedding depends on the other items' order"

    @encoding
    def check_distinct_items_differ():
        e = encoded()
        same = [(i, j) for i in range(len(e)) for j in range(i + 1, len(e)) if _close(e[i:i + 1], e[j:j + 1])]
        assert not same, f"distinct items {same[0]} got the same embedding: the encoder ignores its input"

    @encoding
    def check_empty_input():
        e = np.asarray(encoder.encode([]))
        assert e.shape == (0, encoder.dim), f"no items gave shape {e.shape}, expected (0, {encoder.dim})"
        assert e.dtype == np.float32, f"no items gave dtype {e.dtype}, expected float32"

    @encoding
    def check_rejects_the_other_modality():
        # Captions handed to an image encoder (or images to a text encoder) must fail with one clear
        # line that names what the encoder takes, not deep inside a tokenizer or an image library.
        other = {"image": "text", "text": "image"}.get(modality)
        if other is None:
            raise unittest.SkipTest(f"no sample items of a modality other than {modality!r}")
        try:
            encoder.encode(sample_items(other))
        except InvalidInputError as exc:
            assert modality in str(exc), f"the error does not say the encoder takes {modality}: {exc}"
            return
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"{other} items: expected InvalidInputError naming {modality!r}, got "
                                 f"{type(exc).__name__}: {exc}") from exc
        raise AssertionError(f"{other} items were encoded by a {modality} encoder without an error")

    return _suite(encoder, (check_declares_modality, check_params_roundtrip, check_output_shape_and_dtype,
                            check_deterministic, check_batch_size_invariant, check_distinct_items_differ,
                            check_empty_input, check_rejects_the_other_modality))


def check_encoder(encoder: Encoder, items: Sequence[Any] | None = None) -> int:
    return run_checks(encoder_checks(encoder, items))
