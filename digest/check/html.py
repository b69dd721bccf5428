"""The built HTML, as the rules see it: its links, images, element ids and visible text (parsed with lxml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from lxml import html as lxml_html

# Text inside these is never shown in the message body (or, for <title>, only in a tab).
_HIDDEN_TAGS = frozenset({"head", "style", "script", "title", "template"})


@dataclass
class Link:
    """An <a> element: its address, its text (with the alt text of images inside it) and its line."""

    href: str | None
    text: str
    line: int
    named: bool = False  # it has a name or id: without href it is a place to jump to, not a link


@dataclass(frozen=True)
class Image:
    """An <img> element."""

    src: str
    alt: str | None
    line: int
    width: str = ""
    height: str = ""


@dataclass
class Doc:
    """Links, images, element ids, the visible text and the tree of an HTML document."""

    links: list[Link] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    text: str = ""
    root: Any = None  # the lxml tree, for the rules that need more (colours, selectors); None when empty


def parse_html(source: str) -> Doc:
    """Read links, images, ids and visible text out of an HTML document (an empty one has none)."""
    doc = Doc()
    if not source.strip():
        return doc
    # Bytes, not str: lxml refuses a str that declares its own encoding.
    parser = lxml_html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        root = lxml_html.document_fromstring(source.encode("utf-8"), parser=parser)
    except etree.ParserError:  # nothing but comments or whitespace: no document
        return doc
    doc.root = root
    chunks: list[str] = []
    _walk(root, doc, chunks, hidden=False, link=None)
    doc.text = " ".join(chunks)
    return doc


def _walk(el: etree._Element, doc: Doc, chunks: list[str], *, hidden: bool, link: Link | None) -> None:
    tag = el.tag if isinstance(el.tag, str) else ""
    attrs = el.attrib
    line = el.sourceline or 0
    if attrs.get("id"):
        doc.ids.add(str(attrs["id"]))
    if tag == "a" and attrs.get("name"):
        doc.ids.add(str(attrs["name"]))
    if tag == "img":
        alt = attrs.get("alt")
        doc.images.append(
            Image(attrs.get("src") or "", alt, line, attrs.get("width") or "", attrs.get("height") or "")
        )
        if link is not None and alt:
            link.text += " " + alt  # an image link's name is its alt text
    if tag == "a":
        link = Link(attrs.get("href"), "", line, named=bool(attrs.get("name") or attrs.get("id")))
        doc.links.append(link)
    style = (attrs.get("style") or "").replace(" ", "").lower()
    hidden = hidden or tag in _HIDDEN_TAGS or "display:none" in style
    _add_text(el.text, chunks, hidden=hidden, link=link)
    for child in el:
        _walk(child, doc, chunks, hidden=hidden, link=link)
        _add_text(child.tail, chunks, hidden=hidden, link=link)  # a tail is inside `el`, not the child


def _add_text(text: str | None, chunks: list[str], *, hidden: bool, link: Link | None) -> None:
    if not text or hidden:
        return
    chunks.append(text)
    if link is not None:
        link.text += text
