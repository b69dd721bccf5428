"""out/*/manifest.json -> out/index.html: the archive of every built digest, newest first.

Each entry links the web version (<slug>/index.html, the page the email's "view in browser" link opens
under the configured base URL), the text version, the .eml and the screenshots, with the 375 px light
screenshot as a thumbnail. Links are relative, so the folder can be published anywhere or opened from disk.
Every text from a manifest is escaped (a subject can hold `<`), every folder name in a link URL-quoted.
"""

from __future__ import annotations

import fcntl
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2
from babel import Locale, UnknownLocaleError

from digest import outdir
from digest.errors import DigestError, OutputError
from digest.fsutil import atomic_write, bytecode_cache
from digest.outdir import SHOT_FILES, shot_name

INDEX_NAME = "index.html"
TEMPLATE = "site.html.j2"  # the archive page's template, beside this module


@dataclass(frozen=True)
class Language:
    """The digest of one window in a further language, as the archive links it."""

    code: str
    name: str  # in its own language: "français"
    folder: str  # "fr", inside the window's folder
    subject: str
    item_count: int


def _language(code: str, folder: Path) -> Language | None:
    try:
        m = outdir.load(folder).manifest
    except DigestError:
        return None
    try:
        name = Locale.parse(code).get_display_name(code) or code
    except (ValueError, UnknownLocaleError):
        name = code
    return Language(code, name, folder.name, m.subject, m.item_count)


@dataclass(frozen=True)
class Entry:
    """One built digest, as the archive shows it."""

    slug: str
    label: str
    start: str
    end: str
    item_count: int
    subject: str
    built_at: str
    files: tuple[str, ...]  # the files present in the folder, among those the archive links
    shots: tuple[str, ...]  # the screenshots present
    lang: str = ""  # the digest's language ("" in an older build)
    languages: tuple[Language, ...] = ()  # the same digest in further languages, in out/<slug>/<lang>/

    @property
    def thumbnail(self) -> str | None:
        """The screenshot shown as the thumbnail, if there is one."""
        first = shot_name(375, "light")
        return first if first in self.shots else (self.shots[0] if self.shots else None)


@dataclass(frozen=True)
class Site:
    """The archive page written, what it lists and what it skipped (with why)."""

    path: Path
    entries: tuple[Entry, ...]
    skipped: tuple[str, ...]


LINKED = ("index.html", "digest.html", "digest.txt", "digest.eml", "manifest.json")


def entries(out_dir: Path) -> tuple[list[Entry], list[str]]:
    """Every built folder of out_dir, newest window first; and the folders skipped (with why)."""
    found: list[Entry] = []
    skipped: list[str] = []
    for folder in outdir.built_folders(out_dir):
        try:
            m = outdir.load(folder).manifest
        except DigestError as err:
            skipped.append(str(err))
            continue
        found.append(
            Entry(
                slug=folder.name,
                label=m.label,
                start=m.start.isoformat(),
                end=m.end.isoformat(),
                item_count=m.item_count,
                subject=m.subject,
                built_at=m.built_at,
                files=tuple(name for name in LINKED if (folder / name).is_file()),
                shots=tuple(name for name in SHOT_FILES if (folder / name).is_file()),
                lang=m.lang,
                languages=tuple(
                    other
                    for code in m.languages
                    if (other := _language(code, folder / outdir.lang_folder(code))) is not None
                ),
            )
        )
    found.sort(key=lambda e: (datetime.fromisoformat(e.start), e.slug), reverse=True)
    return found, skipped


def write_index(out_dir: Path, *, title: str, cache_dir: Path | None = None) -> Site:
    """Write out_dir/index.html listing every built digest; atomic, like the builds. With a cache_dir, the
    template's compiled form is kept there."""
    path = out_dir / INDEX_NAME
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with _writing(out_dir):
            # Listed under the lock: a build that finished meanwhile is in this page or in the next one.
            listed, skipped = entries(out_dir)
            html = _template(cache_dir).render(title=title, entries=listed, shot_label=_shot_label)
            for stale in out_dir.glob(f".{INDEX_NAME}.*.tmp"):  # left by a write that was killed
                stale.unlink(missing_ok=True)
            atomic_write(path, html.encode())
    except OSError as err:
        raise OutputError(f"{path}: cannot write the archive page: {err.strerror}") from err
    return Site(path=path, entries=tuple(listed), skipped=tuple(skipped))


@contextmanager
def _writing(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on out_dir itself while the page is written: a temporary file seen then is
    of a writer that died (the kernel drops a dead process's lock), never of one still writing.
    The lock is on the folder, so no lock file is left in it."""
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _shot_label(name: str) -> str:
    """shot-375-dark.png -> 375 px, dark."""
    _, width, scheme = name.removesuffix(".png").split("-")
    return f"{width} px, {scheme}"


@functools.cache
def _template(cache_dir: Path | None) -> jinja2.Template:
    """The archive page's template (site.html.j2, beside this module), its compiled form kept in the cache
    folder when there is one: compiling it costs more than the rest of writing the page."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=bytecode_cache(cache_dir) if cache_dir is not None else None,
    )
    return env.get_template(TEMPLATE)
