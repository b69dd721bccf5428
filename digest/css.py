"""HTML -> HTML with the CSS inlined (premailer), keeping what cannot be inlined where mail clients read it.

Media queries (dark mode, phones) and attribute selectors (Outlook.com's [data-ogsc] dark rules) cannot be
inlined: premailer would drop them. They are moved, unchanged, into a <style> block premailer leaves alone.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import logging
import os
import re
import sys
import types
import urllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar

from digest.fsutil import atomic_write


def _premailer() -> Any:
    """Import premailer without what it needs only to fetch stylesheets over the network, and without
    cssutils until premailer first uses it.

    digest never lets premailer touch the network (allow_network=False; the @import rules go to the block
    premailer leaves alone), and those imports cost about 95 ms per process, a third of a whole build:
    `requests` (about 80 ms: it builds an SSL context at import) and, through cssutils, `urllib.request`
    (http.client and ssl) and cssutils' fetcher (importlib.metadata). A stand-in for requests refuses every
    call. cssutils (about 40 ms) parses CSS: with every parse a build needs in the memo (ParseMemo), it is
    never imported; premailer holds a stand-in that imports it, as `_cssutils` does, on first use.
    """
    if "premailer" in sys.modules:
        return sys.modules["premailer"]
    stand_ins: dict[str, types.ModuleType] = {}
    if "requests" not in sys.modules:
        requests = stand_ins["requests"] = types.ModuleType("requests")
        requests.get = _refuse  # type: ignore[attr-defined]
    if "cssutils" not in sys.modules:
        stand_ins["cssutils"] = _CssutilsOnFirstUse("cssutils")
    sys.modules.update(stand_ins)
    try:
        import premailer
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return premailer


def _cssutils() -> Any:
    """cssutils, imported without its network fetcher, and set up as digest uses it (once per process)."""
    if "cssutils" in sys.modules:
        return _set_up(sys.modules["cssutils"])
    stand_ins: dict[str, types.ModuleType] = {}
    # cssutils takes the fetcher of its Google App Engine module when that imports, else the one of its
    # own module (which imports urllib.request and importlib.metadata). urllib.request is imported for real
    # the first time cssutils touches it (to turn a file path into a URL).
    fetch = stand_ins["cssutils._fetchgae"] = types.ModuleType("cssutils._fetchgae")
    fetch._defaultFetcher = _fetch_nothing  # type: ignore[attr-defined]
    if "urllib.request" not in sys.modules:
        stand_ins["urllib.request"] = _OnFirstUse("urllib.request")
    sys.modules.update(stand_ins)
    if "urllib.request" in stand_ins:
        urllib.request = stand_ins["urllib.request"]  # type: ignore[attr-defined]  # for `urllib.request.x`
    try:
        import cssutils
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return _set_up(cssutils)


def _set_up(cssutils: Any) -> Any:
    """cssutils as digest uses it, whoever imported it: quiet, and without its validation profiles."""
    if getattr(cssutils, "_digest_set_up", False):
        return cssutils
    # premailer validates every inline style it merges against cssutils' CSS profiles, and building those
    # validators compiles regular expressions that cost about 0.15 s per process: more than the rest of the
    # build. Validation only logs (silenced here: a template's odd property is the check's to report, not
    # a warning on every build); the output is the same without the profiles.
    if cssutils.profile.knownNames:
        cssutils.profile.removeProfile(all=True)
    cssutils.log.setLevel(logging.CRITICAL)
    cssutils._digest_set_up = True
    return cssutils


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("digest does not let premailer fetch anything over the network")


def _fetch_nothing(url: str) -> None:
    """cssutils' fetcher for @import: nothing is fetched (None: cssutils reports the URL as not found)."""
    return None


class _OnFirstUse(types.ModuleType):
    """A module imported for real the first time one of its names is used."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


class _CssutilsOnFirstUse(types.ModuleType):
    """premailer's name for cssutils: the real module, imported by `_cssutils` the first time it is used."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_cssutils(), name)


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


def inline_css(html: str, *, cache_dir: Path | None = None) -> str:
    """Inline the CSS with premailer; what cannot be inlined (dark mode, mobile) stays in a <style> block.

    With a cache_dir, premailer's parses of CSS text are kept there (see ParseMemo): the same HTML out,
    without parsing again, in the next build, the CSS the template writes every time."""
    premailer = _premailer()
    if "cssutils" in sys.modules:  # imported before digest needed it (by premailer or anyone)
        _set_up(sys.modules["cssutils"])
    memo = ParseMemo.of(cache_dir) if cache_dir is not None else None
    doctype = "<!doctype html>"
    page = keep_uninlinable(html)
    with _remembering(premailer, memo):
        result = _inliner(premailer)(
            page,
            memo=memo,
            # premailer parses every <img style> with cssutils to give a floating image an `align` (for
            # Outlook). An image can float only where the page says "float"; elsewhere the pass does nothing,
            # and skipping it spares a build cssutils' import when the memo has every other parse.
            align_floating_images="float" in page.lower(),
            remove_classes=False,
            strip_important=False,
            keep_style_tags=False,
            allow_network=False,
            disable_validation=True,
        ).transform()
    if memo is not None:
        memo.save()
    if not result.lower().startswith("<!doctype"):
        result = f"{doctype}\n{result}"
    return str(result)


Rules = list[tuple[tuple[int, ...], str, str]]
Pairs = list[tuple[str, str]]
MEMO_NAME = "css-parses.json"


class ParseMemo:
    """premailer's two parses of CSS text, kept in the cache folder between builds.

    premailer parses (with cssutils) each <style> block into rules and each style attribute into
    properties; the first build of a process spends about 25 ms on it, for CSS that the template writes
    the same in every build. Both parses are pure functions of the text (with our fixed options), so
    their results are kept, as JSON, under the versions of premailer and cssutils that made them. Only
    what a process used is written back, so the file never outgrows one build's CSS.
    """

    _open: ClassVar[dict[Path, ParseMemo]] = {}

    def __init__(self, path: Path, version: str) -> None:
        self.path, self.version = path, version
        self.rules: dict[str, Rules] = {}
        self.pairs: dict[str, Pairs] = {}
        self.used: tuple[set[str], set[str]] = (set(), set())
        self.dirty = False
        try:
            data = json.loads(path.read_bytes())
            if data.get("version") == version:
                self.rules = {k: [(tuple(s), sel, b) for s, sel, b in v] for k, v in data["rules"].items()}
                self.pairs = {k: [(n, v) for n, v in p] for k, p in data["pairs"].items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            pass  # no memo yet, or not ours to read: parse as without one

    @classmethod
    def of(cls, cache_dir: Path) -> ParseMemo:
        """The memo of this cache folder, read once per process."""
        path = cache_dir / MEMO_NAME
        if path not in cls._open:
            cls._open[path] = cls(path, _versions())
        return cls._open[path]

    def rules_of(self, key: str, parse: Callable[[], tuple[Rules, list[Any]]]) -> tuple[Rules, list[Any]]:
        """A <style> block's rules; one with rules premailer leaves in the block (leftover) is not kept."""
        self.used[0].add(key)
        if key in self.rules:
            return list(self.rules[key]), []
        rules, leftover = parse()
        if not leftover:
            self.rules[key], self.dirty = rules, True
        return rules, leftover

    def pairs_of(self, key: str, parse: Callable[[], Pairs]) -> Pairs:
        """A style attribute's properties, as (name, value) pairs."""
        self.used[1].add(key)
        if key not in self.pairs:
            self.pairs[key], self.dirty = parse(), True
        return list(self.pairs[key])

    def save(self) -> None:
        """Write what this process used, when it parsed anything new; a read-only cache is no error."""
        if not self.dirty:
            return
        rules = {k: v for k, v in self.rules.items() if k in self.used[0]}
        pairs = {k: v for k, v in self.pairs.items() if k in self.used[1]}
        data = {"version": self.version, "rules": rules, "pairs": pairs}
        with suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(data, separators=(",", ":")).encode())
            self.dirty = False


def _versions() -> str:
    """What the memo's results depend on: premailer, cssutils (by their files) and this module's options."""
    import premailer

    # cssutils by its file, not imported: a build whose parses are all in the memo never imports it.
    spec = importlib.util.find_spec("cssutils")
    files = [os.stat(path or "") for path in (premailer.premailer.__file__, spec and spec.origin)]
    return f"1 {premailer.__version__} " + " ".join(f"{f.st_size}:{f.st_mtime_ns}" for f in files)


@functools.cache
def _inliner(premailer: Any) -> Any:
    """premailer.Premailer, with its <style> parse going through a memo (memo=None: as premailer does)."""

    class Inliner(premailer.Premailer):  # type: ignore[misc]
        def __init__(self, html: str, *, memo: ParseMemo | None, **options: Any) -> None:
            super().__init__(html, **options)
            self.memo = memo

        def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[Rules, list[Any]]:
            parse = super()._parse_style_rules
            if self.memo is None:
                return parse(css_body, ruleset_index)  # type: ignore[no-any-return]
            return self.memo.rules_of(f"{ruleset_index}:{css_body}", lambda: parse(css_body, ruleset_index))

    return Inliner


@contextmanager
def _remembering(premailer: Any, memo: ParseMemo | None) -> Iterator[None]:
    """premailer's style-attribute parse (a module function it calls by name) through `memo`, meanwhile.

    premailer.premailer and premailer.merge_style both call `csstext_to_pairs`; both names are pointed
    at a function that asks the memo first, and put back afterwards."""
    if memo is None:
        yield
        return
    modules: list[Any] = [sys.modules["premailer.premailer"], sys.modules["premailer.merge_style"]]
    original = modules[1].csstext_to_pairs

    def remembered(csstext: str, validate: bool = True) -> Pairs:
        key = f"{int(validate)}:{csstext}"
        return memo.pairs_of(key, lambda: original(csstext, validate=validate))

    # The original finds its lock through its module's name for it, which now names this function.
    remembered._lock = getattr(original, "_lock", None)  # type: ignore[attr-defined]
    for module in modules:
        module.csstext_to_pairs = remembered
    try:
        yield
    finally:
        for module in modules:
            module.csstext_to_pairs = original
