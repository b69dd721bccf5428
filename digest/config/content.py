"""Which settings a built digest was made with: those that shape out/<slug>/ or the messages made of it.

A build records them in its manifest; a send compares them with the current ones, so a message is never made
of a folder built with one title and headers made from another. Every key of SCHEMA is either here or in
NOT_CONTENT (tests/test_stale_settings.py holds a new setting to that choice).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.config.schema import SCHEMA
from digest.fsutil import rel_path

if TYPE_CHECKING:
    from digest.config import Config

# What the build writes into the folder (subject, texts, links, dates, sections, fit, templates, catalogs),
# and what the send makes the headers and the greeting of, besides the built parts (From, Reply-To,
# List-Id, the greeting and its translation).
CONTENT = (
    "title",
    "intro",
    "language",
    "timezone",
    "base_url",
    "subject",
    "preheader",
    "email.from",
    "email.reply_to",
    "email.fit",
    "email.fit_budget",
    "categories.order",
    "categories.limit",
    "paths.templates",
    "paths.locale",
    "send.list_id",
    "send.greeting",
    "send.greeting_fallback",
    "languages",  # one entry per [languages.xx] table
)
# Not compared: the items (the send compares them one by one), where things are kept, how and where the
# send connects and how fast, DKIM (the send signs; the build's preview never is), the unsubscribe link
# (the preview has a stand-in until sending is set up, and the link is made whole per recipient), what
# check, bounces and import read. Secrets are never read from a file nor recorded.
NOT_CONTENT = frozenset(
    {
        "paths.items",
        "paths.out",
        "paths.cache",
        "paths.suppressions",
        *(k for k in SCHEMA if k.split(".")[0] in ("smtp", "bounces", "dkim", "check", "import")),
        "send.unsubscribe_url",
        "send.unsubscribe_mailto",
        "send.rate",
        "send.connections",
        "send.window",
    }
)


def content_settings(config: Config) -> dict[str, Any]:
    """The settings the digest is built with, by TOML key, as the manifest keeps them (JSON values)."""
    found: dict[str, Any] = {}
    for key in CONTENT:
        if key == "languages":
            for table in config.languages:
                found[f"languages.{table.code}"] = {k: v for k, v in asdict(table).items() if k != "code"}
            continue
        group, name = SCHEMA[key][0], SCHEMA[key][1]
        value = getattr(getattr(config, group) if group else config, name)
        # Relative to the workspace, so a workspace moved or cloned elsewhere is built with the same settings.
        found[key] = rel_path(value, config.paths.root) if isinstance(value, Path) else value
    loaded: dict[str, Any] = json.loads(json.dumps(found))  # tuples as lists, as read back from the manifest
    return loaded


def changed_settings(then: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The settings whose values differ, named as digest.toml names them: title, [email] from,
    [languages.fr] (a table added, removed or changed)."""
    order = {k: n for n, k in enumerate(CONTENT)}
    keys = sorted(
        then.keys() | now.keys(), key=lambda k: (order.get(k.partition(".")[0], order.get(k, 99)), k)
    )
    return [setting_name(k) for k in keys if then.get(k) != now.get(k)]


def setting_name(key: str) -> str:
    """A setting's name as digest.toml shows it: `title`, `[email] from`, `[languages.fr]`."""
    if key.startswith("languages."):
        return f"[{key}]"
    table, _, name = key.rpartition(".")
    return f"[{table}] {name}" if table else name
