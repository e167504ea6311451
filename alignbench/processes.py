"""Whether a process still runs: leases in the results store and temporary files in the embedding
cache name the process that holds them, and one that died must not hold them forever."""

from __future__ import annotations

import os


def process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine (a zombie counts as gone). Unsure: False."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate it on Windows: rely on expiry or age there
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, as another user
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False
