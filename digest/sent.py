"""The digests sent to a whole list, and what they held: where `--since-last-send` starts.

Read from each send's journal (digest/journal.py): when a send found everyone done, it recorded the
items of the version it sent, the newest item's end and that version's hash. A journal written before
the items were recorded is read with the folder's manifests (digest/outdir), when the folder still
holds the version that went out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from digest import outdir
from digest.errors import DigestError, JournalError
from digest.journal import journals, read_counts
from digest.window import Sent


def last_sent_in_full(out_dir: Path, tz: tzinfo) -> tuple[Path, Sent] | None:
    """The folder of the newest digest sent to a whole list, and what every digest sent in full held.

    A journal records, when a send finds everyone on its list done, the items of the version it sent
    (`sent_items`), the newest one's end (`newest_item_end`) and its hash: the largest end is the newest
    digest. An older journal has no `sent_items`: its items are read from the folder's manifests when it
    still holds the version sent; a folder rebuilt with other items since does not say what went out, and
    only its newest item's end counts (`Sent.unknown_end`).
    """
    sent = sent_in_full(out_dir)
    if not sent:
        return None
    newest = max(sent, key=lambda d: d.newest_end)
    unknown = [d.newest_end for d in sent if d.items is None]
    return newest.folder, Sent(
        newest_end=newest.newest_end.astimezone(tz),
        items=frozenset().union(*(d.items or () for d in sent)),
        unknown_end=max(unknown).astimezone(tz) if unknown else None,
        folders=frozenset(d.folder.name for d in sent),
        # Not when its items are unknown: every one of them would look never sent.
        window_start=_window_start(newest.folder, tz) if newest.items is not None else None,
    )


@dataclass(frozen=True)
class SentDigest:
    """One digest sent to a whole list: its folder, when, and what it held (None: not known any more)."""

    folder: Path
    completed_at: datetime  # when a send first found everyone on its list done (aware)
    newest_end: datetime  # just after its newest item
    items: frozenset[str] | None
    subscribers: str = ""  # the file name of the list its last run went to ("" in an older journal)


def sent_in_full(out_dir: Path) -> list[SentDigest]:
    """Every digest under out/ sent to a whole list, read from the journals (see last_sent_in_full)."""
    found: list[SentDigest] = []
    for path in journals(out_dir):
        try:
            meta = read_counts(path)[1]
            end = datetime.fromisoformat(meta["newest_item_end"])  # none: no items, or an older journal
            completed = datetime.fromisoformat(meta.get("completed_at") or "")
        except (JournalError, KeyError, ValueError):
            continue
        if end.tzinfo is not None:
            held = _recorded(meta.get("sent_items"))
            if held is None:
                held = _items_sent(path.parent, meta.get("sent_content_hash"))
            items = frozenset(held) if held is not None else None
            listed = Path(meta.get("subscribers") or "").name
            found.append(SentDigest(path.parent, completed, end, items, listed))
    return found


def _window_start(folder: Path, tz: tzinfo) -> datetime | None:
    """Where the window of the digest in `folder` started, as its manifest says; None when unreadable."""
    try:
        return outdir.load(folder).manifest.start.astimezone(tz)
    except DigestError:
        return None


def _recorded(value: str | None) -> set[str] | None:
    """The slugs a journal recorded as sent; None when it recorded none (or not readably)."""
    try:
        slugs = json.loads(value) if value is not None else None
    except ValueError:
        return None
    return {str(s) for s in slugs} if isinstance(slugs, list) else None


def _items_sent(folder: Path, sent_hash: str | None) -> set[str] | None:
    """The slugs of every item (email and web version, every language) of the version sent, or None when
    the folder no longer holds that version."""
    try:
        built = outdir.load(folder)
        if built.digest_hash() != sent_hash:
            return None
        return set(built.item_slugs())
    except DigestError:
        return None
