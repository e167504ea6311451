"""How right an aligner's own matches between unpaired items are.

An aligner that turns a structure (a functional map, a transport plan) into point matches and then
fits a map on them is only as good as those matches. Aligners that find matches expose
``matches_``: ``(n, 2)`` int (y row, x row) pairs, rows counted in the arrays ``fit`` was given
(anchors first, then unpaired), and ``kept_matches_``: ``(n,)`` bool, the matches the final map used.

A match is right when the x item has a text identical to the y row (bit for bit): a caption that
many items share (Fashion-MNIST's 50 strings) is right for any of them, so ``match_chance`` says
what picking an x row at random would score.
"""

from __future__ import annotations

import numpy as np

from alignbench import AlignmentResult, Metric
from alignbench_plugins.geometry.graphs import distinct_rows


def match_truth(matches: np.ndarray, x_item: np.ndarray, y_text: np.ndarray, text_item: np.ndarray,
                texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(right (n,) bool, chance (n,) float)`` for (y row, x row) ``matches``.

    x_item: train item of every x row fit saw; y_text: train text of every y row; text_item and
    texts ``(n_texts, d)``: the train split's groups and text embeddings. ``chance[j]``: the fraction
    of x rows that are right for match j's y row.
    """
    _, string = distinct_rows(texts)
    n_strings = int(string.max()) + 1 if len(string) else 1
    pairs = np.unique(text_item.astype(np.int64) * n_strings + string)  # (item, string) that occur
    pair_item, pair_string = pairs // n_strings, pairs % n_strings
    y_string = string[y_text[matches[:, 0]]]
    right = np.isin(x_item[matches[:, 1]].astype(np.int64) * n_strings + y_string, pairs)
    rows_of_item = np.bincount(x_item, minlength=int(text_item.max()) + 1)
    per_string = np.bincount(pair_string, weights=rows_of_item[pair_item], minlength=n_strings) / max(len(x_item), 1)
    return right, per_string[y_string]


class Correspondence(Metric):
    """``match_accuracy`` (every match the aligner made itself: fmap's beyond the anchors it pins,
    gw-procrustes' of every sampled item), ``kept_match_accuracy`` and
    ``matches_kept`` (those the final map used), ``match_chance`` (a random match); empty for
    aligners that find no matches."""

    name = "correspondence"
    description = "Accuracy of an aligner's own matches between unpaired items (fmap, gw-procrustes)"
    version = "1"
    higher_is_better = {"match_accuracy": True, "kept_match_accuracy": True, "matches_kept": True,
                        "match_chance": False}

    def compute(self, result: AlignmentResult) -> dict[str, float]:
        aligner = result.aligner
        matches = getattr(aligner, "matches_", None)
        if matches is None or result.train is None or result.unpaired_rows is None:
            return {}
        items, texts = result.unpaired_rows
        x_item = np.concatenate([result.anchors.items, items])
        y_text = np.concatenate([result.anchors.texts, texts])
        train = result.train
        right, chance = match_truth(np.asarray(matches).reshape(-1, 2), x_item, y_text, train.text_item,
                                    np.asarray(train.y))
        kept = np.asarray(getattr(aligner, "kept_matches_", np.ones(len(right), bool)), bool)
        mean = lambda a: float(np.mean(a)) if len(a) else float("nan")  # noqa: E731
        return {"match_accuracy": mean(right), "match_chance": mean(chance),
                "kept_match_accuracy": mean(right[kept]), "matches_kept": float(kept.sum())}
