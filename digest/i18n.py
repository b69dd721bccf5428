"""The digest's words in its language: gettext catalogs (the workspace's in front of the packaged ones).

The packaged catalogs are compiled (digest/locale/<lang>/LC_MESSAGES/digest.mo, made with Babel's commands).
A workspace's own are the .po files its team edits (locale/<lang>/LC_MESSAGES/digest.po), read by
digest/po.py as they are: no compile step.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel.support import NullTranslations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "digest"

# ---- catalogs ----


@functools.cache
def packaged(lang: str) -> NullTranslations:
    """The packaged catalog of a language (digest/locale/<lang>/LC_MESSAGES/digest.mo): English, French
    and Spanish ship; any other language shows the templates' English strings."""
    from babel.support import (
        NullTranslations,
        Translations,
    )  # the catalogs' modules: only a render needs them

    found = Translations.load(str(LOCALE_DIR), locales=[lang], domain=DOMAIN)
    return found if isinstance(found, Translations) else NullTranslations()


def catalog_path(folder: Path, tag: str) -> Path:
    """Where a workspace keeps a language's catalog: <folder>/<tag>/LC_MESSAGES/digest.po."""
    return folder / tag / "LC_MESSAGES" / f"{DOMAIN}.po"


def translations(lang: str, folder: Path | None = None) -> NullTranslations:
    """The words of a language: the workspace's catalogs in `folder` (the regional one first: fr_CA, then
    fr), each string they leave out looked up behind them, in the packaged catalog."""
    words = packaged(lang)
    if folder is None:
        return words
    from digest.po import Catalog, read_catalog

    parts = lang.split("_")
    for tag in ("_".join(parts[:n]) for n in range(1, len(parts) + 1)):  # fr, then fr_CA in front of it
        path = catalog_path(folder, tag)
        try:
            stat = path.stat()
        except OSError:
            continue
        words = Catalog(read_catalog(path, stat, tag), fallback=words)
    return words
