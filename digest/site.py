"""out/*/manifest.json -> out/index.html: the archive of every built digest, newest first.

Each entry links the web version (<slug>/index.html, the page the email's "view in browser" link opens
under the configured base URL), the text version, the .eml and the screenshots, with the 375 px light
screenshot as a thumbnail. Links are relative, so the folder can be published anywhere or opened from disk.
Every text from a manifest is escaped (a subject can hold `<`), every folder name in a link URL-quoted.
"""

from __future__ import annotations

import fcntl
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
from digest.fsutil import atomic_write
from digest.outdir import SHOT_FILES, shot_name

INDEX_NAME = "index.html"


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


def write_index(out_dir: Path, *, title: str) -> Site:
    """Write out_dir/index.html listing every built digest; atomic, like the builds."""
    path = out_dir / INDEX_NAME
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with _writing(out_dir):
            # Listed under the lock: a build that finished meanwhile is in this page or in the next one.
            listed, skipped = entries(out_dir)
            html = _TEMPLATE.render(title=title, entries=listed, shot_label=_shot_label)
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


_ENV = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
)
_TEMPLATE = _ENV.from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{{ title }}: archive</title>
<style>
  body { font: 16px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0 auto;
         max-width: 960px; padding: 24px 16px; color: #1f2933; background: #f5f7fa; }
  h1 { font-size: 26px; margin: 0 0 16px; }
  ol { list-style: none; padding: 0; margin: 0; }
  li.digest { display: flex; gap: 16px; align-items: flex-start; background: #fff; border-radius: 8px;
              padding: 16px; margin: 0 0 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  li.digest img { width: 120px; height: 160px; object-fit: cover; object-position: top;
                  border: 1px solid #d9e2ec; border-radius: 4px; }
  h2 { font-size: 20px; margin: 0 0 2px; }
  .meta { color: #52606d; font-size: 14px; margin: 0 0 8px; }
  .links a { margin-right: 12px; white-space: nowrap; }
  a { color: #0b5cad; }
  @media (prefers-color-scheme: dark) {
    body { background: #0f1215; color: #e4e7eb; }
    li.digest { background: #1b2026; }
    .meta { color: #aab4be; }
    a { color: #8cc4ff; }
  }
  @media (max-width: 480px) { li.digest { flex-direction: column; } }
</style>
</head>
<body>
<h1>{{ title }}</h1>
{% if not entries %}
<p>Nothing built yet: run <code>digest build</code>.</p>
{% endif %}
<ol>
{% for e in entries %}
  {% set at = e.slug|urlencode %}
  <li class="digest" id="{{ e.slug }}">
    {% if e.thumbnail %}
    <a href="{{ at }}/{{ e.thumbnail }}"><img src="{{ at }}/{{ e.thumbnail }}"
      alt="Screenshot of {{ e.label }}" loading="lazy"></a>
    {% endif %}
    <div>
      {% if "index.html" in e.files %}
      <h2><a href="{{ at }}/index.html">{{ e.label }}</a></h2>
      {% else %}
      <h2>{{ e.label }}</h2>
      {% endif %}
      <p class="meta">{{ e.item_count }} {{ "item" if e.item_count == 1 else "items" }} · {{ e.subject }}</p>
      <p class="links">
        {% if "index.html" in e.files %}<a href="{{ at }}/index.html">Web version</a>{% endif %}
        {% if "digest.html" in e.files %}<a href="{{ at }}/digest.html">Email (HTML)</a>{% endif %}
        {% if "digest.txt" in e.files %}<a href="{{ at }}/digest.txt">Text version</a>{% endif %}
        {% if "digest.eml" in e.files %}<a href="{{ at }}/digest.eml">Message (.eml)</a>{% endif %}
        {% if "manifest.json" in e.files %}<a href="{{ at }}/manifest.json">Manifest</a>{% endif %}
      </p>
      {% if e.languages %}
      <p class="links">Also in:
        {% for lang in e.languages %}
        <a href="{{ at }}/{{ lang.folder|urlencode }}/index.html" hreflang="{{ lang.code|replace("_", "-") }}"
          title="{{ lang.subject }}">{{ lang.name }}</a> ({{ lang.item_count }})
        {% endfor %}
      </p>
      {% endif %}
      {% if e.shots %}
      <p class="links">Screenshots:
        {% for name in e.shots %}
        <a href="{{ at }}/{{ name }}">{{ shot_label(name) }}</a>
        {% endfor %}
      </p>
      {% endif %}
    </div>
  </li>
{% endfor %}
</ol>
</body>
</html>
"""
)
