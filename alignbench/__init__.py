"""alignbench: a benchmark harness for cross-modal representation alignment."""

from .errors import AlignbenchError
from .hookspecs import hookimpl
from .interfaces import (
    Aligner,
    AlignmentResult,
    Anchors,
    Dataset,
    DatasetSplits,
    Encoder,
    Metric,
    PairedData,
    Perturbation,
)
from .params import Range

__version__ = "0.1.0"

__all__ = [
    "AlignbenchError",
    "Aligner",
    "AlignmentResult",
    "Anchors",
    "Dataset",
    "DatasetSplits",
    "Encoder",
    "Metric",
    "PairedData",
    "Perturbation",
    "Range",
    "hookimpl",
]
