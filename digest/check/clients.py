"""Client support: the HTML and CSS features the built email uses, looked up in the caniemail data for the
clients the team cares about ([check] clients).

The data is caniemail.com's (MIT), shipped as a dated copy beside this module (caniemail.json; the licence
is in caniemail.LICENSE; scripts/refresh_caniemail.py refreshes it). Nothing here is a hand-kept support
list: this module only says which caniemail feature a piece of the HTML is (`features`) and which features
*matter* (`ESSENTIAL`): those whose absence loses content or a function and that the template can avoid.
The rest (media queries, dark-mode rules, rounded corners) degrade gracefully where unsupported and are
not findings. A client's support is its latest test in the data (the last version listed).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from lxml import html as lxml_html

from digest.check.built import BuiltDigest
from digest.check.report import Finding
from digest.errors import DigestError
from digest.render import HTML_TEMPLATE

DATA_FILE = Path(__file__).with_name("caniemail.json")
FEATURE_URL = "https://www.caniemail.com/features/{slug}/"

# The names [check] clients takes besides caniemail's own `family` and `family.platform` (e.g. gmail.ios).
ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "gmail": (("gmail", "desktop-webmail"), ("gmail", "ios"), ("gmail", "android")),
    "outlook-windows": (("outlook", "windows"),),
    "outlook-com": (("outlook", "outlook-com"),),
    "outlook-mac": (("outlook", "macos"),),
    "apple-mail": (("apple-mail", "macos"),),
    "ios-mail": (("apple-mail", "ios"),),
    "yahoo": (("yahoo", "desktop-webmail"), ("yahoo", "ios"), ("yahoo", "android")),
}


@dataclass(frozen=True)
class Need:
    """Why a feature matters and how to do without it; with `note`, only clients whose caniemail note
    matches it count (the feature works there, but not in the form the HTML uses)."""

    harm: str
    fix: str
    note: str | None = None


_PICTURE = Need("the picture is not shown", "use a PNG or JPEG image")
_LAYOUT = Need("the layout falls apart", "lay it out with tables (mj-section and mj-column make them)")
_SIZE = Need("the size is lost", "give a fixed size (and a media query for small screens)")
_STYLES = Need("the stylesheet is not loaded", "put the styles in the template")
_FORM = Need("the form does not work", "link to a form on the web version instead")
ESSENTIAL: dict[str, Need] = {
    "html-anchor-links:id": Need(
        "in-page links whose target is only an `id` go nowhere",
        'put an empty <a name="{target}"></a> just before the element with id="{target}" (keep the id too)',
        note=r"not with `id`",
    ),
    **dict.fromkeys(["css-display-flex", "css-display-grid", "css-position"], _LAYOUT),
    **dict.fromkeys(["css-unit-calc", "css-function-clamp", "css-function-min", "css-function-max"], _SIZE),
    **dict.fromkeys(["html-link", "css-at-import"], _STYLES),
    **dict.fromkeys(
        [f"image-{x}" for x in ("svg", "webp", "avif", "heif", "tiff", "bmp")] + ["html-svg"], _PICTURE
    ),
    **dict.fromkeys(
        ["html-form", "html-input-text", "html-input-submit", "html-select", "html-textarea"], _FORM
    ),
    "html-button-submit": _FORM,
    "css-variables": Need("the values given by var() are lost", "write the values themselves"),
    "image-base64": Need("the picture is not shown", "link the image (https) instead of embedding it"),
    "html-video": Need("the video does not play", "show an image that links to the video"),
    "html-audio": Need("the sound does not play", "link to the recording"),
    "html-object": Need("the embedded object is not shown", "link to it"),
    "html-image-maps": Need("the image's links do not work", "use separate linked images"),
}


@dataclass(frozen=True)
class Support:
    """One client's latest caniemail result for a feature: y, a (partial), n or u, with its notes."""

    status: str
    notes: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class Client:
    """A mail client as caniemail names it: family (gmail) and platform (ios), and how to show it."""

    family: str
    platform: str
    name: str


@dataclass(frozen=True)
class CanIEmail:
    """The caniemail data: when it was compiled, its features by slug, and its client names."""

    updated: str
    features: Mapping[str, Mapping[str, Any]]
    families: Mapping[str, str]
    platforms: Mapping[str, str]

    def support(self, slug: str, client: Client) -> Support | None:
        """The client's latest result for the feature; None when the data does not know it."""
        stats = self.features.get(slug, {}).get("stats") or {}
        versions: Mapping[str, str] = (stats.get(client.family) or {}).get(client.platform) or {}
        if not versions:
            return None
        version, result = list(versions.items())[-1]  # listed oldest first
        status, *refs = result.split()
        by_num: Mapping[str, str] = self.features[slug].get("notes_by_num") or {}
        notes = tuple(by_num[r.lstrip("#")] for r in refs if r.lstrip("#") in by_num)
        return Support(status, notes, version)

    def client(self, family: str, platform: str) -> Client:
        """A client with its caniemail name (e.g. Gmail iOS, Outlook.com)."""
        fam = self.families.get(family, family)
        plat = self.platforms.get(platform, platform)
        return Client(family, platform, plat if plat.startswith(fam) else f"{fam} {plat}")


@functools.cache
def load_data(path: Path = DATA_FILE) -> CanIEmail:
    """Read the caniemail data; DigestError when the file is missing or not caniemail's JSON."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return CanIEmail(
            updated=str(raw["last_update_date"]),
            features={f["slug"]: f for f in raw["data"]},
            families=raw["nicenames"]["family"],
            platforms=raw["nicenames"]["platform"],
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DigestError(
            f"{path}: not the caniemail data ({err}); reinstall digest or run scripts/refresh_caniemail.py"
        ) from err


def resolve_clients(names: Iterable[str], data: CanIEmail) -> tuple[Client, ...]:
    """[check] clients -> caniemail clients: an alias (gmail, ios-mail, ...), a family, or family.platform."""
    known: dict[str, set[str]] = {}
    for feature in data.features.values():
        for family, platforms in (feature.get("stats") or {}).items():
            known.setdefault(family, set()).update(platforms)
    found: list[Client] = []
    for name in names:
        family, _, platform = name.partition(".")
        if name in ALIASES:
            pairs = ALIASES[name]
        elif family in known and (platform == "*" or "." not in name):
            pairs = tuple((family, p) for p in sorted(known[family]))
        elif family in known and platform in known[family]:
            pairs = ((family, platform),)
        else:
            raise DigestError(
                f"[check] clients: unknown mail client {name!r}; use one of {', '.join(ALIASES)}, "
                f"a caniemail family ({', '.join(sorted(known))}) or family.platform (e.g. gmail.ios)"
            )
        found.extend(data.client(f, p) for f, p in pairs if data.client(f, p) not in found)
    return tuple(found)


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
    def __init__(self, slugs: Mapping[str, Any]) -> None:
        self.slugs = slugs
        self.uses: dict[str, Use] = {}

    def add(self, key: str, example: str, line: int) -> None:
        if key.split(":", 1)[0] in self.slugs and key not in self.uses:
            self.uses[key] = Use(key, example, line)


def features(source: str, data: CanIEmail | None = None) -> dict[str, Use]:
    """The caniemail features an HTML document uses, each with its first use (slugs the data lacks: none)."""
    found = _Found((data or load_data()).features)
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


def client_findings(
    parts: BuiltDigest, clients: Iterable[str], *, data: CanIEmail | None = None
) -> list[Finding]:
    """A warning for each feature that matters the email uses and a chosen client lacks (or has in part)."""
    data = data or load_data()
    chosen = resolve_clients(clients, data)
    findings: list[Finding] = []
    for key, use in features(parts.html, data).items():
        need = ESSENTIAL.get(key)
        if need is None:
            continue
        lacking, partly, never = _judge(data, use.slug, need, chosen)
        if not lacking and not partly:
            continue
        said = []
        if lacking:
            said.append(f"{need.harm} in {', '.join(c.name for c in lacking)}")
        if partly:
            said.append("only partly supported in " + "; ".join(f"{c.name} ({n})" for c, n in partly))
        if never:
            said.append(f"no markup helps in {', '.join(c.name for c in never)}")
        title = data.features[use.slug].get("title", use.slug)
        needles = _needles(use)
        findings.append(
            Finding(
                "warning",
                "client-support",
                f"{title} ({use.example}, line {use.line} of digest.html): {'; '.join(said)} "
                f"(caniemail data of {data.updated[:10]})",
                parts.where(HTML_TEMPLATE, *needles),
                f"{need.fix.replace('{target}', _target(use))}; see {FEATURE_URL.format(slug=use.slug)}",
            )
        )
    return findings


def _judge(
    data: CanIEmail, slug: str, need: Need, chosen: Iterable[Client]
) -> tuple[list[Client], list[tuple[Client, str]], list[Client]]:
    """(clients lacking it, clients with partial support and why, clients where no form of it works)."""
    lacking: list[Client] = []
    partly: list[tuple[Client, str]] = []
    never: list[Client] = []
    for client in chosen:
        support = data.support(slug, client)
        if support is None:
            continue
        if need.note is not None:  # only where the form the HTML uses is what fails
            if support.status == "n":
                never.append(client)
            elif any(re.search(need.note, n) for n in support.notes):
                lacking.append(client)
        elif support.status == "n":
            lacking.append(client)
        elif support.status == "a":
            partly.append((client, " ".join(support.notes) or "no details"))
    return lacking, partly, never


def _needles(use: Use) -> tuple[str, ...]:
    """What to look for in the template (or an item) to name the line where the feature is used."""
    if use.key == "html-anchor-links:id":
        return f'id="{_target(use)}"', 'id="{{', 'id="'
    if use.example.startswith("<img"):
        src = use.example.split('"', 2)[1]
        return src, src.rsplit("/", 1)[-1]
    prop = use.example.split(":", 1)[0]
    return use.example, use.example.replace(":", ": ", 1), prop


def _target(use: Use) -> str:
    """The target of an in-page link's example (<a href="#news"> -> news)."""
    return use.example.partition('"#')[2].removesuffix('">')
