"""The names of the files in out/<slug>/: what a build writes, and what it carries over."""

from __future__ import annotations

from digest.words import lang_tag

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


def lang_folder(code: str) -> str:
    """The folder (and URL path) of a further language's digest inside out/<slug>/: "fr", "pt-br"."""
    return lang_tag(code).lower()


GMAIL_CLIP_BYTES = 102 * 1024  # Gmail shows "[Message clipped]" past this much HTML
