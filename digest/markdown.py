"""An item's Markdown body: the one parser set-up the HTML and the text part share, the HTML's rule for a
link an email may not carry, and how deep a body may nest.

markdown-it stops at a nesting limit (its `maxNesting`) and silently drops what lies deeper: the rest of a
quote, and inside a list everything after that point to the end of the body, in both parts alike. Levels are
markdown-it's: a block quote is one, a list two (the list and its item), and text at level LIMIT or deeper
is dropped: 19 quotes inside each other keep their text, 20 do not; 9 lists do, 10 do not. Inline nesting
(emphasis, links in brackets) drops nothing: past the limit markdown-it leaves the markup as it is written.
So an item whose body would lose text is refused when it is read (digest/items.py), naming the line.
"""

from __future__ import annotations

import functools
import re
from typing import Any

LIMIT = 20  # markdown-it's maxNesting for item bodies: the value of its commonmark preset, said once here

# The schemes an email may link to, in both parts: a link to anything else (javascript:, data:, a relative
# path) shows as its words only, its address nowhere.
SAFE_SCHEMES = ("https://", "http://", "mailto:")


def safe_link(url: str) -> bool:
    """Whether an email may link to `url`: only absolute http(s) and mailto addresses."""
    return url.strip().lower().startswith(SAFE_SCHEMES)


def parser(*, max_nesting: int = LIMIT) -> Any:
    """A markdown-it parser for item bodies: CommonMark, raw HTML kept as text, the nesting limit, and every
    link parsed as a link whatever its address: each part shows one an email may not carry as its words
    (safe_link judges), so both parts see the same blocks."""
    from markdown_it import MarkdownIt  # only items with a body need it

    options = {"html": False, "linkify": False, "typographer": False, "maxNesting": max_nesting}
    md = MarkdownIt("commonmark", options)
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


def parse(source: str) -> list[Any]:
    """markdown-it's tokens of a body, as both parts parse it (the text part lays them out itself)."""
    return list(_text_parser().parse(str(source)))


@functools.cache
def _text_parser() -> Any:
    return parser()


@functools.cache
def html_parser() -> Any:
    """parser() for the HTML part. In an email only absolute links work, and only these schemes are safe:
    anything else (javascript:, data:, a relative path, "java&#x09;script:") is parsed as a link, then shown
    as its words only, as the text part shows it (markdown-it's own check would leave "[us](/about)" as
    typed)."""
    md = parser()
    md.core.ruler.push("unsafe_links", _words_of_unsafe_links)
    return md


def _words_of_unsafe_links(state: Any) -> None:
    """A link whose address an email may not link to (safe_link) keeps its words and loses its
    tag; an autolink (`<ftp://...>`) is its address, which goes with it; an image keeps its alt text."""
    from markdown_it.token import Token

    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        kept: list[Token] = []
        links: list[str] = []  # per open link: "keep", "unwrap" (its words stay) or "hide" (all of it goes)
        for token in block.children:
            if token.type == "link_open":
                safe = safe_link(str(token.attrGet("href") or ""))
                links.append("keep" if safe else "hide" if token.markup == "autolink" else "unwrap")
                if safe:
                    kept.append(token)
            elif token.type == "link_close":
                if (links.pop() if links else "keep") == "keep":
                    kept.append(token)
            elif "hide" not in links:
                if token.type == "image" and not safe_link(str(token.attrGet("src") or "")):
                    # Its alt text as the text part shows it: the words of its label, code as written.
                    words = "".join(_as_written(c) for c in token.children or ())
                    token = Token("text", "", 0, content=words)
                kept.append(token)
        block.children = kept


def _as_written(token: Any) -> str:
    if token.type == "code_inline":
        return f"{token.markup}{token.content}{token.markup}"
    return str(token.content) if token.type == "text" else ""


# The characters that can stand before a line's text because of the quotes and lists it is in: their markers
# ('>', '-', '+', '*', '1.', '1)') and indentation. Each level of nesting takes at least a column of them (a
# quote its '>'; a list, two levels, its marker and a space or as much indentation), so a line nested LIMIT
# levels deep starts with at least LIMIT columns of them, a tab counting as up to 4 (so LIMIT / 4 characters).
_PREFIX = r"^[ \t>*+\-.)0-9]{%d,}"
_FOUND = "digest_too_deep"  # the key in markdown-it's env where the probe notes the line


def could_be_deep(text: str, limit: int = LIMIT) -> bool:
    """Whether some line of text starts with enough quote and list markers to be nested `limit` deep: when
    not, no parse is needed (most bodies), as no line can be."""
    if "\r" in text:  # markdown-it ends a line at a CR too; "^" only matches after a LF
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return any(len(run) + 3 * run.count("\t") >= limit for run in _prefix(limit).findall(text))


@functools.cache
def _prefix(limit: int) -> re.Pattern[str]:
    return re.compile(_PREFIX % -(-limit // 4), re.MULTILINE)


def too_deep(text: str, limit: int = LIMIT) -> int | None:
    """The line (0-based, in text) where Markdown nested `limit` levels deep starts, which a parser made by
    parser() drops (in both parts); None when there is none."""
    if not could_be_deep(text, limit):
        return None
    env: dict[str, Any] = {}
    _probe(limit).parse(text, env)
    found: int | None = env.get(_FOUND)
    return found


@functools.cache
def _probe(limit: int) -> Any:
    """A parser that goes deeper than `limit` and notes the first block that starts at level `limit` or
    more: up to there it parses exactly as the limited one, which drops that very block. A rule raises the
    level by two at most (a list and its item), so limit + 2 lets the probe see that block."""
    md = parser(max_nesting=limit + 2)

    def note(state: Any, start: int, end: int, silent: bool) -> bool:
        if state.level >= limit:
            state.env.setdefault(_FOUND, start)
        return False  # never a block of its own: the other rules parse the line as ever

    md.block.ruler.before(md.block.ruler.get_all_rules()[0], _FOUND, note)
    return md
