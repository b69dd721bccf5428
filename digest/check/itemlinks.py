"""Links an item's author wrote that no reader can follow: a Markdown link in the body to a relative path or
another scheme than http(s) and mailto (the digest shows its words only), and Markdown in the summary, which
is plain text (readers see the brackets and the address as typed)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from digest.check.built import BuiltDigest, short
from digest.check.html import Doc
from digest.check.report import Finding
from digest.markdown import parse, safe_link
from digest.outdir import ItemRecord

# [words](address), as Markdown writes a link, to something that reads as an address ("[in EUR](see below)"
# is no link; "<https://...>" is how plain text writes an address, and reads well as it is).
_MARKDOWN_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?((?:https?://|mailto:|www\.|/)[^)\s>]*)>?[^)]*\)", re.I)


def unfollowable(body: str) -> list[str]:
    """The addresses of a Markdown body's links and images that an email may not carry, in order."""
    found: list[str] = []

    def walk(tokens: Iterable[Any]) -> None:
        for token in tokens:
            target = token.attrGet("href") if token.type == "link_open" else None
            target = token.attrGet("src") if token.type == "image" else target
            if target is not None and not safe_link(str(target)):
                found.append(str(target))
            if token.children:
                walk(token.children)

    walk(parse(body))
    return found


def summary_links(item: ItemRecord) -> list[str]:
    """The addresses of the Markdown links written in a summary (plain text: they show as typed)."""
    return [m[1] for m in _MARKDOWN_LINK.finditer(item.summary)]


def rule_item_links(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """A body link no reader can follow; a link written in Markdown in the plain-text summary."""
    for item in parts.items:
        bad = unfollowable(item.body) if item.body else []
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            yield Finding(
                "warning",
                "item-link",
                f"the body of {short(item.title)} links to {short(bad[0])}{more}: an email can only link "
                "to a whole http(s):// or mailto: address, so readers see the link's words only",
                f"{item.source} (body)",
                "write the whole address (https://...), or leave the words unlinked",
            )
        written = summary_links(item)
        if written:
            yield Finding(
                "warning",
                "summary-markdown",
                f"the summary of {short(item.title)} has a Markdown link to {short(written[0])}: a summary "
                "is plain text, so readers see the brackets and the address as typed",
                f"{item.source} (summary)",
                "move the link into the body, where Markdown works, or give the address as the item's url",
            )
