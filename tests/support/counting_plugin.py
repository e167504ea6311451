"""A test plugin: an aligner that logs every fit to a file, can sleep and can be told to interrupt."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

import alignbench


class CountingAligner(alignbench.Aligner):
    """Centred identity map on equal dimensions; appends one line per fit to ``counter_path``."""

    name = "counting"
    min_anchors = 1
    interrupt_at: int | None = None  # set by a test: raise KeyboardInterrupt on that fit number

    def __init__(self, counter_path: str = "", sleep: float = 0.0):
        self.counter_path = counter_path
        self.sleep = sleep

    def _fit(self, xa, ya, xu, yu):
        done = fits_logged(self.counter_path)
        if CountingAligner.interrupt_at is not None and done == CountingAligner.interrupt_at:
            raise KeyboardInterrupt
        time.sleep(self.sleep)
        with open(self.counter_path, "a") as log:
            log.write(f"{len(xa)}\n")
        self.mx_, self.my_ = xa.mean(0), ya.mean(0)

    def _transform_x(self, x):
        return x - self.mx_

    def _transform_y(self, y):
        return y - self.my_


class BrokenAligner(alignbench.Aligner):
    """Raises inside fit, like a buggy third-party plugin."""

    name = "broken"

    def __init__(self):
        pass

    def _fit(self, xa, ya, xu, yu):
        raise RuntimeError("this aligner is broken on purpose")

    def _transform_x(self, x):
        return x

    def _transform_y(self, y):
        return y


class Unsupervised(alignbench.Aligner):
    """Can run with zero anchors: centres each side with its unpaired items."""

    name = "unsupervised-centring"
    min_anchors = 0
    uses_unpaired = True

    def __init__(self):
        pass

    def _fit(self, xa, ya, xu, yu):
        self.mx_ = np.concatenate([xa, xu]).mean(0)
        self.my_ = np.concatenate([ya, yu]).mean(0)
        self.seen_unpaired_ = (len(xu), len(yu))

    def _transform_x(self, x):
        return x - self.mx_

    def _transform_y(self, y):
        return y - self.my_


class ExitingAligner(CountingAligner):
    """Kills its own process in ``fit`` (``os._exit``, like the OOM killer) the first ``times`` fits over
    all processes, counted in ``exits_path``; then fits like ``counting``. Only for worker processes.
    ``child``: before each exit it starts a process that sleeps for 10 minutes, logged as ``exit <pid>``."""

    name = "exiting"

    def __init__(self, counter_path: str = "", exits_path: str = "", times: int = 1, child: bool = False):
        super().__init__(counter_path)
        self.exits_path = exits_path
        self.times = times
        self.child = child

    def _fit(self, xa, ya, xu, yu):
        # Each exit is claimed by creating its marker file: two workers fitting at once both read
        # "no exit yet" from the log, and both exited.
        for exit_number in range(self.times):
            try:
                os.close(os.open(f"{self.exits_path}.{exit_number}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            started = ""
            if self.child:
                started = f" {subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']).pid}"
            with open(self.exits_path, "a") as log:
                log.write(f"exit{started}\n")
            os._exit(9)
        super()._fit(xa, ya, xu, yu)


class HangingAligner(CountingAligner):
    """Logs ``<anchors> <process id>`` to ``counter_path``, then never returns from ``fit`` at the
    levels in ``hang_at`` (every level when empty); fits like ``counting`` at the others. ``in_pool``:
    it hangs in a thread pool's thread, which a normal interpreter exit waits for. ``child``: each fit
    first starts a process of its own that sleeps for 10 minutes, and logs its id third."""

    name = "hanging"

    def __init__(self, counter_path: str = "", hang_at: tuple[int, ...] = (), in_pool: bool = False,
                 child: bool = False):
        super().__init__(counter_path)
        self.hang_at = tuple(hang_at)
        self.in_pool = in_pool
        self.child = child

    def _fit(self, xa, ya, xu, yu):
        started = ""
        if self.child:
            started = f" {subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']).pid}"
        with open(self.counter_path, "a") as log:
            log.write(f"{len(xa)} {os.getpid()}{started}\n")
        if self.in_pool:
            from concurrent.futures import ThreadPoolExecutor

            ThreadPoolExecutor(1).submit(self._hang, len(xa)).result()
        self._hang(len(xa))
        self.mx_, self.my_ = xa.mean(0), ya.mean(0)

    def _hang(self, anchors: int) -> None:
        while not self.hang_at or anchors in self.hang_at:
            time.sleep(1.0)


class WhereAligner(CountingAligner):
    """``counting`` that logs ``<anchors> <process id>`` per fit: which worker ran which cell.
    ``background``: each fit first starts a shell job that sleeps that many seconds (it inherits what
    the shell does, the worker's open pipes included), and logs its id third."""

    name = "where"

    def __init__(self, counter_path: str = "", background: int = 0):
        super().__init__(counter_path)
        self.background = background

    def _fit(self, xa, ya, xu, yu):
        started = ""
        if self.background:
            job = subprocess.run(f"sleep {int(self.background)} >/dev/null 2>&1 & echo $!", shell=True,
                                 capture_output=True, text=True, close_fds=False)
            started = f" {job.stdout.strip()}"
        with open(self.counter_path, "a") as log:
            log.write(f"{len(xa)} {os.getpid()}{started}\n")
        self.mx_, self.my_ = xa.mean(0), ya.mean(0)


class ReportingAligner(CountingAligner):
    """``counting`` whose ``fit_report`` is one of ``REPORTS`` (numpy scalars included, or a broken one)."""

    name = "reporting"
    REPORTS = {
        "plain": lambda fit: {"anchors_seen": np.int64(fit.n_), "rule": "exact", "share": np.float32(0.5),
                              "stopped": np.bool_(fit.n_ > 5)},
        "nan": lambda fit: {"share": float("nan")},
        "list": lambda fit: {"shape": [1, 2]},
        "dim": lambda fit: {"dim": 3},
        "none": lambda fit: None,
    }

    def __init__(self, counter_path: str = "", report: str = "plain"):
        super().__init__(counter_path)
        self.report = report

    def _fit(self, xa, ya, xu, yu):
        super()._fit(xa, ya, xu, yu)
        self.n_ = len(xa)

    def _fit_report(self):
        return self.REPORTS[self.report](self)


class QuittingAligner(CountingAligner):
    """Calls ``sys.exit`` in ``fit``, or raises an exception whose ``str()`` itself raises."""

    name = "quitting"

    def __init__(self, how: str = "exit"):
        super().__init__()
        self.how = how

    def _fit(self, xa, ya, xu, yu):
        if self.how == "exit":
            sys.exit(4)

        class Unprintable(Exception):
            def __str__(self):
                raise RuntimeError("no message")

        raise Unprintable()


class OddMetric(alignbench.Metric):
    """Reports what a broken metric might: ``int-key``, ``reserved`` (a table column's name),
    ``text`` (a value that is no number), ``list`` (no dict), ``inf`` or ``huge`` (no finite float)."""

    name = "odd"

    def __init__(self, mode: str = "int-key"):
        self.mode = mode

    def compute(self, result):
        return {"int-key": {1: 0.5, "odd_a": 0.25}, "reserved": {"status": 1.0}, "text": {"odd_a": "high"},
                "list": [0.5], "inf": {"odd_a": 0.5, "odd_b": -float("inf")}, "huge": {"odd_a": 10**400}}[self.mode]


class FaultyAtPlanning(CountingAligner):
    """Fails while a sweep is planned: its constructor raises (``init``), its ``validate`` raises a
    plain exception (``validate``), or a parameter is no JSON value (``path``)."""

    name = "faulty-at-planning"

    def __init__(self, fault: str = "init"):
        if fault == "init":
            raise ValueError("faulty init")
        super().__init__()
        self.fault = fault

    def validate(self):
        if self.fault == "validate":
            raise RuntimeError("faulty validate")

    def get_params(self):
        return {"fault": self.fault, **({"where": __import__("pathlib").Path("/tmp")} if self.fault == "path" else {})}


class OddDefaults(CountingAligner):
    """``counting`` (without its log) whose parameters default to what a plugin may well write: a numpy
    scalar and a set (``odd``), a NaN (``nan``) or an infinity (``inf``, "no limit")."""

    name = "odd-defaults"

    def __init__(self, kind: str = "odd", scale=np.float32(0.5), tags={"b", "a"}):  # noqa: B006
        self.kind = kind
        self.scale = {"nan": float("nan"), "inf": float("inf")}.get(kind, scale)
        self.tags = tags

    def _fit(self, xa, ya, xu, yu):
        self.mx_, self.my_ = xa.mean(0), ya.mean(0)


class Shaped(alignbench.Aligner):
    """Keeps the first four columns, then returns what each side's ``x_out`` / ``y_out`` names: ``ok``,
    ``list`` (a nested list, which is fine), ``none``, ``rows`` (a row short), ``3d``, ``text`` or
    ``wide`` (five columns)."""

    name = "shaped"
    min_anchors = 1

    def __init__(self, x_out: str = "ok", y_out: str = "ok"):
        self.x_out = x_out
        self.y_out = y_out

    def _fit(self, xa, ya, xu, yu):
        pass

    def _transform_x(self, x):
        return self._bent(x, self.x_out)

    def _transform_y(self, y):
        return self._bent(y, self.y_out)

    @staticmethod
    def _bent(z, how):
        return {"ok": z[:, :4], "list": z[:, :4].tolist(), "none": None, "rows": z[:-1, :4], "3d": z[:, :4, None],
                "text": "abc", "wide": z[:, :5]}[how]


def fits_logged(path: str) -> int:
    try:
        with open(path) as log:
            return sum(1 for _ in log)
    except FileNotFoundError:
        return 0


@alignbench.hookimpl
def alignbench_register_aligners(register):
    register("counting", CountingAligner, description="test: counts fits")
    register("broken", BrokenAligner, description="test: always fails")
    register("exiting", ExitingAligner, description="test: kills its process in fit")
    register("where", WhereAligner, description="test: logs the process of each fit")
    register("hanging", HangingAligner, description="test: never returns from fit")
    register("reporting", ReportingAligner, description="test: reports what its fit chose")
    register("unsupervised-centring", Unsupervised, description="test: zero-anchor aligner")
    register("quitting", QuittingAligner, description="test: sys.exit or an unprintable exception in fit")
    register("faulty-at-planning", FaultyAtPlanning, description="test: fails while a sweep is planned")
    register("odd-defaults", OddDefaults, description="test: numpy, set or NaN parameter values")
    register("shaped", Shaped, description="test: returns arrays of the wrong shape")


@alignbench.hookimpl
def alignbench_register_metrics(register):
    register("odd", OddMetric, description="test: reports keys or values no metric may")


class RawToyDataset(alignbench.Dataset):
    """Raw items for the encoder path: 'images' are small int arrays, texts are strings."""

    name = "raw-toy"
    raw = True
    default_encoders = {}  # the tests name the toy encoders explicitly

    def __init__(self, n_items: int = 60, repeated_captions: bool = False):
        self.n_items = n_items
        self.repeated_captions = repeated_captions

    def load(self):
        def split(offset):
            items = [np.full(4, offset + i, dtype=np.float32) + np.arange(4) for i in range(self.n_items)]
            texts = [f"item {offset + i} caption" + ("" if self.repeated_captions else f" {c}")
                     for i in range(self.n_items) for c in range(2)]
            return alignbench.PairedData(x=items, y=texts, text_item=np.repeat(np.arange(self.n_items), 2),
                                         item_ids=tuple(f"toy-{offset + i}" for i in range(self.n_items)))

        return alignbench.DatasetSplits(train=split(0), test=split(1000))


class ToyImageEncoder(alignbench.Encoder):
    name = "toy-image"
    modality = "image"
    calls = 0

    def __init__(self):
        pass

    @property
    def dim(self):
        return 4

    def encode(self, items):
        ToyImageEncoder.calls += 1
        return circle_features(np.array([item[0] for item in items], dtype=np.float64))


class BentImageEncoder(ToyImageEncoder):
    """toy-image whose output is bent as ``out`` says: ``none``, ``text``, ``rows`` (a row short),
    ``wide`` (a column more than its ``dim``) or ``nan`` (one row of NaN)."""

    name = "toy-image-bent"

    def __init__(self, out: str = "none"):
        self.out = out

    def encode(self, items):
        z = super().encode(items)
        nan = z.copy()
        nan[0] = np.nan
        return {"none": None, "text": "abc", "rows": z[:-1], "wide": np.hstack([z, z[:, :1]]), "nan": nan}[self.out]


class LoggedImageEncoder(ToyImageEncoder):
    """toy-image that appends each batch's first item number to ``log_path``, and raises once (while
    ``fail_marker`` exists, which it then removes) on the batch holding item ``fail_at``."""

    name = "toy-image-logged"

    def __init__(self, log_path: str = "", fail_marker: str = "", fail_at: int = -1):
        self.log_path = log_path
        self.fail_marker = fail_marker
        self.fail_at = fail_at

    def encode(self, items):
        numbers = [int(item[0]) for item in items]
        if self.fail_at in numbers and self.fail_marker and os.path.exists(self.fail_marker):
            os.remove(self.fail_marker)
            raise RuntimeError("this encoder fails once on purpose")
        with open(self.log_path, "a") as log:
            log.write(f"{numbers[0]}\n")
        return super().encode(items)


class ToyTextEncoder(alignbench.Encoder):
    """Reads the item number back out of the caption: a perfect text encoder for raw-toy."""

    name = "toy-text"
    modality = "text"

    def __init__(self):
        pass

    @property
    def dim(self):
        return 4

    batches: list[list[str]] = []

    def encode(self, items):
        ToyTextEncoder.batches.append(list(items))
        # Like a real encoder, the last bits depend on the rest of the batch.
        return circle_features(np.array([float(text.split()[1]) for text in items])) * (1 + 1e-6 * len(items))


def circle_features(numbers: np.ndarray) -> np.ndarray:
    """Distinct directions for distinct integers, identical for equal ones."""
    return np.stack([np.cos(numbers), np.sin(numbers), np.cos(2 * numbers), np.sin(2 * numbers)], axis=1).astype(
        np.float32)


@alignbench.hookimpl
def alignbench_register_datasets(register):
    register("raw-toy", RawToyDataset, description="test: raw items for encoders")


@alignbench.hookimpl
def alignbench_register_encoders(register):
    register("toy-image", ToyImageEncoder, description="test: identity on arrays")
    register("toy-image-bent", BentImageEncoder, description="test: returns arrays of the wrong shape")
    register("toy-image-logged", LoggedImageEncoder, description="test: logs its batches, fails once")
    register("toy-text", ToyTextEncoder, description="test: parses captions")
