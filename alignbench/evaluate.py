"""The evaluate stage: one cell, as a function of its spec, its dataset's embedded splits and its
anchors, to an Outcome. It touches no store and no cache, so it runs the same in the driver, in a
local worker process or on a Ray node; the driver turns the Outcome into the stored record.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import CorruptedInputs
from .errors import AlignbenchError, message_of
from .interfaces import Aligner, AlignmentResult, Anchors, DatasetSplits, Metric, PairedData
from .plan import Cell
from .protocols import gallery_with_anchors
from .registry import Registry
from .robustness import Damage, apply_damage, damaged_rows, side_of, surviving_anchors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnchorRows:
    """A cell's anchor pairs as rows of the train split (``(m,)`` int indices each): what is shipped
    to a worker, which takes the embeddings from the splits it already holds."""

    items: np.ndarray
    texts: np.ndarray

    @classmethod
    def of(cls, anchors: Anchors) -> "AnchorRows":
        return cls(anchors.items, anchors.texts)

    def anchors(self, train: PairedData) -> Anchors:
        return Anchors(items=self.items, texts=self.texts, x=train.x[self.items], y=train.y[self.texts],
                       latent=None if train.latent is None else train.latent[self.items])


@dataclass(frozen=True)
class NotApplicable:
    """Why a cell cannot run (too few anchors for the aligner, a perturbation the data cannot take).
    ``anchors``: the pairs left when damage removed too many (the record names them), else None."""

    reason: str
    anchors: Anchors | None = None


@dataclass(frozen=True)
class Outcome:
    """What evaluating a cell gives: ``status`` ok, n/a or failed; ``anchor_set``: a hash of the anchor
    pairs the aligner got (None when the train split is smaller than the level); ``fitted``: what the
    fit chose (:func:`fitted_choices`)."""

    status: str
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    anchor_set: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    fitted: dict[str, Any] = field(default_factory=dict)
    split_sizes: dict[str, list[int]] | None = None


def split_sizes(splits: DatasetSplits) -> dict[str, list[int]]:
    """``{"test": [items, texts], "train": [items, texts]}``: what a retrieval ranks among, and the pool
    anchors are drawn from."""
    return {"test": [int(splits.test.n_items), int(splits.test.n_texts)],
            "train": [int(splits.train.n_items), int(splits.train.n_texts)]}


@functools.lru_cache(maxsize=1)
def environment() -> dict[str, str]:
    """Versions that can move a number, as installed where the cell ran, and a digest of the code
    itself (:func:`code_digest`): the package version stays 0.1.0 through every change."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("alignbench", "numpy", "scipy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    versions["code"] = code_digest()
    return versions


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of the Python source of alignbench and of every package that registers plugins
    through its entry points, as found on this machine: a cell records it, so that tables built
    from a store can tell the cells computed by other code (an older checkout, another plugin
    version), which a cell's key does not (its plugins' sources name distributions, not code)."""
    return source_digest(code_roots())


def code_roots() -> dict[str, list[Path]]:
    """The source folders of alignbench and of the top-level packages its entry points name."""
    import importlib.metadata
    import importlib.util

    from .plugins import ENTRY_POINT_GROUP

    packages = {"alignbench"} | {ep.value.split(":")[0].split(".")[0]
                                 for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    roots = {}
    for package in sorted(packages):
        spec = importlib.util.find_spec(package)
        if spec is None:
            roots[package] = []
        elif spec.submodule_search_locations is not None:
            roots[package] = [Path(p) for p in spec.submodule_search_locations]
        else:  # a plugin that is one module
            roots[package] = [Path(spec.origin)] if spec.origin else []
    return roots


def source_digest(roots: dict[str, list[Path]]) -> str:
    """blake2b (8 bytes) of every ``.py`` file under the folders (or the file itself), named by package
    and relative path."""
    digest = hashlib.blake2b(digest_size=8)
    for package, places in sorted(roots.items()):
        for root in places:
            files = [root] if root.is_file() else sorted(root.rglob("*.py"))
            for path in files:
                name = path.name if path == root else path.relative_to(root)
                digest.update(f"{package}/{name}".encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def evaluate_cell(registry: Registry, cell: Cell, splits: DatasetSplits, rows: AnchorRows | None,
                  corrupted: CorruptedInputs | None = None) -> Outcome:
    """Fit the cell's aligner on its anchors (after any damage) and compute its metrics.

    ``rows``: the cell's anchors, None when the train split has fewer items than the level.
    ``corrupted``: the encoded damaged inputs of an input-stage perturbation (from the data stage).
    A plugin's exception fails the cell (KeyboardInterrupt propagates)."""
    anchors = None if rows is None else rows.anchors(splits.train)
    try:
        chosen = applicable(registry, cell, splits, anchors, corrupted)
        if isinstance(chosen, NotApplicable):
            outcome = Outcome("n/a", chosen.reason)
            anchors = chosen.anchors or anchors
        else:
            anchors, damage = chosen
            metrics, timings, fitted = fit_and_score(registry, cell, splits, anchors, damage)
            outcome = Outcome("ok", metrics=metrics, timings=timings, fitted=fitted)
    except AlignbenchError as exc:
        outcome = Outcome("failed", message_of(exc))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a broken plugin (even one calling sys.exit) fails its cell
        log.debug("cell %s failed", cell.key, exc_info=True)
        outcome = Outcome("failed", f"{type(exc).__name__}: {message_of(exc)}")
    return Outcome(outcome.status, outcome.message, outcome.metrics, outcome.timings, anchor_set(anchors),
                   environment(), outcome.fitted, split_sizes(splits))


def anchor_set(anchors: Anchors | None) -> str | None:
    """A short hash of the anchor pairs a cell's aligner got, stored in its record's config."""
    if anchors is None:
        return None
    return hashlib.sha256(anchors.items.tobytes() + anchors.texts.tobytes()).hexdigest()[:16]


def applicable(registry: Registry, cell: Cell, splits: DatasetSplits, anchors: Anchors | None,
               corrupted: CorruptedInputs | None) -> NotApplicable | tuple[Anchors, Damage | None]:
    """The anchors the aligner gets and the damage it learns from, or why the cell cannot run."""
    aligner_cls = registry.load("aligner", cell.aligner)
    if anchors is None:
        return NotApplicable(f"{cell.anchors} anchors asked for; the train split has {splits.train.n_items} items")
    if cell.anchors < aligner_cls.min_anchors:
        return NotApplicable(f"{cell.aligner} needs at least {aligner_cls.min_anchors} anchors")
    if cell.damage is None:
        return anchors, None
    damage = damage_train(registry, cell, splits, corrupted)
    if isinstance(damage, NotApplicable):
        return damage
    survivors = surviving_anchors(anchors, damage)
    if len(survivors.items) < aligner_cls.min_anchors:
        return NotApplicable(f"{len(survivors.items)} of {cell.anchors} anchor pairs survive the damage; "
                             f"{cell.aligner} needs at least {aligner_cls.min_anchors}", survivors)
    return survivors, damage


def damage_train(registry: Registry, cell: Cell, splits: DatasetSplits,
                 corrupted: CorruptedInputs | None) -> Damage | NotApplicable:
    """The damaged train split a perturbed cell learns from, or why the cell is n/a."""
    spec = cell.damage
    perturbation = registry.create("perturbation", spec.name, spec.params)
    side = side_of(perturbation, splits.modalities)
    train = splits.train
    changeable = np.ones(train.n_items if side == "x" else train.n_texts, dtype=bool)
    embedded = None
    if spec.stage == "input":
        if corrupted is None:
            return NotApplicable(f"{spec.name} corrupts raw {perturbation.modality} items; "
                                 f"this dataset holds embeddings")
        changeable, embedded = corrupted.changeable, corrupted.embedded
    label = f"{spec.name} on {train.n_items if side == 'x' else train.n_texts} {perturbation.modality} rows"
    rows = damaged_rows(changeable, spec.fraction, cell.seed, label)
    return apply_damage(train, perturbation, side, rows, cell.seed, embedded)


def fit_and_score(registry: Registry, cell: Cell, splits: DatasetSplits, anchors: Anchors,
                  damage: Damage | None = None) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """Metrics, timings (``fit_s``, ``transform_s``, ``metric:<name>_s`` each, ``metrics_s``) and what
    the fit chose (:func:`fitted_choices`)."""
    aligner: Aligner = registry.create("aligner", cell.aligner, cell.aligner_params)
    timings = {}
    xu = yu = rows = None
    train = splits.train if damage is None else damage.train
    if aligner.uses_unpaired:
        kept = () if damage is None else (damage.kept_items, damage.kept_texts)
        rows = unpaired_rows(train, anchors, cell.seed, *kept)
        xu, yu = train.x[rows[0]], train.y[rows[1]]
    started = time.perf_counter()
    aligner.fit(anchors.x, anchors.y, xu, yu)
    timings["fit_s"] = time.perf_counter() - started
    started = time.perf_counter()
    test = splits.test
    if cell.protocol == "paper":
        test = gallery_with_anchors(test, anchors, splits.train)
    zx, zy = aligner.transform_x(test.x), aligner.transform_y(test.y)
    if zx.shape[1] != zy.shape[1]:  # every metric compares rows of one with rows of the other
        raise AlignbenchError(f"aligner {cell.aligner!r} maps x to {zx.shape[1]} columns and y to {zy.shape[1]}; "
                              f"both sides must land in one space of the same width.")
    timings["transform_s"] = time.perf_counter() - started
    result = AlignmentResult(test=test, zx=zx, zy=zy, anchors=anchors, aligner=aligner, train=train,
                             unpaired_rows=rows)
    metrics: dict[str, float] = {}
    # Per metric, in order: work metrics share through the result (retrieval's similarity pass)
    # is charged to the first that asks for it.
    for described in cell.metrics:
        started = time.perf_counter()
        metric: Metric = registry.create("metric", described.name, described.params)
        scores = metric.compute(result)
        if not isinstance(scores, dict):
            raise AlignbenchError(f"metric {described.name!r} returned {type(scores).__name__}; return a dict of "
                                  f"names to numbers.")
        for key, value in scores.items():
            if not isinstance(key, str) or not key or key in TABLE_COLUMNS:
                raise AlignbenchError(f"metric {described.name!r} reports the key {key!r}, which is not a name or "
                                      f"is one of the tables' own columns ({', '.join(TABLE_COLUMNS)}); rename it.")
            if key in metrics:
                raise AlignbenchError(f"metric {described.name!r} reports {key!r}, which another metric reports too.")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise AlignbenchError(f"metric {described.name!r} reports {key!r} = {type(value).__name__}; "
                                      f"report numbers (NaN where undefined).") from None
            except OverflowError:
                number, value = math.inf, "an integer too large for a float"
            if math.isinf(number):  # JSON (exports, leaderboards) has no infinity
                raise AlignbenchError(f"metric {described.name!r} reports {key!r} = {value}; report finite numbers "
                                      f"(NaN where undefined).")
            metrics[key] = number
        timings[f"metric:{described.name}_s"] = time.perf_counter() - started
    timings["metrics_s"] = sum(v for k, v in timings.items() if k.startswith("metric:"))
    fitted = fitted_choices(aligner, zx.shape[1])
    if damage is not None:  # a drop takes anchors with it: how many pairs the aligner still had
        fitted["anchor_pairs"] = len(anchors.items)
    return metrics, timings, fitted


# The leaderboards' own columns beside the metrics: a metric may not report under these names.
TABLE_COLUMNS = ("setting", "aligner", "anchors", "seed", "status", "perturbation", "fraction", "dataset")

# What the runner itself records among a cell's fitted choices; an aligner's report may not use these names.
RUNNER_CHOICES = ("dim", "anchor_pairs")


def fitted_choices(aligner: Aligner, dim: int) -> dict[str, Any]:
    """``dim``, the width of the comparison space (a reconstruction error is read beside it), and the
    aligner's :meth:`~alignbench.Aligner.fit_report`, its values made plain JSON scalars. A report
    that is not a dict of names to finite numbers, strings or booleans fails the cell in one line."""
    report = aligner.fit_report()
    label = f"{aligner.name or type(aligner).__name__}.fit_report()"
    if not isinstance(report, dict):
        raise AlignbenchError(f"{label} returned {type(report).__name__}; return a dict of names to numbers, "
                              f"strings or booleans.")
    choices: dict[str, Any] = {"dim": int(dim)}
    for key, value in report.items():
        if not isinstance(key, str) or key in RUNNER_CHOICES:
            raise AlignbenchError(f"{label} reports the key {key!r}, which is not a string or is the runner's "
                                  f"own; rename it.")
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            raise AlignbenchError(f"{label}[{key!r}] is {value}; report finite numbers (leave out what did not happen).")
        if not isinstance(value, (bool, int, float, str)):
            raise AlignbenchError(f"{label}[{key!r}] is a {type(value).__name__}; report numbers, strings or "
                                  f"booleans.")
        choices[key] = value
    return choices


def unpaired_items(train: PairedData, anchors: Anchors, seed: int, kept_items: np.ndarray | None = None,
                   kept_texts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings of :func:`unpaired_rows`: ``(xu, yu)``."""
    items, texts = unpaired_rows(train, anchors, seed, kept_items, kept_texts)
    return train.x[items], train.y[texts]


def unpaired_rows(train: PairedData, anchors: Anchors, seed: int, kept_items: np.ndarray | None = None,
                  kept_texts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The train items and texts that are not anchors (nor the other texts of an anchor item), as
    indices into the train split, each side shuffled on its own so that row order carries no pairing.
    ``kept_*``: the rows left after a drop perturbation (default: all)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    is_anchor = np.zeros(train.n_items, dtype=bool)
    is_anchor[anchors.items] = True
    kept_items = np.ones(train.n_items, dtype=bool) if kept_items is None else kept_items
    kept_texts = np.ones(train.n_texts, dtype=bool) if kept_texts is None else kept_texts
    items = np.flatnonzero(~is_anchor & kept_items)
    texts = np.flatnonzero(~is_anchor[train.text_item] & kept_texts)
    return rng.permutation(items), rng.permutation(texts)
