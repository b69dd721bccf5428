"""Characters a reader cannot see in an item's title or summary: bidi overrides that reorder the text
(U+202E can make "gpj.exe" read "exe.jpg") and zero-width characters where no script needs them."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from digest.check.built import BuiltDigest, short
from digest.check.html import Doc
from digest.check.report import Finding

_BIDI = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}
_ZERO_WIDTH = {0x200B, 0x2060, 0xFEFF, 0x180E}
_JOINERS = {0x200C, 0x200D}  # ZWNJ and ZWJ shape Persian, Indic scripts and emoji: only odd next to ASCII


def _invisible(text: str) -> list[tuple[int, str]]:
    """The positions and names of the invisible characters in a text that have no business there."""
    found = []
    for i, c in enumerate(text):
        code = ord(c)
        odd = code in _BIDI or code in _ZERO_WIDTH
        if code in _JOINERS:
            around = text[i - 1 : i] + text[i + 1 : i + 2]
            odd = not around.strip() or any(ord(x) < 128 for x in around)
        if odd:
            found.append((i + 1, f"U+{code:04X} {unicodedata.name(c, 'FORMAT CHARACTER')}"))
    return found


def rule_invisible_characters(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """Bidi controls and zero-width characters in an item's title or summary: they reorder or hide text."""
    for item in parts.items:
        for field_name, text in (("title", item.title), ("summary", item.summary)):
            found = _invisible(text)
            if not found:
                continue
            where, name = found[0]
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            yield Finding(
                "warning",
                "invisible-character",
                f"the {field_name} of {short(item.title)} has an invisible {name} at character {where}"
                f"{more}: it reorders or hides text, and no reader sees it",
                f"{item.source} ({field_name})",
                "delete it (an editor that shows invisible characters helps, e.g. `cat -A` or VS Code)",
            )
