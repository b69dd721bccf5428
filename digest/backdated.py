"""Back-dated items: written after the last digest sent in full, dated before the `--since-last-send` window
that follows it, so that no window of `--since-last-send` ever takes them. They are named in a warning,
with what would take them; nothing is added to the window behind the team's back.

An item counts when it is not a draft, is due (Item.due) from the start of the window of the last digest
sent in full (Window.last_sent_start: an archive imported since, older than that, is not news) up to this
window's start, and no digest sent in full held it (by slug, Window.sent). A build reads the items index
for it (digest/index.py: its due times, after the build's own scan brought it up to date), not the files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time
from typing import NamedTuple

from digest.config import Config
from digest.errors import EmptyWindow
from digest.fsutil import rel_path
from digest.outdir import out_option
from digest.window import Window
from digest.words import plural


class Entry(NamedTuple):
    """An item that is not a draft: its file as messages show it, when it is due, its slug."""

    source: str
    due: datetime
    slug: str


@dataclass(frozen=True)
class Backdated:
    """The back-dated items of one `--since-last-send` window, and what would take them."""

    window: Window
    late: tuple[Entry, ...]  # oldest first
    resent: int  # items already sent that `digest build --since <first late day>` would take again
    out: str = ""  # " --out DIR" when the digests are not in the workspace's out/

    @property
    def slugs(self) -> frozenset[str]:
        """The back-dated items' slugs."""
        return frozenset(e.slug for e in self.late)

    @property
    def since(self) -> str:
        """The --since day that takes every back-dated item: the first one's day."""
        return self.day(self.late[0])

    def day(self, entry: Entry) -> str:
        """When an item is due, as its day in the window's zone."""
        return entry.due.astimezone(self.window.start.tzinfo).date().isoformat()

    def command(self) -> str:
        """A build whose window takes the back-dated items and this window's items."""
        return f"digest build --since {self.since}{self.out}"

    def publish_after(self) -> str:
        """A `publish_after` that makes an item due inside this window (and not embargoed: it is past)."""
        start = self.window.start
        return start.date().isoformat() if start.time() == time() else start.isoformat()

    def advice(self) -> str:
        """How to send them with this window's items."""
        again = f", which also takes again the {plural(self.resent, 'item')} sent since that day"
        return (
            f"give {'it' if len(self.late) == 1 else 'each'} `publish_after: {self.publish_after()}` "
            "(the date shown stays) and build again with --since-last-send, or build "
            f"`{self.command()}`{again if self.resent else ''}"
        )

    def warning(self) -> str:
        """The warning that names them (build, list, send, explain)."""
        n = len(self.late)
        them = "it" if n == 1 else "them"
        listed = ", ".join(f"{e.source} ({self.day(e)})" for e in self.late)
        return (
            f"{plural(n, 'item')} dated before this window {'was' if n == 1 else 'were'} never sent "
            f"(written after the last digest sent in full?): no digest sent in full held {them}, and "
            f"--since-last-send takes items from {self.window.start.date().isoformat()} on: {listed}. "
            f"To send {them} with this window's items, {self.advice()}"
        )


def find(entries: Iterable[Entry], window: Window, *, out: str = "") -> Backdated | None:
    """The back-dated items among `entries` (items that are not drafts, due from the last sent window's
    start to this window's end); None when there are none or the window is not one of --since-last-send."""
    look_back = window.last_sent_start
    if look_back is None:
        return None
    late, resent = [], []
    for entry in entries:
        if look_back <= entry.due < window.start and entry.slug not in window.sent:
            late.append(entry)
        elif entry.slug in window.sent and entry.due < window.end:
            resent.append(entry)
    if not late:
        return None
    late.sort(key=lambda e: (e.due, e.source))
    tz = window.start.tzinfo
    first = datetime.combine(late[0].due.astimezone(tz).date(), time(), tz)
    return Backdated(window, tuple(late), sum(1 for e in resent if e.due >= first), out)


def from_index(config: Config, window: Window) -> Backdated | None:
    """The back-dated items of a --since-last-send window, as the items index knows them: run it after a
    scan (a build, a list, a send's check of its folder), which brings the index up to date."""
    look_back = window.last_sent_start
    if look_back is None:
        return None
    from digest.index import Index
    from digest.scan import INDEX_NAME

    path = config.paths.cache / INDEX_NAME
    # No scan with an index yet: nothing to read, and none is made for this. (An index of an older parser
    # version is emptied by opening it, as a scan would: it is a cache, and then it names nothing.)
    if not path.is_file():
        return None
    index = Index(path, items_dir=config.paths.items, tz=config.tz.key)
    try:
        # From the look-back's midnight: the items sent that `--since <day>` takes again are counted too.
        since = datetime.combine(look_back.date(), time(), look_back.tzinfo)
        rows = index.due_in(since.timestamp(), window.end.timestamp())
    finally:
        index.close()
    entries = (
        Entry(
            rel_path(config.paths.items / key, config.paths.root),
            datetime.fromtimestamp(ts, config.tz),
            slug,
        )
        for key, ts, slug in rows
    )
    return find(entries, window, out=out_option(config.paths.out, config.paths.root))


def warn(config: Config, window: Window, say: Callable[[str], None]) -> None:
    """Say the warning naming a --since-last-send window's back-dated items, if it has any (from_index)."""
    found = from_index(config, window)
    if found is not None:
        say(found.warning())


@contextmanager
def said_when_empty(config: Config, window: Window, say: Callable[[str], None]) -> Iterator[None]:
    """Say the warning (warn) when what runs inside finds the window empty: a back-dated item may be all
    that was written since the last send, and "nothing to do" must not hide it."""
    try:
        yield
    except EmptyWindow:
        warn(config, window, say)
        raise
