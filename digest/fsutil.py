"""Small file helpers shared by the stages that write or name files: one atomic write, one relative path."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write data to path all at once: a temporary file beside it, synced, then renamed over it.

    A reader sees the old file or the new one, never half of one; a failure leaves no temporary file.
    OSError is the caller's to translate (it knows what the file is for).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes 0600; these files are meant to be published
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rel_path(path: Path, root: Path) -> str:
    """path relative to root with / separators (as messages and the manifest show it), else path as given."""
    for p, r in ((path, root), (path.resolve(), root.resolve())):
        try:
            return p.relative_to(r).as_posix()
        except ValueError:
            continue
    return str(path)
