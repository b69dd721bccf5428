"""Small file helpers shared by the stages: one atomic write, one workspace path, one way to show a path."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2


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


def shown(path: Path) -> str:
    """A path as messages show it: relative to the current folder when it is inside it, else as given."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix() or "."
    except (ValueError, OSError):
        return str(path)


def bytecode_cache(cache_dir: Path) -> jinja2.BytecodeCache | None:
    """Compiled Jinja templates kept in the cache folder (Jinja checks each template's source): compiling
    the digest's templates costs about 30 ms a run. None for a cache folder that cannot be made."""
    import jinja2

    folder = cache_dir / "jinja"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only workspace just compiles every time
    return jinja2.FileSystemBytecodeCache(str(folder))
