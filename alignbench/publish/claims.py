"""Verdicts on the three seed claims, read from the published numbers (never written by hand).

- seed 000: the paper's own method, retrieval in spectral coordinates (``fmap-spectral``), against
  Procrustes at every level with anchors; the spectral diagnostics are in its figures;
- seed 001: the robustness claim at 50% damage, as leaderboards/<dataset>-robustness.json checks it;
- seed 002: the relative held-out alignment error, lowest at the largest supervision level.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sources import Table
from .summary import summarize

SEED_000 = ("fmap-spectral", "procrustes")
HEADLINE = "mean_R@1"
CLASS_HEADLINE = "class_mean_R@1"
ERROR = "relative_alignment_error_heldout"


@dataclass(frozen=True)
class Verdict:
    claim: str       # "seed 000" | "seed 001" | "seed 002"
    dataset: str
    setting_id: str
    verdict: str     # one sentence
    holds: bool | None  # None: a comparison with no stated threshold, or a claim the seeds cannot decide
    evidence: tuple[tuple[str, str], ...]  # (label, relative link)


def seed_000(table: Table, figures: list[str], page: str) -> Verdict | None:
    """fmap-spectral against procrustes on the class-level headline where the data has one (the
    captions of real datasets name a class), else on mean R@1."""
    metric = CLASS_HEADLINE if CLASS_HEADLINE in table.metric_names() else HEADLINE
    summaries = summarize(table, metric)
    spectral, procrustes = SEED_000
    levels = [level for level in table.levels() if level > 0
              and summaries.get((spectral, level)) and summaries[(spectral, level)].mean is not None
              and summaries.get((procrustes, level)) and summaries[(procrustes, level)].mean is not None]
    if not levels:
        return None
    below = [lv for lv in levels if summaries[(spectral, lv)].mean < summaries[(procrustes, lv)].mean]
    last = levels[-1]
    sentence = (f"{spectral} is below {procrustes} at {len(below)} of {len(levels)} anchor levels on {metric} "
                f"({100 * summaries[(spectral, last)].mean:.1f}% against {100 * summaries[(procrustes, last)].mean:.1f}% "
                f"at {last} anchors).")
    evidence = ((f"{table.dataset} tables", page),) + tuple((name.rsplit("/", 1)[-1], name) for name in figures)
    return Verdict("seed 000", table.dataset, table.setting_id, sentence, None, evidence)


def seed_001(dataset: str, payload: dict, page: str) -> list[Verdict]:
    """One verdict per claim check in a robustness payload (perturbation x metric)."""
    out = []
    for check in payload.get("claim_seed_001", []):
        geometric = ", ".join(f"{k} {100 * v:.0f}%" for k, v in sorted(check["geometric"].items()))
        contrastive = ", ".join(f"{k} {100 * v:.0f}%" for k, v in sorted(check["contrastive"].items()))
        sentence = (f"{check['perturbation']} at 50%, {check['metric']}, {check['anchors']} anchors: geometric "
                    f"losses lose {geometric} (claim: at most 10%); contrastive-only loses {contrastive} "
                    f"(claim: at least 30%)."
                    + (" Undecided: " + ("a drop lies within two standard errors over seeds of its bound."
                                         if any(e is not None for e in check.get("standard_errors", {}).values())
                                         else "one seed gives no standard error.")
                       if check["holds"] is None else ""))
        out.append(Verdict("seed 001", dataset, check["setting"], sentence, check["holds"],
                           ((f"{dataset} robustness", f"{page}#robustness"),
                            ("raw", f"data/{dataset}-robustness.json"))))
    return out


def seed_002(table: Table, page: str) -> Verdict | None:
    """The aligner with the lowest relative held-out alignment error at the largest level."""
    if ERROR not in table.metric_names():
        return None
    summaries = summarize(table, ERROR)
    for level in reversed(table.levels()):
        at = {row: s.mean for (row, lv), s in summaries.items() if lv == level and s.mean is not None}
        if at:
            best = min(sorted(at), key=lambda row: at[row])
            others = ", ".join(f"{row} {at[row]:.3g}" for row in sorted(at, key=lambda r: (at[r], r)) if row != best)
            sentence = (f"lowest relative held-out alignment error at {level} anchors: {best} ({at[best]:.3g}); "
                        f"then {others}.")
            return Verdict("seed 002", table.dataset, table.setting_id, sentence, None,
                           ((f"{table.dataset} all metrics", f"{page}#all-metrics"),))
    return None
