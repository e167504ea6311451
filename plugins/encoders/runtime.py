"""What every torch encoder shares: device and precision choice, weights identity, clear errors."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
from pathlib import Path
from typing import Any, Iterable

from alignbench.errors import AlignbenchError


class EncoderUnavailableError(AlignbenchError):
    """An encoder's weights or libraries are missing; the message says what to install or pass."""


def require(module: str, extra: str = "encoders"):
    try:
        return __import__(module)
    except ImportError:
        raise EncoderUnavailableError(
            f"this encoder needs the Python package {module!r}: pip install 'alignbench[{extra}]' "
            f"(install torch==2.13.0 first for the CPU build)"
        ) from None


def importable(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


def resolve_device(device: str) -> Any:
    """``auto`` picks cuda, then mps, then cpu."""
    torch = require("torch")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise EncoderUnavailableError(f"unknown device {device!r} ({exc}); use auto, cpu, cuda or mps") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        why = "has no CUDA" if torch.version.cuda is None else "sees no GPU"
        raise EncoderUnavailableError(f"device {device!r}: torch {torch.__version__} {why} here; use device=cpu "
                                      "(or auto, which takes a GPU when there is one)")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise EncoderUnavailableError(f"device {device!r}: this machine has {torch.cuda.device_count()} GPU(s), "
                                      f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if resolved.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise EncoderUnavailableError(f"device {device!r}: no Apple GPU (MPS) here; use device=cpu or auto")
    return resolved


def resolve_dtype(precision: str, device: Any) -> Any:
    """fp32 everywhere; fp16 and bf16 only on an accelerator (on CPU they are slower, not faster)."""
    torch = require("torch")
    if precision == "fp32":
        return torch.float32
    if device.type == "cpu":
        raise EncoderUnavailableError(f"precision {precision} is for GPUs; on CPU use fp32 (bf16 runs at half speed here)")
    return {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def place(model, device: str, precision: str, **to_options):
    """Move a model to the chosen device and precision in eval mode: ``(model, device, dtype)``."""
    resolved = resolve_device(device)
    dtype = resolve_dtype(precision, resolved)
    return model.to(resolved, dtype, **to_options).eval(), resolved, dtype


def versions(packages: Iterable[str]) -> dict[str, str]:
    out = {}
    for package in packages:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def path_fingerprint(path: str | Path) -> dict[str, Any]:
    """The identity of local weights: every file's name, size and sha256.

    By content, not modification time: a checkpoint re-saved within the same second, or copied with
    its times kept (``cp -p``, ``rsync -a``, ``tar x``), kept a time-based identity, and the cache then
    served embeddings of the old weights. Each file is read once per process while it is unchanged."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    entries = []
    for file in files:
        stat = file.stat()
        digest = _file_sha256(str(file.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
        entries.append([str(file.relative_to(path)) if file != path else file.name, stat.st_size, digest])
    return {"path": str(path.resolve()), "files": entries}


@functools.lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    """sha256 of a file; the arguments after ``path`` only key the memo (any rewrite changes ctime)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_identity(weights: str) -> dict[str, Any]:
    """A local path's :func:`path_fingerprint`, or a hub id's :func:`hub_revision`."""
    return path_fingerprint(weights) if Path(weights).exists() else hub_revision(weights)


def hub_revision(repo_id: str, revision: str = "main") -> dict[str, Any]:
    """A hub model's identity: its id and the commit that ``revision`` resolves to in the local Hugging
    Face cache, which is the snapshot ``from_pretrained`` loads (offline it loads nothing else). Reads
    the cache's ``refs/<revision>`` file and nothing more: never downloads. ``revision`` is None while
    the model is not cached; after the first download the commit is recorded, and a hub update that a
    later download brings in changes it, so that cached embeddings of the old weights are not reused."""
    ref = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}" / "refs" / revision
    try:
        commit = ref.read_text(encoding="utf-8").strip() or None
    except OSError:
        commit = None
    return {"hub": repo_id, "revision": commit}


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, found as huggingface_hub finds it (HF_HUB_CACHE, then
    HUGGINGFACE_HUB_CACHE, then HF_HOME/hub, then $XDG_CACHE_HOME/huggingface/hub, then
    ~/.cache/huggingface/hub), from the environment as it is now."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(os.path.expanduser(explicit)))
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(os.path.expandvars(os.path.expanduser(home))) / "hub"


def batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def encode_in_batches(items, batch_size: int, features, normalize: bool, dim: int):
    """Run ``features(batch) -> tensor`` over batches under ``inference_mode``: ``(n, dim)`` float32."""
    import numpy as np

    torch = require("torch")
    out = []
    with torch.inference_mode():
        for batch in batches(list(items), batch_size):
            result = features(batch)
            if normalize:
                result = torch.nn.functional.normalize(result, dim=1)
            out.append(result.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, dim), np.float32)
