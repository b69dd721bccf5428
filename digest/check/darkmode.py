"""Dark mode survives inlining: the dark rules the template declares (in digest.mjml) are in the built HTML,
and each can still win over the colours premailer wrote into the style attributes.

Dark rules are those inside `@media (prefers-color-scheme: dark)` and those for Outlook.com's dark mode
(`[data-ogsc]` for text, `[data-ogsb]` for backgrounds), which match nothing until Outlook.com adds the
attribute: an inliner that drops rules matching nothing drops them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cssselect import SelectorError

from digest.check.built import BuiltDigest
from digest.check.html import Doc
from digest.check.report import Finding
from digest.render import HTML_TEMPLATE

_STYLE = re.compile(r"<(mj-style|style)\b[^>]*>(.*?)</\1\s*>", re.S | re.I)
_OUTLOOK = re.compile(r"\[data-ogs[cb]\]\s*", re.I)
COLOUR_PROPS = ("color", "background-color", "background", "border-color")


@dataclass(frozen=True)
class DarkRule:
    """One declaration of a dark rule: `selector { prop: value [!important] }`."""

    selector: str
    prop: str
    value: str
    important: bool
    outlook: bool  # an Outlook.com [data-ogsc]/[data-ogsb] rule, not a prefers-color-scheme one
    order: int  # its place among the page's rules: the later of two equal rules wins


def style_text(markup: str) -> str:
    """The CSS of every <style> (and <mj-style>) block of a page or of MJML, comments left out."""
    return "\n".join(m[2] for m in _STYLE.finditer(markup))


def blocks(css: str) -> Iterator[tuple[str, str]]:
    """The top-level rules of a style sheet as (prelude, body), at-rules included (their body is CSS)."""
    text = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    depth, start, open_at = 0, 0, 0
    for i, c in enumerate(text):
        if c == "{":
            if depth == 0:
                open_at = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                yield " ".join(text[start:open_at].split()), text[open_at + 1 : i]
                start = i + 1


def declarations(body: str) -> Iterator[tuple[str, str, bool]]:
    """The declarations of a rule's body: (property, value, important), lower-cased and spaces normalised."""
    for part in body.split(";"):
        prop, sep, value = part.partition(":")
        if not sep or not prop.strip():
            continue
        value = " ".join(value.split()).lower()
        important = value.endswith("!important")
        value = value.removesuffix("!important").strip()
        yield prop.strip().lower(), value, important


def dark_rules(css: str) -> list[DarkRule]:
    """Every dark declaration of a style sheet, one per selector, in the sheet's order."""
    found: list[DarkRule] = []

    def add(selectors: str, body: str, *, outlook: bool) -> None:
        for selector in (" ".join(s.split()) for s in selectors.split(",")):
            if selector and (not outlook or _OUTLOOK.search(selector)):
                for prop, value, important in declarations(body):
                    found.append(DarkRule(selector, prop, value, important, outlook, len(found)))

    for prelude, body in blocks(css):
        if prelude.startswith("@media") and re.search(r"prefers-color-scheme\s*:\s*dark", prelude):
            for inner, inner_body in blocks(body):
                add(inner, inner_body, outlook=False)
        elif not prelude.startswith("@") and _OUTLOOK.search(prelude):
            add(prelude, body, outlook=True)
    return found


def matches(doc: Doc, selector: str) -> list[Any]:
    """The elements of the page a selector matches ([data-ogsc] read as Outlook.com sets it: on the root)."""
    if doc.root is None:
        return []
    try:
        return list(doc.root.cssselect(_OUTLOOK.sub("", selector).strip() or "html"))
    except (SelectorError, ValueError):  # a pseudo-element or a selector lxml cannot run: not checked
        return []


def inline_style(el: Any) -> dict[str, str]:
    """An element's style attribute as {property: value} (lower case, spaces normalised)."""
    return {p: v for p, v, _ in declarations(el.get("style") or "")}


def rule_dark_survives(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """The dark rules of the MJML must be in digest.html, and a rule without !important must not lose to
    the colour premailer inlined on the elements it matches."""
    built = {(r.selector, r.prop, r.value) for r in dark_rules(style_text(parts.html))}
    missing: dict[str, list[DarkRule]] = {}
    for rule in dark_rules(style_text(parts.mjml)):
        if (rule.selector, rule.prop, rule.value) not in built:
            missing.setdefault(rule.selector, []).append(rule)
    for selector, rules in missing.items():
        what = "Outlook.com's dark mode" if rules[0].outlook else "dark mode"
        yield Finding(
            "error",
            "dark-mode-dropped",
            f"the {what} rule {selector} {{ {'; '.join(f'{r.prop}: {r.value}' for r in rules)} }} of the "
            "template is not in digest.html: the CSS inliner dropped it",
            parts.template(HTML_TEMPLATE, selector, selector.split()[-1]),
            "declare it in <mj-style> (the build keeps media queries and [attribute] rules as written), "
            "not in an inline style or a <style> the build does not see",
        )
    yield from _overridden(parts, doc, "digest.html")


def rule_web_dark_survives(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """The web version's dark rules must not lose to inlined colours."""
    return _overridden(parts, doc, "index.html")


def _overridden(parts: BuiltDigest, doc: Doc, page: str) -> Iterable[Finding]:
    html = parts.html if page == "digest.html" else parts.web_html
    seen: set[str] = set()
    for rule in dark_rules(style_text(html)):
        if rule.important or rule.prop not in COLOUR_PROPS or rule.outlook:
            continue
        hit = [el for el in matches(doc, rule.selector) if rule.prop in inline_style(el)]
        if not hit or rule.selector in seen:
            continue
        seen.add(rule.selector)
        yield Finding(
            "warning",
            "dark-mode-overridden",
            f"{page}:{hit[0].sourceline}: the dark mode rule {rule.selector} {{ {rule.prop}: {rule.value} }} "
            f"never applies: the inliner wrote {rule.prop}: {inline_style(hit[0])[rule.prop]} into the "
            f"style of the {len(hit)} element{'s' if len(hit) > 1 else ''} it matches, and an inline style "
            "wins over a rule without !important",
            parts.template(HTML_TEMPLATE, rule.selector, rule.value),
            f"add !important: {rule.selector} {{ {rule.prop}: {rule.value} !important; }}",
        )
