"""Words in messages and names: one slugify, one plural."""

from __future__ import annotations

import re
import unicodedata


def slugify(text: str, *, max_len: int | None = None, fallback: str = "item") -> str:
    """A stable ASCII slug of a text ("Économie sociale" -> "economie-sociale"), for file names and ids.

    At most max_len characters (no dash left at the end); `fallback` when no letter or digit is left.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if max_len is not None:
        slug = slug[:max_len].rstrip("-")
    return slug or fallback


def lang_code(text: str) -> str:
    """One spelling of a language tag, as Babel and gettext folders write it: "pt-br" -> "pt_BR"."""
    head, *rest = text.strip().replace("-", "_").split("_")
    return "_".join(
        [head.lower(), *(r.upper() if len(r) == 2 else r.title() if len(r) == 4 else r for r in rest)]
    )


def lang_tag(code: str) -> str:
    """A workspace's language code as HTML, HTTP and mail headers write it (BCP 47): "pt_BR" -> "pt-BR"."""
    return code.replace("_", "-")


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 item', '2 items', '0 categories' (with many='categories')."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


# An HTML entity: named (&nbsp;), decimal (&#160;) or hexadecimal (&#xA0;).
ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def has_markup(text: str) -> bool:
    """Whether a template's string is HTML rather than text: it has a `<` or an entity (`&nbsp;`); a bare
    `&` ("Q&A") is text."""
    return "<" in text or ENTITY.search(text) is not None
