"""Corrupted captions: word dropout and synonym substitution applied to raw texts before encoding."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import numpy as np

from alignbench import Perturbation, Range
from alignbench.errors import InvalidParameterError

WORD = re.compile(r"[A-Za-z]+(?:[-'][A-Za-z]+)*")


class WordDropout(Perturbation):
    """Deletes ``round(rate * words)`` words of a caption (at least one, never all of them), chosen at
    random; captions of a single word cannot be damaged this way."""

    name = "word-dropout"
    description = "Delete words from captions"
    parameter_ranges = {"rate": Range(low=0, high=1, open_low=True, open_high=True), "seed": Range(low=0)}
    stage = "input"
    modalities = ("text",)

    def __init__(self, rate: float = 0.3, seed: int = 0, modality: str = "text"):
        self.rate = rate
        self.seed = seed
        self.modality = modality

    def can_change(self, item: str) -> bool:
        return len(item.split()) >= 2

    def corrupt_item(self, item: str, rng: np.random.Generator) -> str:
        words = item.split()
        count = min(max(1, round(self.rate * len(words))), len(words) - 1)
        dropped = set(rng.choice(len(words), size=count, replace=False).tolist())
        return " ".join(w for i, w in enumerate(words) if i not in dropped)


@lru_cache(maxsize=None)
def synonym_table(path: str | None = None) -> dict[str, tuple[str, ...]]:
    """The word list: ``word<TAB>synonym, synonym`` per line; ``#`` starts a comment. The shipped list
    (``synonyms.tsv``) covers common caption vocabulary (COCO, Flickr, Fashion-MNIST's templates)."""
    text = (open(path, encoding="utf-8").read() if path else
            resources.files(__package__).joinpath("synonyms.tsv").read_text(encoding="utf-8"))
    table = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        word, _, synonyms = line.partition("\t")
        options = tuple(s.strip() for s in synonyms.split(",") if s.strip() and s.strip() != word.strip())
        if not options:
            raise InvalidParameterError(f"synonym list {path or 'synonyms.tsv'} line {number}: {line!r} has no "
                                        f"synonym; write 'word<TAB>synonym, synonym'.")
        table[word.strip().lower()] = options
    return table


class Synonyms(Perturbation):
    """Replaces each word that has an entry in the word list with one of its synonyms, with
    probability ``rate`` (at least one word per damaged caption); the first letter's case is kept.
    ``word_list``: a file in the same format to use instead of the shipped one."""

    name = "synonyms"
    description = "Swap words for synonyms"
    parameter_ranges = {"rate": Range(low=0, high=1, open_low=True), "seed": Range(low=0)}
    stage = "input"
    modalities = ("text",)

    def __init__(self, rate: float = 0.5, word_list: str | None = None, seed: int = 0, modality: str = "text"):
        self.rate = rate
        self.word_list = word_list
        self.seed = seed
        self.modality = modality

    def _replaceable(self, item: str) -> list[re.Match]:
        table = synonym_table(self.word_list)
        return [m for m in WORD.finditer(item) if m.group().lower() in table]

    def can_change(self, item: str) -> bool:
        return bool(self._replaceable(item))

    def corrupt_item(self, item: str, rng: np.random.Generator) -> str:
        table = synonym_table(self.word_list)
        matches = self._replaceable(item)
        chosen = rng.random(len(matches)) < self.rate
        if not chosen.any():
            chosen[rng.integers(len(matches))] = True
        out, last = [], 0
        for match, swap in zip(matches, chosen):
            if not swap:
                continue
            word = match.group()
            options = table[word.lower()]
            synonym = options[int(rng.integers(len(options)))]
            out += [item[last:match.start()], synonym.capitalize() if word[0].isupper() else synonym]
            last = match.end()
        return "".join(out) + item[last:]
