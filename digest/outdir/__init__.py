"""out/<slug>/, the built folder: its one owner.

A build writes the folder; check, send, the screenshots, the archive page and the journal read it. This
module is the file format between them: the frozen `Manifest` (write/load), the parts a send personalises,
the list of files a build writes, the atomic swap, the folder lock and the recovery of a folder a killed
build left aside. Nobody else parses manifest.json or moves the folder.

This package's __init__ is the format (what the files hold); `folder.py` is the writing (lock, swap,
recovery); `files.py` names the files.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dtime
from pathlib import Path
from typing import Any

from digest.errors import NotBuilt, OutputError
from digest.fsutil import shown
from digest.outdir.files import (
    BUILD_FILES,
    FORMAT,
    JOURNAL,
    MANIFEST,
    PARTS,
    SCHEMES,
    SHOT_FILES,
    WIDTHS,
    lang_folder,
    shot_name,
)
from digest.outdir.folder import FolderBusy, holding, lock, lock_path, recover, sending_now, write

__all__ = [
    "BUILD_FILES",
    "JOURNAL",
    "MANIFEST",
    "PARTS",
    "SCHEMES",
    "SHOT_FILES",
    "WIDTHS",
    "Built",
    "FolderBusy",
    "ItemRecord",
    "Manifest",
    "MovedRecord",
    "Parts",
    "SectionRecord",
    "built_folders",
    "folder_of",
    "hash_files",
    "holding",
    "is_built",
    "lang_folder",
    "load",
    "lock",
    "lock_path",
    "recover",
    "sending_now",
    "shot_name",
    "write",
]


@dataclass(frozen=True, kw_only=True)
class ItemRecord:
    """One item as it was built, so that check and send never read items/ to learn what went out."""

    slug: str
    title: str
    date: str  # YYYY-MM-DD for a whole day, else an ISO date-time with offset
    category: str
    url: str | None
    source: str  # the item file, relative to the workspace
    summary: str
    body: str = ""
    image: str | None = None
    image_alt: str | None = None
    lang: str = ""  # the item's `lang`, as the file gives it ("": the workspace's language)

    def end(self, tz: tzinfo) -> datetime:
        """The instant just after the item: a date-only item counts as the whole of that day."""
        if "T" in self.date:
            return datetime.fromisoformat(self.date) + timedelta(microseconds=1)
        day = date.fromisoformat(self.date) + timedelta(days=1)
        return datetime.combine(day, dtime(), tzinfo=tz)


@dataclass(frozen=True, kw_only=True)
class MovedRecord(ItemRecord):
    """An item of the window that the web version shows and the email does not, and what moved it:
    "limit" ([categories] limit) or "fit" ([email] fit, to stay under the size budget)."""

    by: str

    def as_item(self) -> ItemRecord:
        """The item as an ItemRecord (what a build of it records), without the reason."""
        return ItemRecord(**{k: v for k, v in asdict(self).items() if k != "by"})


@dataclass(frozen=True, kw_only=True)
class SectionRecord:
    """One category as it was built: how many items the email shows, how many it moved online."""

    name: str
    anchor: str
    shown: int
    more: int


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """manifest.json: what a build made, and all that the stages after it read."""

    generator: str
    built_at: str
    slug: str
    label: str
    start: datetime
    end: datetime
    subject: str
    preheader: str
    web_url: str
    preview_values: Mapping[str, str]  # what digest.html shows where each recipient's own values go
    content_hash: str
    sections: tuple[SectionRecord, ...]
    items: tuple[ItemRecord, ...]
    files: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name -> bytes, sha256
    warnings: tuple[str, ...] = ()
    lang: str = ""  # the language of this digest ("": an older build, in the workspace's language)
    # In the digest's own folder: the further languages built beside it, each in out/<slug>/<lang>/.
    languages: tuple[str, ...] = ()
    moved: tuple[MovedRecord, ...] = ()  # in the window, in the web version only (older manifests: none)
    # --since-last-send: the slugs of the window's items left out as a digest sent in full held them.
    already_sent: tuple[str, ...] = ()
    # The settings it was built with (digest.config.content); None: an older build, not compared.
    settings: Mapping[str, Any] | None = None

    @property
    def built_items(self) -> tuple[ItemRecord, ...]:
        """Every item of the build, in the email or moved to the web version only."""
        return (*self.items, *(m.as_item() for m in self.moved))

    @property
    def item_count(self) -> int:
        """How many items the digest holds."""
        return len(self.items)

    def newest_end(self, tz: tzinfo) -> datetime | None:
        """The instant just after the newest item: where the next digest starts; None without items."""
        return max((i.end(tz) for i in self.items), default=None)

    def to_json(self) -> bytes:
        """The manifest.json text."""
        data: dict[str, Any] = {
            "format": FORMAT,
            "generator": self.generator,
            "built_at": self.built_at,
            "window": {
                "slug": self.slug,
                "label": self.label,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                # only after a send (--since-last-send): an ordinary build's manifest is as before
                **({"already_sent": list(self.already_sent)} if self.already_sent else {}),
            },
            "subject": self.subject,
            "preheader": self.preheader,
            "web_url": self.web_url,
            "preview_values": dict(self.preview_values),
            "content_hash": self.content_hash,
            "item_count": self.item_count,
            "sections": [asdict(s) for s in self.sections],
            "items": [asdict(i) for i in self.items],
            "files": {k: dict(v) for k, v in self.files.items()},
            "warnings": list(self.warnings),
            "lang": self.lang,
            "languages": list(self.languages),
            "moved": [asdict(m) for m in self.moved],
            **({"settings": dict(self.settings)} if self.settings is not None else {}),
        }
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Manifest:
        """Parse manifest.json; ValueError saying what is wrong."""
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, this digest reads format {FORMAT}")
            window = data["window"]
            return cls(
                generator=str(data["generator"]),
                built_at=str(data["built_at"]),
                slug=str(window["slug"]),
                label=str(window["label"]),
                start=datetime.fromisoformat(window["start"]),
                end=datetime.fromisoformat(window["end"]),
                already_sent=tuple(str(s) for s in window.get("already_sent", ())),
                subject=str(data["subject"]),
                preheader=str(data["preheader"]),
                web_url=str(data["web_url"]),
                preview_values={str(k): str(v) for k, v in data["preview_values"].items()},
                content_hash=str(data["content_hash"]),
                sections=tuple(SectionRecord(**s) for s in data["sections"]),
                items=tuple(ItemRecord(**i) for i in data["items"]),
                files={str(k): dict(v) for k, v in data["files"].items()},
                warnings=tuple(str(w) for w in data["warnings"]),
                lang=str(data.get("lang", "")),
                languages=tuple(str(x) for x in data.get("languages", ())),
                moved=tuple(MovedRecord(**m) for m in data.get("moved", ())),
                settings=dict(data["settings"].items()) if "settings" in data else None,
            )
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"missing or malformed field {err}") from err


@dataclass(frozen=True, kw_only=True)
class Parts:
    """digest.parts.json: the rendered digest before personalisation, which every sent message is made of.

    The placeholders are per build process (render.py), so the file names the ones its html and text hold.
    """

    subject: str
    html: str
    text: str
    content_hash: str
    placeholders: Mapping[str, str]  # "greeting", "unsubscribe_url" -> the token in html and text

    def to_json(self) -> bytes:
        """The digest.parts.json text."""
        return json.dumps(
            {
                "content_hash": self.content_hash,
                "subject": self.subject,
                "html": self.html,
                "text": self.text,
                "placeholders": dict(self.placeholders),
            },
            ensure_ascii=False,
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Parts:
        """Parse digest.parts.json; ValueError saying what is wrong."""
        try:
            data = json.loads(raw)
            return cls(
                subject=str(data["subject"]),
                html=str(data["html"]),
                text=str(data["text"]),
                content_hash=str(data["content_hash"]),
                placeholders={k: str(data["placeholders"][k]) for k in ("greeting", "unsubscribe_url")},
            )
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"missing or malformed field {err}") from err


@dataclass(frozen=True)
class Built:
    """A built folder, loaded: its manifest; the parts and files on demand."""

    folder: Path
    manifest: Manifest

    def path(self, name: str) -> Path:
        """One file of the build."""
        return self.folder / name

    def read_text(self, name: str) -> str:
        """One file of the build as text; OutputError when it is missing or unreadable."""
        try:
            return (self.folder / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise OutputError(
                f"{shown(self.folder / name)}: cannot read this file of the build "
                f"({getattr(err, 'strerror', None) or err}); "
                "build again with `digest build`"
            ) from err

    def languages(self) -> list[Built]:
        """The further languages' digests built beside this one (out/<slug>/<lang>/), in the manifest's
        order; OutputError when one is missing or damaged. Read once per Built (a send asks several times)."""
        return list(self._languages)

    @functools.cached_property
    def _languages(self) -> tuple[Built, ...]:
        found = []
        for code in self.manifest.languages:
            try:
                found.append(load(self.folder / lang_folder(code)))
            except NotBuilt:
                raise OutputError(
                    f"{shown(self.folder / lang_folder(code))}/: the {code} digest of this build is missing; "
                    "build again with `digest build`"
                ) from None
        return tuple(found)

    def digest_hash(self) -> str:
        """What every subscriber may get, as one hash: the content hash, or with further languages a hash
        of every language's (a rebuild that changed any of them changes it)."""
        if not self.manifest.languages:
            return self.manifest.content_hash
        hashes = [self.manifest.content_hash, *(b.manifest.content_hash for b in self.languages())]
        return hashlib.sha256("\0".join(hashes).encode()).hexdigest()

    def item_slugs(self) -> frozenset[str]:
        """Every item this digest holds: every language's, in the email or in the web version only."""
        return frozenset(i.slug for b in [self, *self.languages()] for i in b.manifest.built_items)

    def newest_end(self, tz: tzinfo) -> datetime | None:
        """The instant just after the newest item of any language: where the next digest starts."""
        ends = [m.newest_end(tz) for m in [self.manifest, *(b.manifest for b in self.languages())]]
        return max((e for e in ends if e is not None), default=None)

    def parts(self) -> Parts:
        """The un-personalised parts; OutputError when they are not of this manifest's build."""
        try:
            parts = Parts.from_json(self.read_text(PARTS))
        except ValueError as err:
            raise OutputError(
                f"{shown(self.folder / PARTS)}: damaged ({err}); build again with `digest build`"
            ) from err
        if parts.content_hash != self.manifest.content_hash:
            raise OutputError(
                f"{shown(self.folder)}/: {PARTS} and {MANIFEST} are of different builds; "
                "build again with `digest build`"
            )
        return parts


def out_option(out_dir: Path, root: Path) -> str:
    """The --out a command suggested to the user needs: none for the workspace's own out/."""
    return "" if out_dir == root / "out" else f" --out {shown(out_dir)}"


def folder_of(out_dir: Path, slug: str) -> Path:
    """The built folder of one window."""
    return out_dir / slug


def is_built(folder: Path) -> bool:
    """True when the folder holds a build (of any format)."""
    return (folder / MANIFEST).is_file()


def load(folder: Path) -> Built:
    """Load a built folder; NotBuilt when there is none, OutputError when damaged or of another format."""
    path = folder / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotBuilt(shown(folder)) from None
    except OSError as err:
        raise OutputError(f"{shown(path)}: cannot read: {err.strerror}") from err
    try:
        manifest = Manifest.from_json(raw)
    except ValueError as err:
        raise OutputError(f"{shown(path)}: not a manifest this digest can read ({err}); build again") from err
    return Built(folder, manifest)


def built_folders(out_dir: Path) -> Iterator[Path]:
    """Every folder under out_dir that holds a build, by name."""
    if out_dir.is_dir():
        for folder in sorted(out_dir.iterdir()):
            if not folder.name.startswith(".") and is_built(folder):
                yield folder


def hash_files(files: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    """The manifest's record of the files: size and SHA-256 of each."""
    return {name: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for name, d in files.items()}
