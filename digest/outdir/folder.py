"""Writing out/<slug>/: the folder lock, the atomic swap, and recovery from a build killed mid-swap.

Lock: out/.<slug>.lock, beside the folder (which a build replaces). A build holds it exclusively from its
check to its swap; each send holds it shared for its whole run. So a send never opens its journal while a
build swaps, and a build never swaps while a send runs. Readers (check, --status, the archive page) take no
lock: every file is replaced atomically, so a reader sees one build or the other.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from digest.errors import OutputError
from digest.fsutil import atomic_write, shown
from digest.outdir.files import BUILD_FILES, JOURNAL, MANIFEST

# ---- the lock ----


class FolderBusy(OutputError):
    """The folder's lock is held by another process (a send, or a build)."""


def lock_path(folder: Path) -> Path:
    """The lock file of one built folder: out/.<slug>.lock, beside the folder (which a build replaces)."""
    return folder.parent / f".{folder.name}.lock"


@contextmanager
def lock(folder: Path, *, exclusive: bool, wait: float = 0.0) -> Iterator[None]:
    """Hold the folder's lock; FolderBusy (naming the folder) when it is not free within `wait` seconds.

    The last holder removes the lock file, so out/ keeps no trace; whoever locked a file that was removed
    meanwhile notices (the path no longer names it) and locks the new one instead.
    """
    path = lock_path(folder)
    deadline = time.monotonic() + wait
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise OutputError(f"{shown(path.parent)}: cannot use this output folder: {err.strerror}") from err
        try:
            while True:
                try:
                    fcntl.flock(fd, mode)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise FolderBusy(
                            f"{shown(folder)}/ is in use by another `digest build` or `digest send`"
                        ) from None
                    time.sleep(0.05)
            st = os.fstat(fd)
            try:
                now = os.stat(path)
                same = (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)  # the holder before us removed this file: lock the one at the path now
    try:
        yield
    finally:
        try:
            # Exclusive means nobody else holds it: remove the file (anyone about to lock it notices that).
            # From shared this drops the lock for a moment; whoever takes it then keeps the file.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)


@contextmanager
def holding(folder: Path, *, content_hash: str | None = None, wait: float = 0.0) -> Iterator[None]:
    """Hold the folder's lock shared, as a send does (sends of one digest may run together), so that no
    build replaces the folder meanwhile; first put back what a build killed mid-swap left aside. With
    `content_hash`, refuse a folder that no longer holds that build (rebuilt since it was read)."""
    try:
        held = lock(folder, exclusive=False, wait=wait)
        held.__enter__()
    except FolderBusy as err:
        raise FolderBusy(
            f"{err}: a `digest build` of this digest is still writing it after {wait:.0f} s; nothing was sent"
        ) from None
    try:
        recover(folder)
        if content_hash is not None:
            from digest.outdir import is_built, load  # the format, beside this module

            now = load(folder).digest_hash() if is_built(folder) else None
            if now != content_hash:
                raise OutputError(
                    f"{shown(folder)}/: the digest was rebuilt just as this send began; nothing was sent: "
                    "run the command again (to send the new version)"
                )
        yield
    finally:
        held.__exit__(None, None, None)


def sending_now(folder: Path) -> bool:
    """True when a running `digest send` holds this folder's journal (a rebuild must wait for it)."""
    try:
        fd = os.open(folder / JOURNAL, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


# ---- writing: the swap, and recovery from a build killed in the middle of it ----


def _kept_files(folder: Path) -> list[Path]:
    """What a build carries over: everything that is not a build file (the journal and its WAL last)."""
    if not folder.is_dir():
        return []
    kept = [
        e
        for e in folder.iterdir()
        if e.name not in BUILD_FILES and not e.name.startswith(".") and not _language_build(e)
    ]
    # The journal's database last: once it is in a folder, its WAL is too (a concurrent reader checks for it).
    return sorted(kept, key=lambda p: p.name == JOURNAL)


def _language_build(entry: Path) -> bool:
    """A further language's digest (out/<slug>/fr/): a build file, which the new build replaces or drops."""
    return entry.is_dir() and (entry / MANIFEST).is_file()


def _build_file(name: str) -> bool:
    """A name a build writes: one of BUILD_FILES, at the top or in one language's folder ("fr/index.html")."""
    head, _, tail = name.rpartition("/")
    return tail in BUILD_FILES and (
        not head or re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", head) is not None
    )


def recover(folder: Path) -> None:
    """Undo what a build killed between its two renames left: out/<slug>/ missing, or its kept files (the
    journal) only in out/.<slug>.old-*/<slug>/. Call it holding the lock (a running build has such a folder
    too); `write` and every send do."""
    olds = [p / folder.name for p in folder.parent.glob(f".{folder.name}.old-*")]
    olds = [p for p in olds if p.is_dir()]
    olds.sort(key=_last_change, reverse=True)  # the newest first: it was the live folder
    for old in olds:
        try:
            if not folder.exists():
                os.replace(old, folder)
            else:
                for entry in _kept_files(old):
                    if not (folder / entry.name).exists():
                        os.replace(entry, folder / entry.name)
        except FileNotFoundError:
            continue  # another send recovered it first (sends share the lock)
        except OSError as err:
            raise OutputError(
                f"{shown(old)}: cannot recover what it holds of {shown(folder)}/: {err}"
            ) from err
        # What is left there is an older build and copies the folder has: not needed.
        shutil.rmtree(old.parent, ignore_errors=True)


def _last_change(folder: Path) -> int:
    try:
        return max(p.stat().st_mtime_ns for p in [folder, *folder.iterdir()])
    except (OSError, ValueError):
        return 0


def write(folder: Path, files: Mapping[str, bytes]) -> None:
    """Swap a new build into `folder`, atomically; files a build does not write are carried over.

    Takes the folder's lock (OutputError naming the folder when a send or another build holds it),
    first puts back what a killed build left aside, then writes a sibling folder and swaps it in.
    """
    unknown = {name for name in files if not _build_file(name)}
    if unknown:
        raise ValueError(f"not build files: {sorted(unknown)}")
    try:
        with lock(folder, exclusive=True):
            if sending_now(folder):  # the swap would leave that send writing its journal into the old folder
                raise OutputError(
                    f"{shown(folder)}/: `digest send` is sending this digest right now; "
                    "build again when it is done"
                )
            _swap(folder, files)
    except FolderBusy:
        raise OutputError(
            f"{shown(folder)}/: `digest send` is sending this digest right now; build again when it is done"
            if sending_now(folder)
            else f"{shown(folder)}/ is in use by another `digest build` or `digest send`; "
            "build again when it is done"
        ) from None


def _swap(folder: Path, files: Mapping[str, bytes]) -> None:
    parent = folder.parent
    recover(folder)
    for orphan in parent.glob(f".{folder.name}.new-*"):  # a build killed while writing (we hold the lock)
        shutil.rmtree(orphan, ignore_errors=True)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        stage.chmod(0o777 & ~umask)  # mkdtemp makes 0700; the build folder is meant to be published
    except OSError as err:
        raise OutputError(f"{shown(parent)}: cannot create the output folder: {err.strerror}") from err
    old: Path | None = None
    try:
        for name, data in files.items():
            (stage / name).parent.mkdir(exist_ok=True)  # a further language's folder: out/<slug>/fr/
            atomic_write(stage / name, data)
        for entry in _kept_files(folder):
            target = stage / entry.name
            if entry.is_dir():
                shutil.copytree(entry, target)
            else:
                shutil.copy2(entry, target)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=parent))
            os.replace(folder, old / folder.name)
        os.replace(stage, folder)
    except OSError as err:
        shutil.rmtree(stage, ignore_errors=True)
        if old is not None and not folder.exists() and (old / folder.name).exists():
            os.replace(old / folder.name, folder)
        raise OutputError(f"{shown(folder)}/: cannot write the build: {err.strerror or err}") from err
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    fd = os.open(parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
