"""The MJML that was compiled (digest.mjml) -> what mjml-python (MRML) passes over in silence.

MRML compiles without validating: it drops unknown tags (and all they hold) and ignores unknown attributes.
So this is our own schema, after the MJML 4 documentation: unknown mj-* tags, attributes a component does
not have, components in a parent that cannot hold them, raw HTML outside mj-text/mj-raw, and mj-image
without alt. Attribute values (colours, units) are not checked.

The reader is the standard library's HTMLParser, not lxml: MJML is neither HTML (lxml's HTML parser would
move tags to where HTML wants them) nor always well-formed XML (an mj-text holds HTML such as <br>), and a
tokenizer gives each tag's own line.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

Severity = Literal["error", "warning"]  # as digest.check reports them
TEMPLATE = "digest.mjml.j2"

_PAD = ("padding", "padding-top", "padding-bottom", "padding-left", "padding-right")
_BORDER = ("border", "border-top", "border-bottom", "border-left", "border-right", "border-radius")
_FONT = (
    "color",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "line-height",
    "letter-spacing",
    "text-decoration",
    "text-transform",
)
_BG = (
    "background-color",
    "background-url",
    "background-repeat",
    "background-size",
    "background-position",
    "background-position-x",
    "background-position-y",
)
_ANY = None  # attributes not checked

# Component -> the attributes it has (besides css-class and mj-class), after the MJML 4 documentation.
MJML_ATTRIBUTES: dict[str, tuple[str, ...] | None] = {
    "mjml": ("lang", "dir", "owa"),
    "mj-head": (),
    "mj-body": ("width", "background-color"),
    "mj-attributes": (),
    "mj-all": _ANY,
    "mj-class": _ANY,
    "mj-breakpoint": ("width",),
    "mj-font": ("name", "href"),
    "mj-html-attributes": (),
    "mj-selector": ("path",),
    "mj-html-attribute": ("name",),
    "mj-preview": (),
    "mj-title": (),
    "mj-style": ("inline",),
    "mj-raw": ("position",),
    "mj-include": ("path", "type", "css-inline"),
    "mj-section": (*_BG, *_BORDER, *_PAD, "direction", "full-width", "text-align"),
    "mj-wrapper": (*_BG, *_BORDER, *_PAD, "direction", "full-width", "text-align", "gap"),
    "mj-group": ("width", "vertical-align", "background-color", "direction"),
    "mj-column": (
        *_BORDER,
        *_PAD,
        "background-color",
        "inner-background-color",
        "inner-border",
        "inner-border-top",
        "inner-border-bottom",
        "inner-border-left",
        "inner-border-right",
        "inner-border-radius",
        "width",
        "vertical-align",
        "direction",
    ),
    "mj-text": (*_FONT, *_PAD, "align", "container-background-color", "height"),
    "mj-image": (
        *_BORDER,
        *_PAD,
        "alt",
        "href",
        "name",
        "src",
        "srcset",
        "sizes",
        "title",
        "rel",
        "align",
        "container-background-color",
        "fluid-on-mobile",
        "target",
        "width",
        "height",
        "usemap",
    ),
    "mj-button": (
        *_FONT,
        *_BORDER,
        *_PAD,
        "background-color",
        "align",
        "vertical-align",
        "href",
        "rel",
        "name",
        "title",
        "inner-padding",
        "target",
        "width",
        "height",
        "container-background-color",
        "text-align",
    ),
    "mj-divider": (
        *_PAD,
        "border-color",
        "border-style",
        "border-width",
        "container-background-color",
        "width",
        "align",
    ),
    "mj-spacer": (*_PAD, "height", "container-background-color"),
    "mj-table": (
        *_FONT,
        *_PAD,
        "cellpadding",
        "cellspacing",
        "width",
        "align",
        "border",
        "container-background-color",
        "table-layout",
        "role",
    ),
    # Less common components: their tags and nesting are checked, their attributes are not.
    "mj-hero": _ANY,
    "mj-social": _ANY,
    "mj-social-element": _ANY,
    "mj-navbar": _ANY,
    "mj-navbar-link": _ANY,
    "mj-carousel": _ANY,
    "mj-carousel-image": _ANY,
    "mj-accordion": _ANY,
    "mj-accordion-element": _ANY,
    "mj-accordion-title": _ANY,
    "mj-accordion-text": _ANY,
}
_CONTENT = (
    "mj-text",
    "mj-image",
    "mj-button",
    "mj-divider",
    "mj-spacer",
    "mj-table",
    "mj-social",
    "mj-navbar",
    "mj-carousel",
    "mj-accordion",
    "mj-raw",
    "mj-include",
)
MJML_CHILDREN: dict[str, tuple[str, ...]] = {
    "": ("mjml",),
    "mjml": ("mj-head", "mj-body", "mj-include"),
    "mj-head": (
        "mj-attributes",
        "mj-breakpoint",
        "mj-font",
        "mj-html-attributes",
        "mj-preview",
        "mj-style",
        "mj-title",
        "mj-raw",
        "mj-include",
    ),
    "mj-body": ("mj-section", "mj-wrapper", "mj-hero", "mj-raw", "mj-include"),
    "mj-wrapper": ("mj-section", "mj-hero", "mj-raw", "mj-include"),
    "mj-section": ("mj-column", "mj-group", "mj-raw", "mj-include"),
    "mj-group": ("mj-column", "mj-raw"),
    "mj-column": _CONTENT,
    "mj-hero": _CONTENT,
    "mj-social": ("mj-social-element", "mj-raw"),
    "mj-navbar": ("mj-navbar-link", "mj-raw"),
    "mj-carousel": ("mj-carousel-image",),
    "mj-accordion": ("mj-accordion-element", "mj-raw"),
    "mj-accordion-element": ("mj-accordion-title", "mj-accordion-text", "mj-raw"),
    "mj-html-attributes": ("mj-selector",),
    "mj-selector": ("mj-html-attribute",),
}
# Components whose content is HTML (or text), not more MJML.
_ENDING = {
    "mj-text",
    "mj-button",
    "mj-table",
    "mj-raw",
    "mj-style",
    "mj-title",
    "mj-preview",
    "mj-navbar-link",
    "mj-accordion-title",
    "mj-accordion-text",
    "mj-social-element",
    "mj-html-attribute",
}


@dataclass(frozen=True)
class MjmlProblem:
    """One problem in the MJML: its line, the rule id, what is wrong, a needle to find it in the template,
    and how to fix it."""

    line: int
    rule: str
    severity: Severity
    message: str
    needle: str
    fix: str


class _MjmlReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.opened: list[tuple[str, int, int]] = []  # the stack's tags, with the line and column of each
        self.inner: list[tuple[str, int, int]] = []  # mj-* tags opened inside an ending tag's HTML
        self.left_open: list[tuple[str, int, int]] = []  # ... and not closed there: MRML fails on them
        self.raw: str | None = None  # inside an ending tag: its content is HTML
        self.problems: list[MjmlProblem] = []

    def _add(self, rule: str, severity: Severity, message: str, needle: str, fix: str) -> None:
        self.problems.append(MjmlProblem(self.getpos()[0], rule, severity, message, needle, fix))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], *, closed: bool) -> None:
        if self.raw is not None:
            if tag.startswith("mj-") and not closed:
                line, offset = self.getpos()
                self.inner.append((tag, line, offset + 1))
            return
        parent = self.stack[-1] if self.stack else ""
        if not (tag == "mjml" or tag.startswith("mj-")):
            if parent not in ("", "mj-head"):
                self._add(
                    "mjml-html",
                    "warning",
                    f"<{tag}> directly inside <{parent}>: HTML belongs in mj-text or mj-raw",
                    f"<{tag}",
                    "wrap the HTML in <mj-text> (or <mj-raw>)",
                )
            return
        in_attributes = parent == "mj-attributes"  # defaults for a component, not the component itself
        if tag not in MJML_ATTRIBUTES:
            close = [t for t in MJML_ATTRIBUTES if _similar(tag, t)]
            hint = f" (did you mean <{close[0]}>?)" if close else ""
            self._add(
                "mjml-unknown-tag",
                "error",
                f"unknown MJML tag <{tag}>{hint}: mjml-python drops it and everything in it",
                f"<{tag}",
                "use an MJML component (https://documentation.mjml.io/)",
            )
        else:
            if not in_attributes and parent in MJML_CHILDREN and tag not in MJML_CHILDREN[parent]:
                self._add(
                    "mjml-nesting",
                    "error",
                    f"<{tag}> cannot be inside <{parent}>",
                    f"<{tag}",
                    f"<{parent}> holds: {', '.join('<' + c + '>' for c in MJML_CHILDREN[parent])}",
                )
            allowed = MJML_ATTRIBUTES[tag]
            if allowed is not None:
                for name, _value in attrs:
                    if name in ("css-class", "mj-class") or name in allowed:
                        continue
                    close = [a for a in allowed if _similar(name, a)]
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    self._add(
                        "mjml-unknown-attribute",
                        "warning",
                        f"<{tag}> has no attribute {name!r}{hint}: it is ignored",
                        f"{name}=",
                        "remove it or use the attribute's right name (see the MJML documentation)",
                    )
            if tag == "mj-image" and not in_attributes and not dict(attrs).get("alt"):
                self._add(
                    "img-alt",
                    "error",
                    "<mj-image> without alt text",
                    "<mj-image",
                    'add alt="what the image shows"',
                )
            self._padding(tag, attrs, in_attributes=in_attributes)
        if closed:
            return
        self.stack.append(tag)
        line, offset = self.getpos()
        self.opened.append((tag, line, offset + 1))
        if tag in _ENDING:
            self.raw = tag

    def handle_endtag(self, tag: str) -> None:
        if self.raw is not None:
            if tag != self.raw:
                for k in range(len(self.inner) - 1, -1, -1):
                    if self.inner[k][0] == tag:
                        del self.inner[k:]
                        break
                return
            self.raw = None
            self.left_open += self.inner
            self.inner = []
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                self.opened.pop()
            self.opened.pop()

    def _padding(self, tag: str, attrs: list[tuple[str, str | None]], *, in_attributes: bool) -> None:
        # mjml-python drops a padding with a unitless 0 ("0 24px") when it computes widths (the Outlook
        # table of mj-divider, mj-image's width, a column's width): a 552 px box gets 600 px.
        if tag not in _SIZED:
            return
        for name, value in attrs:
            if name != "padding" or not value:
                continue
            sides = value.split()
            if "0" in sides and any(_nonzero(s) for s in _horizontal(sides)):
                px = " ".join("0px" if s == "0" else s for s in sides)
                self._add(
                    "mjml-padding-zero",
                    "warning",
                    f'<{tag}{" (in mj-attributes)" if in_attributes else ""}> padding="{value}": '
                    "mjml-python ignores a padding with a unitless 0 when it computes the Outlook width",
                    f'padding="{value}"',
                    f'write padding="{px}" (0px, not 0), or padding-left and padding-right',
                )


# Components whose padding mjml-python subtracts when it computes a width (mj-all: it reaches them all).
_SIZED = frozenset({"mj-all", "mj-section", "mj-wrapper", "mj-column", "mj-image", "mj-divider"})


def _horizontal(sides: list[str]) -> list[str]:
    """The right and left values of a CSS padding shorthand of one to four values."""
    if len(sides) == 1:
        return sides
    if len(sides) in (2, 3):
        return [sides[1]]
    return [sides[1], sides[3]]


def _nonzero(value: str) -> bool:
    return any(c in "123456789" for c in value)


def _similar(a: str, b: str) -> bool:
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def unclosed_tags(source: str) -> list[tuple[str, int, int]]:
    """The MJML tags never closed: (tag, line, column), those inside an mj-text (or another component of
    HTML) first, then those still open at the end, innermost first."""
    reader = _MjmlReader()
    reader.feed(source)
    reader.close()
    return reader.left_open + reader.inner + reader.opened[::-1]


def lint_mjml(source: str) -> list[MjmlProblem]:
    """Problems in an MJML document that MRML does not report, in the order of their lines."""
    reader = _MjmlReader()
    reader.feed(source)
    reader.close()
    return reader.problems


# ---- where a line of the generated MJML comes from (for the build's error messages) ----
