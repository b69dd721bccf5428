"""HTML -> HTML with the CSS inlined (premailer), keeping what cannot be inlined where mail clients read it.

Media queries (dark mode, phones) and attribute selectors (Outlook.com's [data-ogsc] dark rules) cannot be
inlined: premailer would drop them. They are moved, unchanged, into a <style> block premailer leaves alone.
"""

from __future__ import annotations

import logging
import re
import sys
import types
from typing import Any


def _premailer() -> Any:
    """Import premailer without `requests`, which it needs only to fetch remote stylesheets.

    digest never lets premailer touch the network (allow_network=False), and importing requests costs
    about 80 ms per process (it builds an SSL context at import), a fifth of a whole build. A stand-in
    module that refuses every call takes its place for premailer alone; anyone else importing requests
    later gets the real one.
    """
    if "premailer" in sys.modules:
        return sys.modules["premailer"]
    if "requests" in sys.modules:
        import premailer

        return premailer

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("digest does not let premailer fetch anything over the network")

    stand_in = types.ModuleType("requests")
    stand_in.get = refuse  # type: ignore[attr-defined]
    sys.modules["requests"] = stand_in
    try:
        import premailer
    finally:
        del sys.modules["requests"]
    return premailer


_STYLE = re.compile(r"<!--.*?-->|<style([^>]*)>(.*?)</style>", re.S | re.I)


def keep_uninlinable(html: str) -> str:
    """Move the CSS that cannot be inlined (at-rules such as @media, selectors with [attributes] or
    :pseudo-classes) of each <style> block into a block premailer leaves alone, as written.

    premailer keeps media queries but reformats them, and drops a rule that matches no element: Outlook.com's
    dark mode rules (`[data-ogsc] ...`) match only once Outlook.com adds the attribute. Blocks inside
    comments (Outlook's conditional ones) and blocks for another medium are not touched, as premailer
    does not touch them."""

    def split(m: re.Match[str]) -> str:
        attrs, css = m[1], m[2]
        if attrs is None or "data-premailer" in attrs or "media=" in attrs.lower():
            return m[0]
        inline, kept = split_css(css)
        out = f"<style{attrs}>{inline}</style>" if inline.strip() else ""
        return out + (f'<style{attrs} data-premailer="ignore">{kept}</style>' if kept.strip() else "")

    return _STYLE.sub(split, html)


def split_css(css: str) -> tuple[str, str]:
    """CSS -> (the rules premailer can inline, the rest), each rule's text as written."""
    inline: list[str] = []
    kept: list[str] = []
    text = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    depth, start = 0, 0
    for i, c in enumerate(text):
        if c == "{":
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                _sort_rule(text[start : i + 1].strip(), inline, kept)
                start = i + 1
    if text[start:].strip():
        kept.append(text[start:].strip())  # not closed: as written, for the browser to make sense of
    return "\n".join(inline), "\n".join(_tidy(rule) for rule in kept)


def _sort_rule(rule: str, inline: list[str], kept: list[str]) -> None:
    prelude, _, body = rule.partition("{")
    if prelude.lstrip().startswith("@"):
        kept.append(rule)
        return
    selectors = [s.strip() for s in prelude.split(",") if s.strip()]
    plain = [s for s in selectors if not re.search(r"[\[:]", s)]
    others = [s for s in selectors if s not in plain]
    if plain:
        inline.append(f"{', '.join(plain)} {{{body}")
    if others:
        kept.append(f"{', '.join(others)} {{{body}")


def _tidy(rule: str) -> str:
    return "\n".join(line.strip() for line in rule.splitlines() if line.strip())


def inline_css(html: str) -> str:
    """Inline the CSS with premailer; what cannot be inlined (dark mode, mobile) stays in a <style> block."""
    premailer = _premailer()
    import cssutils

    # premailer validates every inline style it merges against cssutils' CSS profiles, and building those
    # validators compiles regular expressions that cost about 0.15 s per process: more than the rest of the
    # build. Validation only logs (we silence it); the output is the same without the profiles.
    if cssutils.profile.knownNames:
        cssutils.profile.removeProfile(all=True)

    doctype = "<!doctype html>"
    result = premailer.Premailer(
        keep_uninlinable(html),
        remove_classes=False,
        strip_important=False,
        keep_style_tags=False,
        allow_network=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        cssutils_logging_handler=logging.NullHandler(),
    ).transform()
    if not result.lower().startswith("<!doctype"):
        result = f"{doctype}\n{result}"
    return str(result)
