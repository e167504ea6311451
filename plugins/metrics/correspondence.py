"""How right an aligner's own matches between unpaired items are.

An aligner that turns a structure (a functional map, a transport plan) into point matches and then
fits a map on them is only as good as those matches. Aligners that find matches expose
``matches_``: ``(n, 2)`` int (y row, x row) pairs, rows counted in the arrays ``fit`` was given
(anchors first, then unpaired), ``kept_matches_``: ``(n,)`` bool, the matches the final map used,
and ``match_choices_``: ``("x" or "y", rows)``, the side each match picked its row on and the rows it
picked among (see :func:`match_reach`).

A match is right when the x item has a text identical to the y row (bit for bit): a caption that
many items share (Fashion-MNIST's 50 strings) is right for any of them, so ``match_chance`` says
what picking an x row at random would score.
"""

from __future__ import annotations

import numpy as np

from alignbench import AlignmentResult, Metric
from alignbench_plugins.geometry.graphs import distinct_rows
from alignbench_plugins.metrics.consistency import at_least, score


def item_strings(text_item: np.ndarray, texts: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(string, pairs, n_strings)``: each text's distinct string (identical rows are one), and the
    (item, string) pairs that occur, coded ``item * n_strings + string``, sorted."""
    _, string = distinct_rows(texts)
    n_strings = int(string.max()) + 1 if len(string) else 1
    return string, np.unique(text_item.astype(np.int64) * n_strings + string), n_strings


def match_truth(matches: np.ndarray, x_item: np.ndarray, y_text: np.ndarray, text_item: np.ndarray,
                texts: np.ndarray, strings: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(right (n,) bool, chance (n,) float)`` for (y row, x row) ``matches``.

    x_item: train item of every x row fit saw; y_text: train text of every y row; text_item and
    texts ``(n_texts, d)``: the train split's groups and text embeddings (``strings``: their
    :func:`item_strings`, where the caller has them). ``chance[j]``: the fraction of x rows that are
    right for match j's y row.
    """
    string, pairs, n_strings = strings or item_strings(text_item, texts)
    pair_item, pair_string = pairs // n_strings, pairs % n_strings
    y_string = string[y_text[matches[:, 0]]]
    right = np.isin(x_item[matches[:, 1]].astype(np.int64) * n_strings + y_string, pairs)
    rows_of_item = np.bincount(x_item, minlength=int(text_item.max()) + 1)
    per_string = np.bincount(pair_string, weights=rows_of_item[pair_item], minlength=n_strings) / max(len(x_item), 1)
    return right, per_string[y_string]


def match_reach(matches: np.ndarray, x_item: np.ndarray, y_text: np.ndarray, text_item: np.ndarray,
                texts: np.ndarray, choices: tuple[str, np.ndarray], strings: tuple | None = None) -> np.ndarray:
    """``(n,) bool``: whether a right match was there to be made, given where the aligner chose from.

    ``choices = ("x", rows)``: each match's x row was picked among the x ``rows`` for its y row (fmap:
    every caption node picks an image node of its graph); it could be right when one of those rows
    has an item with the y row's string. ``("y", rows)``: the y row was picked among the y ``rows``
    for its x row (gw-procrustes: each sampled image picks a sampled caption); it could be right when
    one of those rows has a string of the x row's item. The other arguments as in :func:`match_truth`.
    """
    string, pairs, n_strings = strings or item_strings(text_item, texts)
    pair_item, pair_string = pairs // n_strings, pairs % n_strings
    side, rows = choices
    if side == "x":
        reachable = np.unique(pair_string[np.isin(pair_item, x_item[rows])])
        return np.isin(string[y_text[matches[:, 0]]], reachable)
    reachable = np.unique(pair_item[np.isin(pair_string, string[y_text[rows]])])
    return np.isin(x_item[matches[:, 1]], reachable)


class Correspondence(Metric):
    """``match_accuracy`` (every match the aligner made itself: fmap's beyond the anchors it pins,
    gw-procrustes' of every sampled item), ``kept_match_accuracy`` and
    ``matches_kept`` (those the final map used), ``match_chance`` (a random match) and
    ``match_ceiling`` (the share of matches for which a right one was among the rows the aligner
    chose from, ``match_choices_``, default every x row: a partner outside fmap's graph, outside
    gw-procrustes' sample or dropped by a perturbation cannot be found). Each match is judged on its
    own: where the matching is one to one (gw-procrustes), two rows cannot both take the one right
    partner, so fewer may be reachable together. Empty for aligners that find no matches."""

    name = "correspondence"
    description = "Accuracy of an aligner's own matches between unpaired items (fmap, gw-procrustes)"
    version = "2"  # 2: match_ceiling
    higher_is_better = {"match_accuracy": True, "kept_match_accuracy": True, "matches_kept": True,
                        "match_chance": False, "match_ceiling": True}

    @classmethod
    def inconsistencies(cls, values):
        """An accuracy above the ceiling (a right match is always reachable) or a count of kept
        matches that is not a whole number."""
        problems = at_least(values, "match_accuracy", "match_ceiling", "a right match is always reachable")
        kept = score(values, "matches_kept")
        if kept is not None and kept != int(kept):
            problems.append(f"matches_kept = {kept:g} is not a whole number of matches")
        return problems

    def compute(self, result: AlignmentResult) -> dict[str, float]:
        aligner = result.aligner
        matches = getattr(aligner, "matches_", None)
        if matches is None or result.train is None or result.unpaired_rows is None:
            return {}
        items, texts = result.unpaired_rows
        x_item = np.concatenate([result.anchors.items, items])
        y_text = np.concatenate([result.anchors.texts, texts])
        train = result.train
        matches = np.asarray(matches).reshape(-1, 2)
        texts = np.asarray(train.y)
        strings = item_strings(train.text_item, texts)  # the distinct captions, found once for both
        right, chance = match_truth(matches, x_item, y_text, train.text_item, texts, strings)
        choices = getattr(aligner, "match_choices_", ("x", np.arange(len(x_item))))
        reach = match_reach(matches, x_item, y_text, train.text_item, texts, choices, strings)
        kept = np.asarray(getattr(aligner, "kept_matches_", np.ones(len(right), bool)), bool)
        mean = lambda a: float(np.mean(a)) if len(a) else float("nan")  # noqa: E731
        return {"match_accuracy": mean(right), "match_chance": mean(chance), "match_ceiling": mean(reach),
                "kept_match_accuracy": mean(right[kept]), "matches_kept": float(kept.sum())}
