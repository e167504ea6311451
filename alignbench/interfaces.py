"""The four component interfaces: Dataset, Encoder, Aligner, Metric, and the data they exchange.

Conventions: arrays are ``(n, d)`` float32 with one row per item. The "x" side is the item side
(images), the "y" side the texts; an item may have several texts (COCO and Flickr have five
captions per image), and ``text_item[j]`` says which item text ``j`` describes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Hashable, Mapping, Sequence

import numpy as np

from .arrays import as_embeddings, check_paired, returned_matrix
from .errors import InvalidInputError, NotFittedError
from .params import Range, check_parameter_ranges, get_params


class Component:
    """Shared by all plugin kinds: a name, a one-line description, scikit-learn-style parameters.

    ``version``: None until a change of the component's code gives other numbers for the same
    parameters (and weights, files); from then on a string, changed with every such change, in the
    cells' keys (and, for encoders, datasets and perturbations, the embedding cache's key), so that
    embeddings and results of the old code are never served as the new one's. (None keeps the keys
    written before versions.)
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    version: ClassVar[str | None] = None
    # The possible values of each numeric constructor parameter, e.g. {"n_neighbors": Range(low=1)}
    # (scikit-learn's parameter constraints): checked by ``validate`` when a sweep is planned.
    parameter_ranges: ClassVar[dict[str, Range]] = {}

    def get_params(self) -> dict[str, Any]:
        return get_params(self)

    def validate(self) -> None:
        """Reject impossible parameter values before any work (InvalidParameterError, one line naming
        ``name.key``): those outside ``parameter_ranges``. A subclass with further checks calls this first."""
        check_parameter_ranges(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class PairedData:
    """One split of a paired dataset.

    x: ``(n_items, dx)`` embeddings, or a sequence of raw items (images) for an Encoder.
    y: ``(n_texts, dy)`` embeddings, or a sequence of raw texts (strings) for an Encoder.
    text_item: ``(n_texts,)`` int64, the item each text belongs to (the group structure).
    item_ids: stable identifiers of the items (file names, dataset ids), for caching and audits.
    latent: ``(n_items, k)`` ground-truth latent, known only for synthetic data.
    labels: ``(n_items,)`` int class labels, where the dataset has them.
    """

    x: Any
    y: Any
    text_item: np.ndarray
    item_ids: tuple[str, ...] | None = None
    latent: np.ndarray | None = None
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        text_item = np.asarray(self.text_item, dtype=np.int64)
        object.__setattr__(self, "text_item", text_item)
        if text_item.ndim != 1 or len(text_item) != len(self.y):
            raise InvalidInputError(
                f"text_item has shape {text_item.shape} but there are {len(self.y)} texts; give one item index per text."
            )
        if len(text_item) and (text_item.min() < 0 or text_item.max() >= len(self.x)):
            raise InvalidInputError(f"text_item refers to items outside 0..{len(self.x) - 1}.")
        missing = np.setdiff1d(np.arange(len(self.x)), text_item)
        if missing.size:
            raise InvalidInputError(
                f"{missing.size} item(s) have no text (first: {missing[:5].tolist()}); every item needs at least one."
            )
        for name, extra in (("latent", self.latent), ("labels", self.labels), ("item_ids", self.item_ids)):
            if extra is not None and len(extra) != len(self.x):
                raise InvalidInputError(f"{name} has {len(extra)} rows for {len(self.x)} items.")

    @property
    def n_items(self) -> int:
        return len(self.x)

    @property
    def n_texts(self) -> int:
        return len(self.y)

    @property
    def is_embedded(self) -> bool:
        return isinstance(self.x, np.ndarray) and isinstance(self.y, np.ndarray)

    def texts_of(self, item: int) -> np.ndarray:
        return np.flatnonzero(self.text_item == item)

    def subset(self, items: np.ndarray) -> "PairedData":
        """The given items (in that order) with all their texts, re-indexed from 0."""
        items = np.asarray(items, dtype=np.int64)
        position = np.full(self.n_items, -1, dtype=np.int64)
        position[items] = np.arange(len(items))
        texts = np.flatnonzero(position[self.text_item] >= 0)
        return PairedData(
            x=_take(self.x, items),
            y=_take(self.y, texts),
            text_item=position[self.text_item[texts]],
            item_ids=None if self.item_ids is None else tuple(self.item_ids[i] for i in items),
            latent=None if self.latent is None else self.latent[items],
            labels=None if self.labels is None else self.labels[items],
        )


def _take(seq: Any, index: np.ndarray) -> Any:
    if isinstance(seq, np.ndarray):
        return seq[index]
    return [seq[i] for i in index]


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset's deterministic train split (the anchor pool) and held-out test split."""

    train: PairedData
    test: PairedData
    modalities: tuple[str, str] = ("image", "text")


class Dataset(Component, ABC):
    """Paired data with a group structure and deterministic splits.

    Anchors are only ever drawn from ``train``; every metric is computed on ``test``.
    ``raw``: the splits hold raw items (images, strings) that need encoders; then
    ``default_encoders`` are used for any modality the user names no encoder for.

    ``version`` (see Component): changed when the same parameters and files give other splits
    (other captions, another subset).
    """

    raw: ClassVar[bool] = False
    default_encoders: ClassVar[dict[str, str]] = {"image": "efficientnet-lite0", "text": "minilm"}

    @abstractmethod
    def load(self) -> DatasetSplits:
        """Read or generate the data. Must return the same splits on every call."""

    def available(self) -> bool:
        """A cheap check that ``load`` will find its data on this machine."""
        return True

    def how_to_get(self) -> str:
        """What to do when ``available()`` is False."""
        return ""


# --------------------------------------------------------------------------------------- encoders


class Encoder(Component, ABC):
    """Turns raw items of one modality into embeddings.

    ``version`` (see Component): changed when the same parameters and weights give other embeddings
    (its input preparation, say).
    """

    modality: ClassVar[str] = ""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Output dimension."""

    @abstractmethod
    def encode(self, items: Sequence[Any]) -> np.ndarray:
        """``(len(items), dim)`` float32 embeddings."""

    def available(self) -> bool:
        """A cheap check that the libraries and weights are here (no model is loaded)."""
        return True

    def identity(self) -> dict[str, Any]:
        """Everything that changes the numbers ``encode`` returns: the embedding cache's key.

        Subclasses add the weights' identity (a path with its size and time, a package version) and
        the versions of the libraries that compute the features.
        """
        identity = {"class": f"{type(self).__module__}.{type(self).__qualname__}", "params": self.get_params()}
        if type(self).version is not None:
            identity["version"] = type(self).version
        return identity

    def weights_pin(self) -> dict[str, Any] | None:
        """What a result cell's key records of the weights beyond the parameters: the content of
        weights read from local files (their digests), so that a checkpoint rewritten in place gives
        new cells instead of the old ones reported as done. None (the default) where the parameters
        name the weights, as a versioned package or a hub id does."""
        return None


# --------------------------------------------------------------------------------------- aligners


class Aligner(Component, ABC):
    """Maps two embedding spaces into one comparison space, scikit-learn style.

    Subclasses implement ``_fit``, ``_transform_x`` and ``_transform_y``; the public methods
    validate inputs (shapes, NaN, enough anchors) so every aligner fails the same clear way.

    ``min_anchors``: the fewest anchor pairs the method can use (0 = it can run unsupervised).
    ``uses_unpaired``: whether the method learns from the unpaired items as well.
    Fitted attributes end in ``_``.
    """

    min_anchors: ClassVar[int] = 1
    uses_unpaired: ClassVar[bool] = False
    # Conformance checks this aligner is expected to fail, each with the reason (see alignbench.testing).
    expected_failures: ClassVar[dict[str, str]] = {}

    def fit(
        self,
        x_anchors: np.ndarray,
        y_anchors: np.ndarray,
        x_unpaired: np.ndarray | None = None,
        y_unpaired: np.ndarray | None = None,
    ) -> "Aligner":
        """Learn the alignment from anchor pairs (row i of each is a pair) and optional unpaired items."""
        xa = as_embeddings(x_anchors, "x_anchors")
        ya = as_embeddings(y_anchors, "y_anchors")
        check_paired(xa, ya, "x_anchors", "y_anchors")
        if xa.shape[0] < self.min_anchors:
            raise InvalidInputError(
                f"{self.name or type(self).__name__} needs at least {self.min_anchors} anchor pairs, "
                f"got {xa.shape[0]}; raise the supervision level."
            )
        xu = None if x_unpaired is None else as_embeddings(x_unpaired, "x_unpaired", dim=xa.shape[1])
        yu = None if y_unpaired is None else as_embeddings(y_unpaired, "y_unpaired", dim=ya.shape[1])
        self.dim_x_, self.dim_y_ = xa.shape[1], ya.shape[1]
        self._fit(xa, ya, xu, yu)
        return self

    def transform_x(self, x: np.ndarray) -> np.ndarray:
        """Items of the x side in the comparison space, ``(n, k)`` float32."""
        self._check_fitted()
        x = as_embeddings(x, "x", dim=self.dim_x_)
        return self._checked_output(self._transform_x(x), "transform_x", len(x))

    def transform_y(self, y: np.ndarray) -> np.ndarray:
        """Items of the y side in the comparison space, ``(n, k)`` float32."""
        self._check_fitted()
        y = as_embeddings(y, "y", dim=self.dim_y_)
        return self._checked_output(self._transform_y(y), "transform_y", len(y))

    def _checked_output(self, z: np.ndarray, method: str, rows: int) -> np.ndarray:
        # NaN never compares greater, so it would pass for a perfect score in retrieval: stop it here.
        return returned_matrix(z, f"aligner {self.name or type(self).__name__!r} {method}", rows, "input",
                               nonfinite="the fit diverged (check its parameters, e.g. a smaller learning rate).")

    def _check_fitted(self) -> None:
        if not hasattr(self, "dim_x_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(x_anchors, y_anchors) first.")

    def fit_report(self) -> dict[str, Any]:
        """What the fit chose that the parameters do not fix, recorded with each cell and tabled beside
        its scores: a chosen dimension, an early stop, how much of a method took part (a loss term
        dropped for want of anchors, a matching that found nothing), so that a row whose columns are
        different models, or another method in disguise, says so. Names map to numbers, strings or
        booleans. Subclasses implement ``_fit_report``; before ``fit`` this is a NotFittedError."""
        self._check_fitted()
        return self._fit_report()

    def _fit_report(self) -> dict[str, Any]:
        """The report of a fitted aligner (see :meth:`fit_report`); the default reports nothing."""
        return {}

    @abstractmethod
    def _fit(self, xa: np.ndarray, ya: np.ndarray, xu: np.ndarray | None, yu: np.ndarray | None) -> None: ...

    @abstractmethod
    def _transform_x(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _transform_y(self, y: np.ndarray) -> np.ndarray: ...


# --------------------------------------------------------------------------------------- perturbations


class Perturbation(Component, ABC):
    """Damages one modality of the train split, the data an aligner learns from (robustness suite).

    The runner picks which rows to damage (a seeded, nested fraction of the modality's rows that the
    perturbation can change) and asks the perturbation for their damaged versions. ``stage`` says where:

    - ``"drop"``: the rows are removed; their pairs are lost, the other side's rows stay as unpaired data.
    - ``"input"``: raw items are corrupted before encoding (``corrupt_item``); raw datasets only.
    - ``"embedding"``: embeddings are corrupted (``corrupt_embeddings``); any dataset.

    ``modality`` (a constructor parameter) names the damaged side: "image" (x) or "text" (y).
    ``modalities`` lists the ones the perturbation can damage (empty: any).

    ``version`` (see Component): changed when the same parameters damage the same items otherwise.
    """

    stage: ClassVar[str] = "embedding"
    modalities: ClassVar[tuple[str, ...]] = ()
    modality: str

    def can_change(self, item: Any) -> bool:
        """Whether ``corrupt_item`` changes this raw item (a caption with no listed word cannot be
        rewritten by synonyms); only rows that can change are picked."""
        return True

    def corrupt_item(self, item: Any, rng: np.random.Generator) -> Any:
        """The damaged version of one raw item (input stage), for items ``can_change`` accepts only.
        ``rng`` is seeded per item, so the damage of an item does not depend on which other items
        are damaged."""
        raise NotImplementedError(f"{type(self).__name__} does not corrupt raw items")

    def corrupt_embeddings(self, e: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A copy of ``e`` with ``rows`` damaged (embedding stage)."""
        raise NotImplementedError(f"{type(self).__name__} does not corrupt embeddings")


# --------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Anchors:
    """The supervision an aligner was given: item indices into the train split and their pairs."""

    items: np.ndarray
    texts: np.ndarray
    x: np.ndarray
    y: np.ndarray
    latent: np.ndarray | None = None


@dataclass(frozen=True)
class AlignmentResult:
    """What a Metric sees: held-out data before and after alignment, the anchors, the aligner.

    zx: ``(n_items, k)`` aligned test items; zy: ``(n_texts, k)`` aligned test texts.
    train: the train split the aligner learned from (after any damage), and unpaired_rows the train
    ``(item indices, text indices)`` of the unpaired rows ``fit`` was given, in that order (None for
    aligners that take none): the truth against which an aligner's own matches can be scored.
    """

    test: PairedData
    zx: np.ndarray
    zy: np.ndarray
    anchors: Anchors
    aligner: Aligner
    train: PairedData | None = None
    unpaired_rows: tuple[np.ndarray, np.ndarray] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    _shared: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def shared(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``, called once per result and key: metrics that need the same derived object
        (retrieval and class retrieval read their ranks from one pass over the similarity matrix)
        ask for it under the same key, and the first one to ask computes it."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]


class Metric(Component, ABC):
    """Scores an alignment on the held-out split.

    ``version`` changes whenever the numbers a metric produces would change, so that results
    from different versions never share a leaderboard row. ``higher_is_better`` maps each key
    ``compute`` returns to its direction.
    """

    version: ClassVar[str] = "1"
    higher_is_better: ClassVar[dict[str, bool]] = {}

    @abstractmethod
    def compute(self, result: AlignmentResult) -> dict[str, float]:
        """Named scalar scores."""

    @classmethod
    def inconsistencies(cls, values: Mapping[str, float | None]) -> list[str]:
        """What in one cell's scores this metric's ``compute`` could never have returned together, each
        as one phrase (a recall that falls as K grows, an accuracy above its own ceiling). ``values``
        holds every metric's keys of the cell, None where a key does not apply. Results files are
        checked against it before they are published; the default finds nothing."""
        return []

    @classmethod
    def direction(cls, key: str) -> bool | None:
        """Whether a higher ``key`` is better; keys like ``R@5`` may be declared by prefix (``R@``)."""
        if key in cls.higher_is_better:
            return cls.higher_is_better[key]
        if "@" in key:
            return cls.higher_is_better.get(key.split("@")[0] + "@")
        return None
