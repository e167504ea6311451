"""Every built-in plugin passes the conformance suite that third parties run."""

from pathlib import Path

import pytest

from extras import required_extras  # tests/support

import alignbench
from alignbench.plugins import load_registry
from alignbench.testing import (aligner_checks, check_aligner, dataset_checks, encoder_checks, expect_failures,
                                metric_checks, nonempty, perturbation_checks, run_checks)

REGISTRY = load_registry()
BUILTIN = [s for s in REGISTRY.specs() if s.source.startswith("alignbench ") and s.kind != "encoder"]
ENCODERS = [s for s in REGISTRY.specs("encoder") if s.source.startswith("alignbench ")]

# Built-ins that fail a check for a known reason, which the plugin's owner has to fix. Strict: once
# the check passes, the entry fails and has to go (the same mechanism as an aligner's expected_failures).
EXPECTED_FAILURES = {
    ("metric", "spectral"): {
        "check_perfect_beats_random": "its gt_* scores describe the held-out spaces and its fmap_* scores a "
                                      "functional-map aligner's own map, never the aligned embeddings, so any "
                                      "other alignment scores the same"},
}


def _embeddings_file() -> str:
    """Datasets that read files get small ones written here (encoders are tested in tests/encoders)."""
    import tempfile

    import numpy as np

    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp()) / "pairs.npz"
    x = rng.standard_normal((60, 8)).astype(np.float32)
    np.savez(path, x=x, y=np.repeat(x, 2, axis=0) + 0.1, text_item=np.repeat(np.arange(60), 2))
    return str(path)


def _caption_fixtures() -> dict:
    import tempfile

    import importlib.util

    from caption_fixtures import fashion_idx, karpathy_coco, karpathy_flickr
    from format_fixtures import hf_dataset, image_folder, webdataset_shards

    root = Path(tempfile.mkdtemp())
    fixtures = {
        "coco": {"data_dir": str(karpathy_coco(root / "coco"))},
        "flickr30k": {"data_dir": str(karpathy_flickr(root / "f30k", "flickr30k", "flickr30k-images"))},
        "flickr8k": {"data_dir": str(karpathy_flickr(root / "f8k", "flickr8k", "Flicker8k_Dataset"))},
        "fashion-mnist": {"data_dir": str(fashion_idx(root / "fm")), "n_train": 20, "n_test": 10},
        "image-folder": {"path": str(image_folder(root / "image-folder", "csv", "folders"))},
        "webdataset": {"path": str(webdataset_shards(root / "webdataset", "json"))},
    }
    if importlib.util.find_spec("datasets") is not None:  # the hf extra
        fixtures["hf-dataset"] = {"path": str(hf_dataset(root / "hf-dataset", "single"))}
    return fixtures


def _tiny_encoder_weights() -> dict:
    """CLIP and DINOv2 weights do not ship offline: tiny random models saved with save_pretrained, as
    tests/encoders/test_loading_paths.py builds them (their available() cannot tell a hub id that is
    not cached; the packaged MiniLM and EfficientNet weights run as they are, on the CPU)."""
    import importlib.util
    import tempfile

    cpu = {"device": "cpu"}
    params = {"minilm": cpu, "efficientnet-lite0": cpu}
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
        return params
    from tiny_encoder_weights import tiny_clip, tiny_dinov2, tiny_open_clip, tiny_vision_backbone

    root = Path(tempfile.mkdtemp())
    clip, dinov2 = tiny_clip(root / "clip"), tiny_dinov2(root / "dinov2")
    params = {**params, "clip-image": {**cpu, "weights": clip}, "clip-text": {**cpu, "weights": clip},
              "dinov2": {**cpu, "weights": dinov2}, "sentence-transformers": cpu,
              "hf-image": {**cpu, "weights": tiny_vision_backbone(root / "vit", "vit")}}
    if importlib.util.find_spec("open_clip") is not None:  # the openclip extra
        tiny = tiny_open_clip(root / "open-clip")
        for name in ("open-clip-image", "open-clip-text"):
            params[name] = {**cpu, "model": tiny["config"], "pretrained": tiny["checkpoint"]}
    return params


FAST_OT = {"epochs": 40, "dim": 8}  # the training loop's length is not what conformance checks
PARAMS = {"embeddings": {"path": _embeddings_file()}, **_caption_fixtures(), "gw-procrustes": {"n_samples": 200},
          **{name: FAST_OT for name in ("ot-riemannian", "ot-riemannian-contrastive", "ot-riemannian-ot",
                                        "ot-riemannian-riem")}, **_tiny_encoder_weights()}


# Built-ins whose optional extra is not installed: their checks skip, with the reason, instead of running.
NEEDS_EXTRA = {("dataset", "hf-dataset"): "hf"}


def _skipped(kind, name):
    import unittest

    from alignbench.testing import Check

    extra = NEEDS_EXTRA[(kind, name)]

    def skip():
        if extra in required_extras():  # CI installed it: its absence is a failure, not a skip
            raise AssertionError(f"{name} needs the {extra} extra, which ALIGNBENCH_REQUIRE_EXTRAS says is installed")
        raise unittest.SkipTest(f"{name} needs the {extra} extra, not installed here")

    return [Check(f"{name}-needs-the-{extra}-extra", skip)]


def _checks(kind, make_checks, specs=BUILTIN):
    return nonempty([c for s in specs if s.kind == kind
                     for c in (_skipped(kind, s.name) if (kind, s.name) in NEEDS_EXTRA and s.name not in PARAMS else
                               expect_failures(make_checks(REGISTRY.create(kind, s.name, PARAMS.get(s.name, {}))),
                                               EXPECTED_FAILURES.get((kind, s.name), {})))], f"{kind} checks")


ALIGNER_CHECKS = _checks("aligner", aligner_checks) + aligner_checks(
    REGISTRY.create("aligner", "procrustes", {"reduce": "pad", "normalize": False})
) + aligner_checks(REGISTRY.create("aligner", "nullspace", {"whiten": True}))
DATASET_CHECKS = _checks("dataset", dataset_checks)
METRIC_CHECKS = _checks("metric", metric_checks)
PERTURBATION_CHECKS = _checks("perturbation", perturbation_checks) + perturbation_checks(
    REGISTRY.create("perturbation", "embedding-noise", {"modality": "text", "snr_db": 20.0}))
ENCODER_CHECKS = _checks("encoder", encoder_checks, ENCODERS)


def test_the_suite_collected_checks_for_every_builtin():
    kinds = {s.kind for s in BUILTIN}
    assert {"aligner", "dataset", "metric", "perturbation"} <= kinds
    assert len(ALIGNER_CHECKS) >= 13 * 4 and len(DATASET_CHECKS) >= 5 * 2 and len(METRIC_CHECKS) >= 6 * 2
    assert len(PERTURBATION_CHECKS) >= 2 * 6 + 3 * 4
    assert len(ENCODER_CHECKS) == 10 * len(ENCODERS) >= 10 * 9  # 8 behaviours + the 2 parameter checks


@pytest.mark.parametrize("check", ALIGNER_CHECKS, ids=lambda c: c.id)
def test_aligner(check):
    check()


@pytest.mark.parametrize("check", DATASET_CHECKS, ids=lambda c: c.id)
def test_dataset(check):
    check()


@pytest.mark.parametrize("check", METRIC_CHECKS, ids=lambda c: c.id)
def test_metric(check):
    check()


@pytest.mark.parametrize("check", PERTURBATION_CHECKS, ids=lambda c: c.id)
def test_perturbation(check):
    check()


@pytest.mark.parametrize("check", ENCODER_CHECKS, ids=lambda c: c.id)
def test_encoder(check):
    check()


def test_the_perturbation_checks_catch_a_corruption_that_changes_nothing():
    from alignbench_plugins.perturbations.text import WordDropout

    class Lazy(WordDropout):
        def corrupt_item(self, item, rng):
            return item

    with pytest.raises(AssertionError, match="changeable but came back unchanged"):
        run_checks(perturbation_checks(Lazy()))


def test_an_empty_suite_fails_instead_of_passing():
    with pytest.raises(AssertionError, match="vacuously"):
        run_checks([])


def test_the_suite_catches_a_bad_aligner():
    import numpy as np

    import alignbench

    class Sloppy(alignbench.Aligner):
        """Ignores the anchors: random projections, different on every fit."""

        def __init__(self):
            pass

        def _fit(self, xa, ya, xu, yu):
            self.wx_ = np.random.standard_normal((xa.shape[1], 4))
            self.wy_ = np.random.standard_normal((ya.shape[1], 4))

        def _transform_x(self, x):
            return x @ self.wx_

        def _transform_y(self, y):
            return y @ self.wy_

    with pytest.raises(AssertionError, match="two fits differ"):
        check_aligner(Sloppy())


class _Centring(alignbench.Aligner):
    """Centres each side on its anchors; reports how many anchors it saw, or a planted bad report."""

    def __init__(self, report: str = "sound"):
        self.report = report

    def _fit(self, xa, ya, xu, yu):
        self.mx_, self.my_, self.n_ = xa.mean(0), ya.mean(0), len(xa)

    def _transform_x(self, x):
        return x - self.mx_

    def _transform_y(self, y):
        return y - self.my_

    def _fit_report(self):
        import numpy as np

        return {"sound": {"anchors_seen": self.n_, "centred": True},
                "array": {"means": self.mx_},
                "random": {"draw": float(np.random.default_rng().random())}}[self.report]


@pytest.mark.parametrize("report, message", [
    ("sound", None),
    ("array", r"_Centring.fit_report\(\)\['means'\] is a ndarray; report numbers"),
    ("random", "two identical fits report different choices"),
])
def test_the_suite_checks_what_the_fit_reports(report, message):
    [check] = [c for c in aligner_checks(_Centring(report)) if c.id.endswith("-check_fit_report")]
    if message is None:
        check()
        return
    with pytest.raises(AssertionError, match=message):
        check()


def test_a_report_that_skips_the_fitted_check_is_caught():
    """An aligner overriding the public ``fit_report`` (not ``_fit_report``) answers before ``fit``
    with an AttributeError, or with nothing; the suite wants the NotFittedError the transforms give."""

    class Unguarded(_Centring):
        def fit_report(self):
            return {"anchors_seen": self.n_}

    [check] = [c for c in aligner_checks(Unguarded()) if c.id.endswith("-check_transform_before_fit")]
    with pytest.raises(AssertionError, match="fit_report before fit"):
        check()
    [sound] = [c for c in aligner_checks(_Centring()) if c.id.endswith("-check_transform_before_fit")]
    sound()
