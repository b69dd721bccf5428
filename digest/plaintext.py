"""An item's Markdown body -> the plain text of the text part, laid out for a monospaced mail client.

The text comes from markdown-it-py's tokens (the parser that makes the body's HTML), not from regexes on the
Markdown: lists keep one item a line with their bullets and numbers, paragraphs are separated by a blank line,
emphasis markers go, headings are plain lines, code is kept as written, and a link reads `text (URL)` with
the URL whole on one line. Raw HTML is never interpreted: it is text in the Markdown (html=False), so its
characters are printed as they are. Lines are measured in columns (a CJK character takes two, a combining
accent none), and a run of CJK text may break between its characters, as it has no spaces to break at.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from digest.markdown import parse, safe_link

WIDTH = 78
BULLET = "- "
CODE_INDENT = "    "
RULE = "* * *"
CODE_SPAN_WHOLE = 30  # columns: a longer code span may break at its spaces

# Link words that a reader (and a mail client) takes for an address: a scheme, "www.", or user@host.
ADDRESS_LIKE = re.compile(r"(?i)[a-z][a-z0-9+.-]*:\S|www\.\S|[^\s@]+@[^\s@]+\.[^\s@]+$")

# Ordinary spaces are where lines break; a no-break space (French "Bonjour !", "10 000") is not one.
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
# Never at the start of a line / at its end (the simple part of the Japanese and Chinese line-breaking rules).
_NO_START = set(
    "、。，．・：；？！）」』】〕〉》〙〗’”ゝゞ々ー…‥"  # closing and middle punctuation, iteration marks
    "ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ"  # small kana
    ",.;:!?)]}%"
)
_NO_END = set("（「『【〔〈《〘〖‘“([{")


def display_width(text: str) -> int:
    """Columns a text takes in a monospaced mail client (wide characters count two, combining marks none)."""
    width = 0
    for c in text:
        if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return width


def markdown_text(source: str, width: int = WIDTH, indent: str = "") -> str:
    """A Markdown body as plain text wrapped at `width` columns, each line starting with `indent`."""
    from markdown_it.tree import SyntaxTreeNode

    tree = SyntaxTreeNode(parse(source))
    lines = _blocks(tree.children, width, indent, indent, tight=False)
    return "\n".join(line.rstrip() for line in lines)


# Blocks: each returns its lines; `first` starts the first line (a list's bullet), `rest` the others.


def _blocks(nodes: Sequence[Any], width: int, first: str, rest: str, *, tight: bool) -> list[str]:
    out: list[str] = []
    for node in nodes:
        lines = _block(node, width, rest if out else first, rest)
        if not lines:
            continue
        if out and not tight:
            out.append(rest.rstrip())  # a blank line (inside a quote, its ">")
        out += lines
    return out


def _block(node: Any, width: int, first: str, rest: str) -> list[str]:
    kind = node.type
    if kind in ("paragraph", "heading"):
        runs = _runs(node.children[0].children)
        # An empty heading ("#") is no block: it would leave blank lines around nothing.
        return _fill(runs, width, first, rest) if any(r.text.strip() for r in runs) else []
    if kind in ("bullet_list", "ordered_list"):
        return _list(node, width, first, rest)
    if kind == "blockquote":
        return _blocks(node.children, width, first + "> ", rest + "> ", tight=False)
    if kind in ("code_block", "fence"):
        if not node.content.strip():
            return []  # an empty fence: nothing to show
        code = node.content.rstrip("\n").split("\n")
        return [(rest if n else first) + CODE_INDENT + line for n, line in enumerate(code)]
    if kind == "hr":
        return [first + RULE]
    # Nothing else comes out of CommonMark without raw HTML; another block would show as its source text.
    return _fill([_Run(node.content)], width, first, rest)


def _list(node: Any, width: int, first: str, rest: str) -> list[str]:
    items = node.children
    # markdown-it hides the paragraphs of a tight list (no blank line between its items).
    tight = not any(c.type == "paragraph" and not c.hidden for item in items for c in item.children)
    start = int(node.attrs.get("start", 1))
    out: list[str] = []
    for n, item in enumerate(items):
        marker = f"{start + n}{item.markup} " if node.type == "ordered_list" else BULLET
        lead = (rest if n else first) + marker
        lines = _blocks(item.children, width, lead, rest + " " * len(marker), tight=tight)
        if n and not tight:
            out.append(rest.rstrip())
        out += lines or [lead.rstrip()]
    return out


# Inline text: runs of text, some of them atoms that are never broken (an address).


@dataclass(frozen=True)
class _Run:
    text: str
    atom: bool = False
    newline: bool = False


def _runs(nodes: Iterable[Any]) -> list[_Run]:
    out: list[_Run] = []
    for node in nodes:
        kind = node.type
        if kind == "softbreak":
            out.append(_Run(" "))
        elif kind == "hardbreak":
            out.append(_Run("", newline=True))
        elif kind == "code_inline":
            # Kept as written, spaces and all, on one line when it is short (a command, a name).
            code = f"{node.markup}{node.content}{node.markup}"
            out.append(_Run(code, atom=display_width(code) <= CODE_SPAN_WHOLE))
        elif kind == "link":
            out += _link(node)
        elif node.children:  # emphasis, strong: their text without the markers; an image: its alt text
            out += _runs(node.children)
        else:
            out.append(_Run(node.content))
    return out


def _link(node: Any) -> list[_Run]:
    href = str(node.attrs.get("href", ""))
    label = _runs(node.children)
    text = "".join(r.text for r in label).strip()
    if not safe_link(href):
        # Shown as its words only; an autolink's words are its address, which must not show either.
        return [] if node.markup == "autolink" else label
    # Words that read as an address show the address itself, once: the same one written otherwise
    # (decoded, without its last "/") would show twice, and another one would mislead ("www.bank.example"
    # linking elsewhere), as the reader's mail client makes a link of what looks like one.
    if not text or text in (href, href.removeprefix("mailto:")) or ADDRESS_LIKE.match(text):
        return [_Run(href, atom=True)]
    return [*label, _Run(" ("), _Run(href, atom=True), _Run(")")]


# Filling lines.


@dataclass
class _Word:
    text: str
    space: bool  # a space before it (otherwise it follows the word before without one: CJK text)
    cut: bool = True  # may be cut when longer than a line (never an address)


def _words(runs: Iterable[_Run]) -> list[_Word]:
    """The units a line may break between; text glued to an address stays with it, "(https://...)."."""
    words: list[_Word] = []
    space = False
    for run in runs:
        if run.atom:
            if space or not words:
                words.append(_Word(run.text, space and bool(words), cut=False))
            else:
                words[-1].text += run.text
                words[-1].cut = False
            space = False
            continue
        for n, piece in enumerate(_SPACES.split(run.text)):
            if n:
                space = True
            if not piece:
                continue
            for k, part in enumerate(_breakable(piece)):
                if k == 0 and words and not space:
                    words[-1].text += part
                else:
                    words.append(_Word(part, space and bool(words)))
                space = False
    for word in words:
        if "://" in word.text or "mailto:" in word.text:  # an address typed as text is never cut either
            word.cut = False
    return words


def _breakable(piece: str) -> list[str]:
    """A piece of text without spaces, split where a line may break inside it: around wide characters."""
    parts = [piece[0]]
    for before, c in itertools.pairwise(piece):
        wide = _wide(before) or _wide(c)
        if wide and c not in _NO_START and before not in _NO_END and not unicodedata.combining(c):
            parts.append(c)
        else:
            parts[-1] += c
    return parts


def _wide(c: str) -> bool:
    return unicodedata.east_asian_width(c) in ("W", "F")


def _fill(runs: Sequence[_Run], width: int, first: str, rest: str) -> list[str]:
    """Runs -> lines of at most `width` columns (a single address longer than a line stays whole)."""
    segments: list[list[_Run]] = [[]]
    for run in runs:
        if run.newline:
            segments.append([])
        else:
            segments[-1].append(run)
    lines: list[str] = []
    for segment in segments:
        # Two hard breaks in a row leave an empty line, as two <br> do in the HTML.
        lines += _fill_words(_words(segment), width, rest if lines else first, rest)
    return lines


def _fill_words(words: list[_Word], width: int, first: str, rest: str) -> list[str]:
    lines: list[str] = []
    line, used, empty = first, display_width(first), True
    for word in words:
        size = display_width(word.text)
        gap = 1 if word.space else 0  # never before the first word of a segment
        if not empty and used + gap + size > width:
            lines.append(line)
            line, used, empty, gap = rest, display_width(rest), True, 0
        text = word.text
        if empty and word.cut and used + size > width:
            # A word longer than a line is cut, so that no line is wider than the width.
            *full, text = _cut(text, max(width - used, 1))
            for piece in full:
                lines.append(line + piece)
                line = rest
            used = display_width(line)
        line += " " * gap + text
        used += gap + display_width(text)
        empty = False
    lines.append(line)
    return lines


def _cut(text: str, columns: int) -> list[str]:
    pieces = [""]
    for c in text:
        if pieces[-1] and display_width(pieces[-1] + c) > columns:
            pieces.append("")
        pieces[-1] += c
    return pieces
