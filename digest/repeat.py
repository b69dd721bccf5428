"""Items that already went out: a digest about to be sent whose items a digest sent in full from another
folder held (a `--last 30d` sent again the next day, overlapping `--since`/`--until` windows).

The journal of a folder keeps anyone from getting that folder twice; a window with another name has another
folder and another journal, so only the items say it is the same digest again. Every item sent before to a
list of the same file name: a real send is refused unless asked for (`--resend-items`), as a daily
`send --last 30d --yes` would otherwise mail the same digest every day with nothing new. Some of them, or all
of them to another list (the staff's, the members'): a warning naming the lists. `--since-last-send` chooses
a window without the items sent, and is not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from digest.errors import SendError
from digest.fsutil import shown
from digest.sent import SentDigest, sent_in_full
from digest.words import plural

SHOWN = 3  # digests named in a message; the rest are counted
INSTEAD = "`digest send --since-last-send` sends only what is new"


@dataclass(frozen=True)
class Repeat:
    """The items of a digest that digests sent in full from other folders held, and those digests."""

    folder: Path  # the digest about to be sent
    repeated: int  # how many of its items went out before
    total: int  # how many items it has
    sent: tuple[SentDigest, ...]  # the digests that held them, newest first
    to_this_list: bool  # every item went out before to a list of this file name

    @property
    def everything(self) -> bool:
        """Whether every item of the digest went out before (to any list)."""
        return self.repeated == self.total

    def where(self, tz: tzinfo) -> str:
        """The digests that held them and when they were sent, as a message names them."""
        named = [
            f"{shown(d.folder)}/ (sent in full {d.completed_at.astimezone(tz):%Y-%m-%d %H:%M %Z}"
            f"{' to ' + d.subscribers if d.subscribers else ''})"
            for d in self.sent[:SHOWN]
        ]
        more = len(self.sent) - SHOWN
        return ", ".join(named) + (f" and {plural(more, 'more digest')}" if more > 0 else "")

    def what(self, tz: tzinfo) -> str:
        """Which of the digest's items went out, and where."""
        if self.everything:
            how_many = "the only item" if self.total == 1 else f"all {self.total} items"
        else:
            how_many = f"{self.repeated} of the {self.total} items"
        return f"{how_many} of {shown(self.folder)}/ already went out in {self.where(tz)}"


def repeated(out_dir: Path, folder: Path, items: frozenset[str], subscribers: Path) -> Repeat | None:
    """What of `items` (the digest in `folder`) the digests sent in full from other folders held; None when
    nothing, or when this folder was itself sent in full (its journal already keeps anyone from getting it
    twice)."""
    sent = sent_in_full(out_dir)
    here = folder.resolve()
    if any(d.folder.resolve() == here for d in sent):
        return None
    held = [d for d in sent if d.items and d.items & items]
    if not held:
        return None
    went = items & frozenset().union(*(d.items or () for d in held))
    alike = [d for d in held if d.subscribers in ("", subscribers.name)]  # "": an older journal, unknown
    to_this_list = items <= frozenset().union(*(d.items or () for d in alike))
    held.sort(key=lambda d: d.completed_at, reverse=True)
    return Repeat(folder, len(went), len(items), tuple(held), to_this_list)


def check(
    out_dir: Path,
    folder: Path,
    items: frozenset[str],
    tz: tzinfo,
    *,
    subscribers: Path,
    resend: bool,
    dry_run: bool,
    say: Callable[[str], None] | None = None,
) -> None:
    """Before a send or its dry run: warn of items that went out before in another digest sent in full;
    refuse a real send of nothing but items sent before to a list of this name unless `resend` (SendError:
    nothing is sent)."""
    found = repeated(out_dir, folder, items, subscribers)
    if found is None:
        return
    if found.everything and found.to_this_list and not resend:
        if not dry_run:
            raise SendError(
                f"{found.what(tz)}: sending it would mail your list the same items again. {INSTEAD}; "
                "to send these items again anyway, add --resend-items"
            )
        warning = f"{found.what(tz)}: a real send is refused without --resend-items; {INSTEAD}"
    elif found.everything and found.to_this_list:
        warning = f"{found.what(tz)}: sent again, as --resend-items asks"
    else:
        warning = f"{found.what(tz)}: whoever got them there would get them again; {INSTEAD}"
    if say is not None:
        say(f"Warning: {warning}")
