"""`digest new`: an item file dated today, written through the same field checks the scan reads it with
(digest/items.py), so that the new file is a valid item."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import yaml

from digest.config import Config
from digest.errors import ItemError
from digest.fsutil import shown
from digest.items import check_url, clean_text
from digest.words import slugify


def new_item(
    config: Config, *, title: str, category: str, summary: str, url: str | None, today: date
) -> Path:
    """Create an item file dated today in the items folder, ready to edit; its path."""
    bad: list[str] = []  # every bad value at once, in one entry: they are the problems of one file
    title = _new_field(title, "the title", bad, multiline=False)
    category = _new_field(category, "--category", bad, multiline=False)
    summary = _new_field(summary, "--summary", bad, multiline=True) if summary.strip() else ""
    if url:
        try:
            check_url(url, what="--url")
        except ValueError as err:
            bad.append(str(err))
    if bad:
        raise ItemError(["\n".join(bad)])
    path = config.paths.items / f"{today.isoformat()}-{slugify(title, max_len=60)}.md"
    fields: dict[str, Any] = {"title": title, "date": today, "category": category}
    if url:
        fields["url"] = url
    fields["summary"] = summary
    text = "---\n" + yaml.safe_dump(fields, allow_unicode=True, sort_keys=False, width=100) + "---\n"
    try:
        config.paths.items.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # FileExistsError too: a file where the folder should be
        raise ItemError(
            [f"{shown(config.paths.items)}: cannot create the items folder: {err.strerror}"]
        ) from err
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise ItemError([f"{shown(path)} already exists"]) from None
    except OSError as err:
        raise ItemError([f"{shown(path)}: cannot write: {err.strerror}"]) from err
    return path


def _new_field(value: str, what: str, bad: list[str], *, multiline: bool) -> str:
    """A value for `digest new`, checked as the scan will check it (what is wrong goes into bad), so that
    the new file is a valid item."""
    one = value.strip()
    if not multiline and (not one or "\n" in one or "\r" in one):
        bad.append(f"{what} must be one non-empty line")
        return one
    try:
        return clean_text(value, multiline=multiline)
    except ValueError as err:
        bad.append(f"{what} {err}")
        return one
