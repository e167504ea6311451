"""``alignbench publish``: gather the sources, validate submissions, write the static site."""

from __future__ import annotations

import hashlib
import inspect
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import AlignbenchError
from ..params import parameter_defaults
from ..store import CellRecord
from ..submissions import SubmissionError, load_submission
from . import claims, pages
from .pages import PageLinks
from .sources import Table, add_store_provenance, add_submission, local_tables, normalized, robustness

ASSETS = Path(__file__).parent / "assets"
MARKER = ".alignbench-site"  # a site folder we made, and so may empty before writing it again
FIGURE_KINDS = ("recall-vs-anchors", "spectra", "functional-maps")


@dataclass
class SiteReport:
    out: Path
    pages: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    accepted: list[Path] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one line per rejected file
    duplicates: list[str] = field(default_factory=list)  # one line per file identical to an earlier one
    store_disagreements: int = 0

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def build_site(leaderboards: Path, out: Path, *, store_records: list[CellRecord] | None = None,
               results: Path | None = None, known_metrics: dict[str, type], seeds: list[int],
               defaults: Callable[[str, str], dict | None] = lambda kind, name: None) -> SiteReport:
    """Write the site for ``leaderboards/*.json`` (+ the store's provenance, + ``results/*.json``) to ``out``.

    ``known_metrics`` and ``seeds`` are what a submission is checked against (submissions module);
    ``defaults(kind, name)``: a component's default parameters, so that a reproduce command names
    only the parameters that differ."""
    tables = local_tables(leaderboards)
    if not tables:
        raise AlignbenchError(f"no leaderboard JSON files in {leaderboards}; run `alignbench run` first or pass "
                              f"--leaderboards.")
    report = SiteReport(out)
    seen: dict[str, dict] = {}
    if store_records is not None:
        report.store_disagreements = add_store_provenance(tables, store_records)
        seen = {r.key: normalized(r.metrics) for r in store_records}
    accepted, site_rejections = [], []
    digests: dict[str, Path] = {}
    for path in sorted(results.glob("*.json")) if results is not None else []:
        try:  # a copy under another name merges nothing: it is neither one more submission nor one more file
            first = digests.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
        except OSError:
            first = path  # load_submission reports it
        if first != path:
            report.duplicates.append(f"{path}: the same file as {first.name}, read once; remove one of them.")
            continue
        try:  # one bad file is reported and skipped; the others still publish
            submission = load_submission(path, known_metrics, seeds, seen)
        except SubmissionError as exc:
            report.rejected.append(str(exc))
            # The site names the file alone: where the folder was on the build machine is no reader's concern.
            site_rejections.append(str(exc).replace(str(path), path.name, 1))
            continue
        seen.update({r.key: normalized(r.metrics) for r in submission.records})
        add_submission(tables, submission)
        accepted.append(submission)
        report.accepted.append(path)
    robust = {dataset: robustness(leaderboards, dataset) for dataset in sorted({t.dataset for t in tables})}
    prepare(out)  # after every file is read: a bad one leaves the last site as it was
    links = {(t.dataset, t.setting_id): page_links(t, tables, leaderboards) for t in tables}
    verdicts = []
    for table in tables:
        link = links[(table.dataset, table.setting_id)]
        verdicts.append(claims.seed_000(table, [f for f in link.figures if "recall-vs" not in f], link.page))
    for dataset, payload in robust.items():
        if payload:
            first = next(t for t in tables if t.dataset == dataset)
            verdicts += claims.seed_001(dataset, payload, links[(dataset, first.setting_id)].page)
    verdicts += [claims.seed_002(t, links[(t.dataset, t.setting_id)].page) for t in tables]
    verdicts = sorted((v for v in verdicts if v), key=lambda v: (v.claim, v.dataset, v.setting_id, v.verdict))
    navigation = pages.nav(tables, links)
    write = _writer(report)
    write(out / "index.html", pages.layout("alignbench leaderboards",
                                           pages.index_page(tables, links, verdicts, site_rejections), navigation))
    for table in tables:
        link = links[(table.dataset, table.setting_id)]
        body = pages.table_page(table, link, robust[table.dataset], defaults)
        write(out / link.page, pages.layout(f"{table.dataset} — setting {table.setting_id}", body, navigation))
    report.pages = [p for p in report.files if p.suffix == ".html"]
    copied = [leaderboards / f"{t.dataset}{suffix}" for t in tables for suffix in (".json", ".csv", ".md")]
    copied += [leaderboards / f"{d}-robustness{suffix}" for d in {t.dataset for t in tables}
               for suffix in (".json", ".csv", ".md")]
    for source in sorted(set(copied)):
        if source.exists():
            write(out / "data" / source.name, source.read_bytes())
    for link in links.values():
        for figure in link.figures:
            write(out / figure, (leaderboards / Path(figure).name).read_bytes())
    for submission in accepted:
        write(out / "data" / "submissions" / submission.path.name, submission.path.read_bytes())
    for asset in sorted(ASSETS.iterdir()):
        write(out / "assets" / asset.name, asset.read_bytes())
    return report


def default_params(registry) -> Callable[[str, str], dict | None]:
    """``(kind, name) -> default parameters``, None for a component that is not installed here (a
    reproduce command then names all its parameters). The constructor's defaults, not a default
    instance's ``get_params()``: that may resolve a default against this machine's files (coco's
    ``annotations="auto"`` reads as the form found here), and a command that left such a parameter
    out would make other cells where the files differ."""
    cache: dict[tuple[str, str], dict | None] = {}

    def defaults(kind: str, name: str) -> dict | None:
        if (kind, name) not in cache:
            try:
                cache[(kind, name)] = {key: value for key, value in parameter_defaults(registry.load(kind, name)).items()
                                       if value is not inspect.Parameter.empty}
            except Exception:  # noqa: BLE001 - unknown or broken component: no defaults to leave out
                cache[(kind, name)] = None
        return cache[(kind, name)]

    return defaults


def page_links(table: Table, tables: list[Table], leaderboards: Path) -> PageLinks:
    single = sum(t.dataset == table.dataset for t in tables) == 1
    page = f"{table.dataset}.html" if single else f"{table.dataset}-{table.setting_id}.html"
    figures = tuple(f"figures/{table.dataset}-{kind}.svg" for kind in FIGURE_KINDS
                    if (leaderboards / f"{table.dataset}-{kind}.svg").exists())
    data = tuple(f"data/{table.dataset}{s}" for s in (".json", ".csv", ".md") if (leaderboards / f"{table.dataset}{s}").exists())
    if not data:  # a table only submissions hold: its raw data are the submitted files
        data = tuple(sorted({f"data/submissions/{c.origin}" for c in table.cells if c.origin}))
    return PageLinks(page, figures, data)


def prepare(out: Path) -> None:
    """Empty a site folder made by an earlier publish (stale pages must not survive); refuse to write
    into a folder of something else."""
    if out.exists():
        if not out.is_dir():
            raise AlignbenchError(f"--out {out} is a file; pass a directory for the site.")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise AlignbenchError(f"--out {out} holds files that `alignbench publish` did not write; pass an empty "
                                  f"or new directory.")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by alignbench publish; emptied by the next publish\n", encoding="utf-8")


def _writer(report: SiteReport) -> Callable[[Path, str | bytes], None]:
    def write(path: Path, content: str | bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        report.files.append(path)

    return write
