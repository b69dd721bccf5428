"""Client support: the HTML and CSS features the built email uses, looked up in the caniemail data for the
clients the team cares about ([check] clients).

The data is caniemail.com's (MIT), shipped as a dated copy beside this module (caniemail.json; the licence
is in caniemail.LICENSE; scripts/refresh_caniemail.py refreshes it). Nothing here is a hand-kept support
list: digest/check/features.py says which caniemail feature a piece of the HTML is, and this module which
features *matter* (`ESSENTIAL`): those whose absence loses content or a function and that the template can
avoid. The rest (media queries, dark-mode rules, rounded corners) degrade gracefully where unsupported and
are not findings. A client's support is its latest test in the data (the last version listed).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.check.built import BuiltDigest
from digest.check.features import Use, used_features
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


def features(source: str, data: CanIEmail | None = None) -> dict[str, Use]:
    """The caniemail features an HTML document uses, each with its first use (slugs the data lacks: none)."""
    return used_features(source, (data or load_data()).features)


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
