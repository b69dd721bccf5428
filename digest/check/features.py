"""Which caniemail features an HTML document uses: each element, attribute, image format, CSS at-rule,
selector, property, function and unit named by its caniemail slug, with its first use (example and line).

Pure: the HTML and the slugs the data knows in, the uses out. digest/check/clients.py looks them up in the
caniemail data for the chosen clients and says which matter.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from lxml import html as lxml_html


@dataclass(frozen=True)
class Use:
    """The first place the HTML uses a feature: the key (a caniemail slug, or slug:form), how, and where."""

    key: str
    example: str
    line: int

    @property
    def slug(self) -> str:
        """The caniemail feature."""
        return self.key.split(":", 1)[0]


_SEMANTIC = frozenset({"article", "section", "header", "footer", "nav", "main", "aside", "figure"})
_IMAGE_EXT = {"jpeg": "jpg", "heic": "heif", "tif": "tiff"}
# Attributes caniemail has a feature for (the others, e.g. `style`, would name an element's feature).
_ATTRS = {
    **{a: f"html-{a}" for a in ("align", "valign", "width", "height", "cellpadding", "cellspacing")},
    **{a: f"html-{a}" for a in ("background", "dir", "lang", "role", "hidden", "target", "required")},
    "srcset": "html-srcset",
    "loading": "html-loading-attribute",
    "inert": "css-inert-attribute",
}
_DECL = re.compile(r"([-a-zA-Z]+)\s*:\s*([^;{}]+)")
_BLOCK = re.compile(r"([^{}]*)\{([^{}]*)\}")
_UNIT = re.compile(r"\d(px|em|rem|%|vh|vw|vmin|vmax|pt|pc|ch|ex|cm|mm|in)(?![a-z])")
# CSS functions in a value -> their feature.
_FUNCS = {
    "var(": "css-variables",
    "calc(": "css-unit-calc",
    **{f"{f}(": f"css-function-{f}" for f in ("clamp", "min", "max", "light-dark")},
    **{f"{f}(": f"css-{f}" for f in ("rgb", "rgba", "linear-gradient", "radial-gradient", "conic-gradient")},
}
# Media features -> their feature (device-pixel-ratio also matches -webkit-min-device-pixel-ratio).
_MEDIA = {
    m: f"css-at-media-{m}"
    for m in ("prefers-color-scheme", "prefers-reduced-motion", "orientation", "hover", "device-pixel-ratio")
}


class _Found:
    def __init__(self, slugs: Container[str]) -> None:
        self.slugs = slugs
        self.uses: dict[str, Use] = {}

    def add(self, key: str, example: str, line: int) -> None:
        if key.split(":", 1)[0] in self.slugs and key not in self.uses:
            self.uses[key] = Use(key, example, line)


def used_features(source: str, slugs: Container[str]) -> dict[str, Use]:
    """The features among `slugs` (caniemail's) an HTML document uses, each with its first use."""
    found = _Found(slugs)
    if not source.strip():
        return found.uses
    if source.lstrip()[:9].lower() == "<!doctype":
        found.add("html-doctype", "<!doctype html>", 1)
    parser = lxml_html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        root = lxml_html.document_fromstring(source.encode("utf-8"), parser=parser)
    except etree.ParserError:
        return found.uses
    names = {str(a.get("name")) for a in root.iter("a") if a.get("name")}
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        _element(found, el, names)
    return found.uses


def _element(found: _Found, el: Any, names: set[str]) -> None:
    tag, line, attrs = el.tag.lower(), el.sourceline or 0, el.attrib
    found.add(f"html-{tag}", f"<{tag}>", line)
    if tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
        found.add("html-h1-h6", f"<{tag}>", line)
    if tag in {"ul", "ol", "li", "dl"}:
        found.add("html-lists", f"<{tag}>", line)
    if tag in _SEMANTIC:
        found.add("html-semantics", f"<{tag}>", line)
    if tag in {"input", "button"}:
        kind = str(attrs.get("type") or ("text" if tag == "input" else "submit")).lower()
        found.add(f"html-{tag}-{kind}", f'<{tag} type="{kind}">', line)
    if tag == "meta" and str(attrs.get("name", "")).lower() == "color-scheme":
        found.add("html-meta-color-scheme", '<meta name="color-scheme">', line)
    if tag == "map":
        found.add("html-image-maps", "<map>", line)
    for name in attrs:
        name = str(name).lower()
        if name.startswith("aria-"):
            found.add(f"html-{name}", f"{name}=", line)
        if name in _ATTRS:
            found.add(_ATTRS[name], f"<{tag} {name}=", line)
    href = str(attrs.get("href") or "")
    if tag == "a" and href.lower().startswith("mailto:"):
        found.add("html-mailto-links", f'<a href="{href[:40]}">', line)
    if tag == "a" and href.startswith("#") and len(href) > 1:
        form = "" if href[1:] in names else ":id"
        found.add(f"html-anchor-links{form}", f'<a href="{href}">', line)
    if tag == "img":
        _image(found, str(attrs.get("src") or ""), line)
    if tag == "style":
        _css(found, el.text or "", line, block=True)
    if attrs.get("style"):
        _css(found, str(attrs["style"]), line, block=False)


def _image(found: _Found, src: str, line: int) -> None:
    if src.lower().startswith("data:"):
        found.add("image-base64", f'<img src="{src[:30]}...">', line)
        return
    ext = src.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1].rpartition(".")[2].lower()
    if ext:
        found.add(f"image-{_IMAGE_EXT.get(ext, ext)}", f'<img src="{src[:60]}">', line)


def _css(found: _Found, css: str, line: int, *, block: bool) -> None:
    css = re.sub(r"/\*.*?\*/", lambda m: "\n" * m[0].count("\n"), css, flags=re.S)

    def at(offset: int) -> int:
        return line + css.count("\n", 0, offset)

    if not block:
        _declarations(found, css, line)
        return
    for m in re.finditer(r"@([-a-z]+)([^{;]*)", css, flags=re.I):
        name, prelude = m[1].lower(), m[2].strip()
        found.add(f"css-at-{name}", f"@{name} {prelude}".strip(), at(m.start()))
        if name == "media":
            for word, slug in _MEDIA.items():
                if word in prelude.lower():
                    found.add(slug, f"@media {prelude}", at(m.start()))
    for m in _BLOCK.finditer(css):
        selector = m[1].rsplit(";", 1)[-1].strip()  # after an @import; at-rule preludes have no braces left
        if selector and not selector.startswith("@"):
            _selector(found, selector, at(m.start(1) + m[1].rfind(selector)))
        _declarations(found, m[2], at(m.start(2)))


def _selector(found: _Found, selector: str, line: int) -> None:
    checks = {
        "css-selector-grouping": "," in selector,
        "css-selector-class": re.search(r"\.[-_a-zA-Z]", selector) is not None,
        "css-selector-id": re.search(r"#[-_a-zA-Z]", selector) is not None,
        "css-selector-attribute": "[" in selector,
        "css-selector-child": ">" in selector,
        "css-selector-adjacent-sibling": "+" in selector,
        "css-selector-general-sibling": "~" in selector,
        "css-selector-universal": "*" in selector,
        "css-selector-descendant": any(len(part.split()) > 1 for part in re.split(r"[,>+~]", selector)),
    }
    for slug, used in checks.items():
        if used:
            found.add(slug, selector[:60], line)
    for m in re.finditer(r"(::?)([-a-z]+)", selector):
        kind = "element" if m[1] == "::" or m[2] in {"before", "after"} else "class"
        found.add(f"css-pseudo-{kind}-{m[2]}", selector[:60], line)


def _declarations(found: _Found, css: str, line: int) -> None:
    for m in _DECL.finditer(css):
        prop, value = m[1].lower(), m[2].strip()
        example = f"{prop}:{value}"[:60]
        here = line + css.count("\n", 0, m.start())
        if prop == "display":
            kind = value.lower().replace("!important", "").strip()
            found.add(
                f"css-display-{kind}" if kind in {"none", "flex", "grid"} else "css-display", example, here
            )
        for slug in _property_slugs(prop):
            found.add(slug, example, here)
        low = value.lower()
        if "!important" in low:
            found.add("css-important", example, here)
        for func, slug in _FUNCS.items():
            if re.search(rf"(?<![-a-z]){re.escape(func)}", low):
                found.add(slug, example, here)
        for unit in _UNIT.finditer(low):
            found.add("css-unit-percent" if unit[1] == "%" else f"css-unit-{unit[1]}", example, here)


def _property_slugs(prop: str) -> list[str]:
    """The slugs a property may be known by: itself, then without sides (margin-top: margin)."""
    return [f"css-{prop}", f"css-{re.sub(r'-(top|right|bottom|left)', '', prop)}"]
