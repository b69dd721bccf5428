"""Contrast: every visible text's colour against its background, in the light palette (the inlined styles)
and the dark one (the `prefers-color-scheme: dark` rules over them), against WCAG AA: 4.5:1, or 3:1 for
large text (24 px, or 18.66 px bold).

What a page says is what is measured: an element's colour is its own style attribute's or the nearest
ancestor's; its background the nearest one set (style or bgcolor). A dark rule with !important beats the
inline style, one without does not. Colours no style sets are the browser's: black on white, or, when the
page declares `color-scheme: light dark`, white on near-black in the dark palette. Outlook.com's own colour
inversion ([data-ogsc]) is not modelled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from digest.check.built import BuiltDigest, short
from digest.check.darkmode import dark_rules, inline_style, matches, style_text
from digest.check.html import Doc
from digest.check.report import Finding
from digest.render import HTML_TEMPLATE

AA = 4.5
AA_LARGE = 3.0
INVISIBLE = 1.5  # below this the text cannot be seen at all, and spam filters score it
_NAMED = {"white": "#ffffff", "black": "#000000", "red": "#ff0000", "blue": "#0000ff", "gray": "#808080"}
_HIDDEN_TAGS = {"head", "style", "script", "title", "template"}
_BOLD_TAGS = {"b", "strong", "h1", "h2", "h3", "h4", "h5", "h6", "th"}
RGB = tuple[float, float, float]


def parse_colour(value: str) -> RGB | None:
    """#rgb, #rrggbb, rgb()/rgba() or a few names -> (r, g, b) in 0..255; None for anything else."""
    v = value.strip().lower()
    v = _NAMED.get(v, v)
    m = re.search(r"#([0-9a-f]{6}|[0-9a-f]{3})\b", v)
    if m:
        h = m[1] if len(m[1]) == 6 else "".join(c * 2 for c in m[1])
        return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    m = re.search(r"rgba?\(\s*(\d+)[\s,]+(\d+)[\s,]+(\d+)", v)
    if m:
        return (float(m[1]), float(m[2]), float(m[3]))
    for word in v.split():
        if word in _NAMED:
            return parse_colour(_NAMED[word])
    return None


def luminance(rgb: RGB) -> float:
    """WCAG relative luminance."""

    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ratio(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio of two colours, 1..21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def hexof(rgb: RGB) -> str:
    """(r, g, b) -> #rrggbb."""
    return "#" + "".join(f"{round(c):02x}" for c in rgb)


def suggest(fg: RGB, bg: RGB, need: float) -> str:
    """The text colour nearest to fg, toward black or white, that has the contrast needed on bg."""
    target = (0.0, 0.0, 0.0) if luminance(bg) > 0.18 else (255.0, 255.0, 255.0)
    for step in range(1, 21):
        t = step / 20
        c = (
            fg[0] + (target[0] - fg[0]) * t,
            fg[1] + (target[1] - fg[1]) * t,
            fg[2] + (target[2] - fg[2]) * t,
        )
        if ratio(c, bg) >= need:
            return hexof(c)
    return hexof(target)


@dataclass(frozen=True)
class _Seen:
    fg: RGB
    bg: RGB
    fg_source: str  # the colour as the page writes it where it is set (to find it in the template)
    dark_rule: str  # the dark rule that set the text colour, "" when none did


def _px(value: str) -> float | None:
    m = re.match(r"\s*([\d.]+)\s*(px|pt)?", value)
    if not m:
        return None
    return float(m[1]) * (4 / 3 if m[2] == "pt" else 1)


def _bgcolor(el: Any) -> str | None:
    value = el.get("bgcolor")
    return str(value) if value else None


class _Palette:
    """The colours of one page in one palette: light (styles as inlined) or dark (dark rules over them)."""

    def __init__(self, doc: Doc, html: str, *, dark: bool) -> None:
        self.dark = dark
        self.rules: dict[Any, dict[str, tuple[str, bool, str]]] = {}  # el -> prop -> (value, important, sel)
        scheme = html.lower()
        self.follows_scheme = dark and "color-scheme" in scheme and "dark" in scheme
        if dark:
            for rule in dark_rules(style_text(html)):
                if rule.outlook:
                    continue
                for el in matches(doc, rule.selector):
                    props = self.rules.setdefault(el, {})
                    old = props.get(rule.prop)
                    if old is None or rule.important or not old[1]:
                        props[rule.prop] = (rule.value, rule.important, rule.selector)

    def own(self, el: Any, props: tuple[str, ...]) -> tuple[str, str] | None:
        """The value an element itself sets for the first of props it sets, and the dark rule behind it."""
        style = inline_style(el)
        dark = self.rules.get(el, {})
        for prop in props:
            rule = dark.get(prop)
            if rule is not None and (rule[1] or prop not in style) and parse_colour(rule[0]) is not None:
                return rule[0], rule[2]
            if prop in style and parse_colour(style[prop]) is not None:
                return style[prop], ""
        return None

    def colours(self, el: Any) -> _Seen:
        """The text colour and the background an element shows."""
        fg: tuple[str, str] | None = None
        bg: str | None = None
        node = el
        while node is not None and (fg is None or bg is None):
            if fg is None:
                fg = self.own(node, ("color",))
                if fg is None and node.tag == "font" and node.get("color"):
                    fg = (node.get("color"), "")
                if fg is None and node.tag == "a":  # a link's own colour, not its parent's
                    fg = ("#9e9eff" if self.follows_scheme else "#0000ee", "")
            if bg is None:
                found = self.own(node, ("background-color", "background"))
                bg = found[0] if found else _bgcolor(node)
            node = node.getparent()
        default_fg, default_bg = ("#ffffff", "#121212") if self.follows_scheme else ("#000000", "#ffffff")
        fg_value, rule = fg or (default_fg, "")
        fg_rgb = parse_colour(fg_value) or (0.0, 0.0, 0.0)
        bg_rgb = parse_colour(bg or default_bg) or (255.0, 255.0, 255.0)
        return _Seen(fg_rgb, bg_rgb, fg_value, rule)


def _hidden(el: Any) -> bool:
    for node in (el, *el.iterancestors()):
        if not isinstance(node.tag, str) or node.tag in _HIDDEN_TAGS:
            return True
        style = inline_style(node)
        if (
            style.get("display") == "none"
            or style.get("visibility") == "hidden"
            or style.get("opacity") == "0"
        ):
            return True
        if style.get("max-height", "").startswith("0") and style.get("overflow") == "hidden":
            return True
    return False


def _own_text(el: Any) -> str:
    return " ".join([el.text or "", *(child.tail or "" for child in el)]).strip()


def _large(el: Any) -> bool:
    size: float | None = None
    bold = False
    for node in (el, *el.iterancestors()):
        style = inline_style(node)
        if size is None and "font-size" in style:
            size = _px(style["font-size"])
        weight = style.get("font-weight", "")
        bold = bold or node.tag in _BOLD_TAGS or weight in ("bold", "bolder", "700", "800", "900")
    return size is not None and (size >= 24 or (size >= 18.66 and bold))


def contrast(parts: BuiltDigest, doc: Doc, page: str) -> Iterable[Finding]:
    """One finding per colour pair below WCAG AA, per palette, with where it first shows."""
    if doc.root is None:
        return
    html = parts.html if page == "digest.html" else parts.web_html
    reported: set[tuple[RGB, RGB, bool]] = set()
    for dark in (False, True):
        palette = _Palette(doc, html, dark=dark)
        if dark and not palette.rules and not palette.follows_scheme:
            return  # the page has no dark mode: its dark palette is its light one
        found: dict[tuple[RGB, RGB, bool], list[tuple[Any, _Seen, float]]] = {}
        for el in doc.root.iter():
            if not isinstance(el.tag, str) or not _own_text(el) or _hidden(el):
                continue
            seen = palette.colours(el)
            large = _large(el)
            r = ratio(seen.fg, seen.bg)
            if r < (AA_LARGE if large else AA):
                found.setdefault((seen.fg, seen.bg, large), []).append((el, seen, r))
        for (fg, bg, large), hits in found.items():
            if (fg, bg, large) not in reported:  # what dark mode leaves as it was is reported once
                reported.add((fg, bg, large))
                yield _finding(parts, page, dark=dark, large=large, hits=hits, fg=fg, bg=bg)


def _finding(
    parts: BuiltDigest,
    page: str,
    *,
    dark: bool,
    large: bool,
    hits: list[tuple[Any, _Seen, float]],
    fg: RGB,
    bg: RGB,
) -> Finding:
    el, seen, r = hits[0]
    need = AA_LARGE if large else AA
    better = suggest(fg, bg, need)
    more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
    mode = "dark mode" if dark else "light mode"
    message = (
        f"{page}:{el.sourceline}: in {mode}, text {hexof(fg)} on {hexof(bg)} has a contrast of {r:.2f}:1 "
        f"(WCAG AA: at least {need:g}:1 for {'large' if large else 'body'} text): "
        f"{short(_own_text(el), 40)}{more}"
    )
    needles = [n for n in (seen.dark_rule, seen.fg_source, hexof(fg)) if n]
    where = parts.template(HTML_TEMPLATE, *needles, *_short_hex(hexof(fg)))
    if dark and not seen.dark_rule:
        fix = (
            f"give this text a dark-mode colour in the @media (prefers-color-scheme: dark) rules, e.g. "
            f"{_selector(el)} {{ color: {suggest(fg, bg, need)} !important; }}"
        )
    elif dark:
        fix = f"make {seen.dark_rule} lighter in the dark-mode rules, e.g. color: {better} !important"
    else:
        fix = (
            f"use a text colour with more contrast on {hexof(bg)}, e.g. {better} instead of {seen.fg_source}"
        )
    return Finding("error" if r < INVISIBLE else "warning", "contrast", message, where, fix)


def _short_hex(h: str) -> list[str]:
    return [f"#{h[1]}{h[3]}{h[5]}"] if h[1] == h[2] and h[3] == h[4] and h[5] == h[6] else []


def _selector(el: Any) -> str:
    for node in el.iterancestors():
        cls = (node.get("class") or "").split()
        if cls:
            return f".{cls[0]} {el.tag}"
    return str(el.tag)


def rule_contrast(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """The email's text must have WCAG AA contrast in light and dark mode."""
    return contrast(parts, doc, "digest.html")


def rule_web_contrast(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """The web version's text must have WCAG AA contrast in light and dark mode."""
    return contrast(parts, doc, "index.html")
