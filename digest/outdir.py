"""out/<slug>/, the built folder: its one owner.

A build writes the folder; check, send, the screenshots, the archive page and the journal read it. This
module is the file format between them: the frozen `Manifest` (write/load), the parts a send personalises,
the list of files a build writes, the atomic swap, the folder lock and the recovery of a folder a killed
build left aside. Nobody else parses manifest.json or moves the folder.

Lock: out/.<slug>.lock, beside the folder (which a build replaces). A build holds it exclusively from its
check to its swap; each send holds it shared for its whole run. So a send never opens its journal while a
build swaps, and a build never swaps while a send runs. Reading (check, --status, the archive page) takes
no lock: every file is replaced atomically, so a reader sees one build or the other.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dtime
from pathlib import Path
from typing import Any

from digest.errors import NotBuilt, OutputError
from digest.fsutil import atomic_write, shown

MANIFEST = "manifest.json"
PARTS = "digest.parts.json"
JOURNAL = "journal.sqlite"  # the send journal (digest/journal.py): kept across rebuilds, never published
FORMAT = 2  # manifest.json's format; a folder of another format is rebuilt, never misread

WIDTHS = (375, 640)
SCHEMES = ("light", "dark")


def shot_name(width: int, scheme: str) -> str:
    """The file name of one screenshot: shot-375-light.png."""
    return f"shot-{width}-{scheme}.png"


SHOT_FILES = tuple(shot_name(w, s) for w in WIDTHS for s in SCHEMES)
# Files a build writes; anything else in out/<slug>/ (the journal, a logo the team put there) is carried
# over on a rebuild. The screenshots count as build files: a rebuild drops them, so none shows an older build.
BUILD_FILES = (
    "digest.html",
    "index.html",
    "digest.txt",
    "digest.eml",
    "digest.mjml",
    PARTS,
    MANIFEST,
    *SHOT_FILES,
)


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

    def end(self, tz: tzinfo) -> datetime:
        """The instant just after the item: a date-only item counts as the whole of that day."""
        if "T" in self.date:
            return datetime.fromisoformat(self.date) + timedelta(microseconds=1)
        day = date.fromisoformat(self.date) + timedelta(days=1)
        return datetime.combine(day, dtime(), tzinfo=tz)


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
                subject=str(data["subject"]),
                preheader=str(data["preheader"]),
                web_url=str(data["web_url"]),
                preview_values={str(k): str(v) for k, v in data["preview_values"].items()},
                content_hash=str(data["content_hash"]),
                sections=tuple(SectionRecord(**s) for s in data["sections"]),
                items=tuple(ItemRecord(**i) for i in data["items"]),
                files={str(k): dict(v) for k, v in data["files"].items()},
                warnings=tuple(str(w) for w in data["warnings"]),
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
                f"{shown(self.folder / name)}: cannot read this file of the build ({err}); "
                "build again with `digest build`"
            ) from err

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
    kept = [e for e in folder.iterdir() if e.name not in BUILD_FILES and not e.name.startswith(".")]
    # The journal's database last: once it is in a folder, its WAL is too (a concurrent reader checks for it).
    return sorted(kept, key=lambda p: p.name == JOURNAL)


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
    unknown = set(files) - set(BUILD_FILES)
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
