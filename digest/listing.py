"""Listing the items folder: every item file, and whether it changed since the index was made
(`iter_item_files`), in the build's own process or in several forked ones (`Listers`) for a large archive.

digest/scan.py decides which and what to parse; this module only lists and stats.
"""

from __future__ import annotations

import marshal
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from digest.errors import ItemError
from digest.fsutil import shown
from digest.items import SUFFIXES

# A folder the index knows to hold this many item files or more is listed by forked processes while the
# build renders; a smaller one is listed in a few milliseconds, less than forking costs.
FORK_FROM = 2_000
# One lister per usable processor, up to this many: each lists every folder, so more add that cost again.
MAX_LISTERS = 4


@dataclass(frozen=True)
class Walk:
    """What listing the items folder found: how many item files, the ones to parse, and the folders."""

    count: int
    changed: list[tuple[str, str]]
    dirs: dict[str, int]


def iter_item_files(
    items_dir: Path,
    *,
    known_dirs: dict[str, int],
    since_ns: int,
    dirs: dict[str, int],
    share: tuple[int, int] = (0, 1),
) -> Iterator[tuple[str, str, bool]]:
    """(key, path, changed) of every item file below items_dir, recursively, in no particular order.

    The key is the path relative to items_dir with "/" separators; names starting with "." or "_" are
    skipped. `changed` is true when the file's ctime is `since_ns` or later, or when it lies in a folder
    the index does not know under that name and inode (a folder moved in, renamed or replaced keeps the
    old ctimes of the files inside it). `dirs` receives every folder's key and inode, for the next scan.
    Plain strings and os.scandir, not pathlib: this runs once per file of a 100,000-file archive.
    A folder that cannot be listed is an ItemError naming it.

    share=(k, n): only the files whose name hashes to k among n (every folder is still listed), so that n
    forked processes, which share the interpreter's string hashing, each stat a part of the archive.
    """
    part, parts = share
    root = str(items_dir)
    root_inode = os.stat(root).st_ino
    dirs[""] = root_inode
    # Listing an open folder makes each stat relative to it (fstatat): no walk down the path per file,
    # about a fifth of the listing's time on a 100,000-file archive. Each name's type comes with the
    # listing (d_type): no system call tells a file from a folder, in every lister alike, so all of them
    # see the same folders, whatever the names (a folder called x.md, pictures beside the items).
    by_fd = os.scandir in os.supports_fd
    stack = [("", root, known_dirs.get("") != root_inode)]
    while stack:
        prefix, folder, new = stack.pop()
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY) if by_fd else -1
        except OSError as err:
            raise ItemError([f"{shown(Path(folder))}/: cannot list the folder: {err.strerror}"]) from None
        try:
            with os.scandir(fd if by_fd else folder) as entries:
                for entry in entries:
                    name = entry.name
                    if name[0] in "._":
                        continue
                    try:
                        # The common case first: an item file (d_type says so without a system call).
                        if name.endswith(SUFFIXES) and entry.is_file():
                            if parts > 1 and hash(name) % parts != part:
                                continue
                            yield prefix + name, f"{folder}{os.sep}{name}", new or _changed(entry, since_ns)
                        elif entry.is_dir():
                            key = prefix + name
                            inode = entry.stat().st_ino
                            dirs[key] = inode
                            moved = known_dirs.get(key) != inode
                            stack.append((f"{key}/", f"{folder}{os.sep}{name}", new or moved))
                    except FileNotFoundError:
                        continue  # removed since it was listed: not there
                    except OSError:
                        continue  # a link that leads nowhere (a loop): neither an item nor a folder
        except OSError as err:
            raise ItemError([f"{shown(Path(folder))}/: cannot list the folder: {err.strerror}"]) from None
        finally:
            if by_fd:
                os.close(fd)


def _changed(entry: os.DirEntry[str], since_ns: int) -> bool:
    """Whether an item file changed since since_ns, by its ctime; one that cannot be stat'ed is, so that
    the scan reads it and says why it cannot (`path:1: cannot read: ...`)."""
    try:
        return entry.stat().st_ctime_ns >= since_ns
    except FileNotFoundError:
        raise
    except OSError:
        return True


class Listers:
    """Each of `works` run in a forked process (their system calls then overlap the parent's rendering and
    each other). join() waits for them and joins their walks; any failure of a child means `fallback` runs
    here instead. close() ends the children of a listing that is never joined (a build that failed first).
    """

    def __init__(self, works: Sequence[Callable[[], Walk]], *, fallback: Callable[[], Walk]) -> None:
        self.wanted, self.fallback = len(works), fallback
        self.started: list[tuple[int, int]] = []  # (pid, read end of its pipe), until joined or closed
        for work in works:
            # Out of files or processes: fewer children than works, and the join lists the folder here.
            try:
                read_end, write_end = os.pipe()
            except OSError:
                break
            try:
                pid = os.fork()
            except OSError:
                os.close(read_end)
                os.close(write_end)
                break
            if pid == 0:  # the child: list, send the result, leave without any clean-up of the parent's
                status = 1
                try:
                    os.close(read_end)
                    walk = work()
                    data = marshal.dumps((walk.count, walk.changed, walk.dirs))
                    with os.fdopen(write_end, "wb") as pipe:
                        pipe.write(data)
                    status = 0
                finally:
                    os._exit(status)
            os.close(write_end)
            self.started.append((pid, read_end))

    def join(self) -> Walk:
        """The walks of every child joined, or the fallback's."""
        walks = []
        while self.started:
            pid, read_end = self.started[0]
            with os.fdopen(read_end, "rb") as pipe:
                data = pipe.read()
            _, status = os.waitpid(pid, 0)
            self.started.pop(0)
            if status == 0 and data:
                walks.append(marshal.loads(data))  # noqa: S302 - our own child's output, through a pipe
        # Each child listed every folder and stat'ed its share of the files. The folders must be the same
        # in all: one renamed or moved in between two children's listings would have part of its files
        # under each name, and the index would learn of the folder under a name whose files it never
        # saw. Then (rarely) the folder is listed again here, by one process.
        if len(walks) != self.wanted or any(dirs != walks[0][2] for _, _, dirs in walks):
            return self.fallback()
        changed = [tuple(c) for _, found, _ in walks for c in found]
        return Walk(sum(count for count, _, _ in walks), changed, walks[0][2])

    def close(self) -> None:
        """Stop and reap the children not joined yet."""
        for pid, read_end in self.started:
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            os.close(read_end)
            with suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.started = []
