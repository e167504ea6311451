"""Embedding arrays: checks that name the wrong array and its fix, and the arithmetic every metric
shares (unit rows, float32 ties)."""

from __future__ import annotations

from numbers import Real

import numpy as np

from .errors import AlignbenchError, InvalidInputError


def as_embeddings(array: object, name: str, *, dim: int | None = None, min_rows: int = 0) -> np.ndarray:
    """``array`` as a C-contiguous float32 ``(n, d)`` matrix of finite values, or a clear error."""
    try:
        out = np.asarray(array)
    except Exception as exc:  # noqa: BLE001 - ragged lists and other non-arrays
        raise InvalidInputError(f"{name} is not an array ({exc}); pass a (n, d) float array.") from exc
    if out.ndim != 2:
        raise InvalidInputError(f"{name} has shape {out.shape}; expected a 2-D (n, d) array with one row per item.")
    if not np.issubdtype(out.dtype, np.number) or np.issubdtype(out.dtype, np.complexfloating):
        raise InvalidInputError(f"{name} has dtype {out.dtype}; expected real numbers (float32).")
    if dim is not None and out.shape[1] != dim:
        raise InvalidInputError(f"{name} has {out.shape[1]} columns but the aligner was fitted on {dim}; "
                                f"pass embeddings from the same encoder as in fit.")
    if out.shape[0] < min_rows:
        raise InvalidInputError(f"{name} has {out.shape[0]} rows; at least {min_rows} are needed.")
    out = np.ascontiguousarray(out, dtype=np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise InvalidInputError(
            f"{name} contains NaN or inf in {rows.size} row(s) (first: {rows[:5].tolist()}); "
            f"drop or re-encode those items before aligning."
        )
    return out


def returned_matrix(value: object, label: str, rows: int, unit: str, *, dim: int | None = None,
                    nonfinite: str = "") -> np.ndarray:
    """What a plugin's method returned (``label``: "encoder 'x'", "aligner 'x' transform_y") as a
    ``(rows, d)`` float32 matrix of finite real numbers, one row per ``unit`` it was given, or a
    one-line error naming the method and the fix. ``dim``: the width it declared (None: unchecked);
    ``nonfinite``: the advice where it returned NaN or infinity."""
    fix = f"return an ({unit}s, d) array of real numbers, one row per {unit}"
    if value is None:
        raise AlignbenchError(f"{label} returned None; {fix}.")
    try:
        out = np.asarray(value)
        if out.dtype == object and all(isinstance(v, Real) and not isinstance(v, bool) for v in out.flat):
            out = out.astype(np.float64)  # e.g. a list of Python floats mixed with numpy scalars
    except Exception:  # noqa: BLE001 - ragged lists and other non-arrays
        raise AlignbenchError(f"{label} returned {type(value).__name__}, not an array of numbers; {fix}.") from None
    if not np.issubdtype(out.dtype, np.number) or np.issubdtype(out.dtype, np.complexfloating):
        raise AlignbenchError(f"{label} returned {type(value).__name__}, not an array of numbers (dtype {out.dtype}); "
                              f"{fix}.")
    if out.ndim != 2:
        raise AlignbenchError(f"{label} returned a {out.ndim}-D array of shape {out.shape}; {fix}.")
    if len(out) != rows:
        raise AlignbenchError(f"{label} returned {len(out)} rows for {rows} {unit}s; {fix}.")
    if dim is not None and out.shape[1] != dim:
        raise AlignbenchError(f"{label} returned {out.shape[1]} columns, but its dim is {dim}; {fix}, or correct dim.")
    out = np.ascontiguousarray(out, dtype=np.float32)
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        raise AlignbenchError(f"{label} returned NaN or infinite values in {int(bad.sum())} of {rows} rows; {nonfinite}")
    return out


def check_paired(x: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> None:
    if x.shape[0] != y.shape[0]:
        raise InvalidInputError(
            f"{x_name} has {x.shape[0]} rows but {y_name} has {y.shape[0]}; row i of each must be the same pair."
        )


def l2_normalize(a: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.maximum(norms, eps)


# Rounding error of a float32 dot product of length k grows like sqrt(k) ulps (pairwise and
# blocked summation); this many of them separate "tied" from "different".
TIE_ULPS = 4.0


def tie_tolerance(zx: np.ndarray, zy: np.ndarray) -> float:
    """Largest difference between two scores that still counts as a tie: ``TIE_ULPS sqrt(k)`` float32
    epsilons of the largest possible score ``max|x| max|y|`` (for cosine scores, about ``1e-6 sqrt(k)``)."""
    if not len(zx) or not len(zy):
        return 0.0
    largest = [np.sqrt(np.einsum("ij,ij->i", z, z).max(), dtype=np.float64) for z in (zx, zy)]  # row norms, no temporaries
    scale = float(largest[0] * largest[1])
    return TIE_ULPS * np.sqrt(zx.shape[1]) * float(np.finfo(np.float32).eps) * scale
