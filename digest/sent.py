"""The digests sent to a whole list, and what they held: where `--since-last-send` starts.

Read from each send's journal (digest/journal.py: when a send found everyone done, the newest item of the
version it sent and that version's hash) and from the folder's manifests (digest/outdir), when the folder
still holds the version that went out.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path

from digest import outdir
from digest.errors import DigestError, JournalError
from digest.journal import journals, read_counts
from digest.window import Sent


def last_sent_in_full(out_dir: Path, tz: tzinfo) -> tuple[Path, Sent] | None:
    """The folder of the newest digest sent to a whole list, and what every digest sent in full held.

    A journal records, when a send finds everyone on its list done, the newest item of the version it sent
    (`newest_item_end`) and its hash: the largest end is the newest digest. Their items are read from each
    folder's manifests when it still holds the version sent; a folder rebuilt with other items since does
    not say what went out, and only its newest item's end counts (`Sent.unknown_end`).
    """
    found: list[tuple[datetime, Path, set[str] | None]] = []
    for path in journals(out_dir):
        try:
            meta = read_counts(path)[1]
            end = datetime.fromisoformat(meta["newest_item_end"])  # none: no items, or an older journal
        except (JournalError, KeyError, ValueError):
            continue
        if meta.get("completed_at") and end.tzinfo is not None:
            found.append((end, path.parent, _items_sent(path.parent, meta.get("sent_content_hash"))))
    if not found:
        return None
    end, folder, _ = max(found, key=lambda f: f[0])
    unknown = [e for e, _, held in found if held is None]
    return folder, Sent(
        newest_end=end.astimezone(tz),
        items=frozenset(s for *_, held in found for s in held or ()),
        unknown_end=max(unknown).astimezone(tz) if unknown else None,
        folders=frozenset(f.name for _, f, _ in found),
    )


def _items_sent(folder: Path, sent_hash: str | None) -> set[str] | None:
    """The slugs of every item (email and web version, every language) of the version sent, or None when
    the folder no longer holds that version."""
    try:
        built = outdir.load(folder)
        if built.digest_hash() != sent_hash:
            return None
        return {i.slug for b in [built, *built.languages()] for i in b.manifest.built_items}
    except DigestError:
        return None
