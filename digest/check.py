"""A built digest (out/<slug>/) -> findings: what a subscriber or a mail client would trip over.

Each finding has a severity (error or warning), a rule id, what is wrong, where to fix it (an item file
or a template, with a line when one can be found) and how. `check` exits non-zero on errors, and with
--strict on warnings too.

What is linted is what the build wrote, and only that: digest.html (the email as sent, preview values
filled in), digest.txt, digest.mjml (the MJML that was compiled), and from manifest.json the subject, the
preheader, the web version's address and the items as they were built. items/ is not read (an item file
added or edited since the build changes nothing); the templates folder only serves to name the template
file and line where a finding is fixed. mjml-python (MRML) compiles without
validating: it silently drops unknown tags and ignores unknown attributes. So the MJML rules here are our
own: unknown mj-* tags, attributes a component does not have, components in a parent that cannot hold them,
raw HTML outside mj-text/mj-raw, and mj-image without alt. Attribute values (colours, units) are not checked.
"""

from __future__ import annotations

import html as htmllib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from digest import outdir
from digest.build import GMAIL_CLIP_BYTES
from digest.config import Config
from digest.fsutil import rel_path
from digest.render import HTML_TEMPLATE, TEXT_TEMPLATE, default_templates_dir
from digest.window import Window

Severity = Literal["error", "warning"]

GMAIL_WARN_BYTES = 90 * 1024
TEXT_WIDTH = 78
SUBJECT_MAX = 78
PREHEADER_MAX = 100


@dataclass(frozen=True)
class Finding:
    """One problem: severity, rule id, what is wrong, where to fix it, how."""

    severity: Severity
    rule: str
    message: str
    where: str
    fix: str


@dataclass(frozen=True)
class ItemRef:
    """What the linter needs to know of one item, as built: its text, links and source file."""

    title: str
    source: str  # relative to the workspace root, e.g. items/2021-03-23-foo.md
    summary: str = ""
    body: str = ""
    url: str | None = None
    image: str | None = None
    image_alt: str | None = None

    def field_of(self, needle: str) -> str | None:
        """The name of the field (title, summary, body, url, image) whose text holds the needle."""
        n = _norm(needle)
        if not n:
            return None
        fields = {
            "title": self.title,
            "summary": self.summary,
            "body": self.body,
            "url": self.url or "",
            "image": self.image or "",
        }
        return next((name for name, text in fields.items() if text and n in _norm(text)), None)


@dataclass(frozen=True)
class BuiltDigest:
    """The built digest, as the rules see it."""

    html: str
    text: str
    subject: str
    preheader: str
    mjml: str
    web_url: str
    unsubscribe_url: str
    items: tuple[ItemRef, ...] = ()
    html_bytes: int = 0
    root: Path = field(default_factory=Path.cwd)
    templates_dir: Path | None = None
    config_name: str = "digest.toml"

    def template(self, name: str, *needles: str) -> str:
        """Where a template problem is fixed: the workspace's own template if it has one, else the packaged
        default; with the line of the first needle found (tried in order), if any is."""
        candidates = []
        if self.templates_dir is not None and (self.templates_dir / name).is_file():
            candidates.append(self.templates_dir / name)
        candidates.append(default_templates_dir() / name)
        for needle in needles:
            for path in candidates:
                line = _find_line(path, needle)
                if line:
                    return self._shown(path, line)
        return self._shown(candidates[0], None)

    def _shown(self, path: Path, line: int | None) -> str:
        at = f":{line}" if line else ""
        if self.templates_dir is not None and path.parent.resolve() == self.templates_dir.resolve():
            return rel_path(path, self.root) + at
        return f"default/{path.name}{at} (the packaged default: copy it to templates/ to change it)"

    def item_for(self, *needles: str) -> ItemRef | None:
        """The item whose fields contain one of the needles (normalised), if any."""
        found = self._item_field(needles)
        return found[0] if found else None

    def where(self, template: str, *needles: str) -> str:
        """The item file holding one of the needles (and in which field), else the template.

        The item file is named, not read: it may have changed since the build.
        """
        found = self._item_field(needles)
        return f"{found[0].source} ({found[1]})" if found else self.template(template, *needles)

    def _item_field(self, needles: tuple[str, ...]) -> tuple[ItemRef, str] | None:
        for needle in needles:
            for item in self.items:
                field_name = item.field_of(needle)
                if field_name:
                    return item, field_name
        return None


@dataclass(frozen=True)
class Report:
    """All findings for one built digest."""

    folder: Path
    window: str
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        """How many findings are errors."""
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        """How many findings are warnings."""
        return sum(f.severity == "warning" for f in self.findings)

    def failed(self, *, strict: bool) -> bool:
        """Errors fail the check; with strict, warnings do too."""
        return self.errors > 0 or (strict and self.warnings > 0)

    def as_json(self, *, strict: bool) -> str:
        """The report for CI: counts, pass/fail and every finding."""
        data = {
            "folder": str(self.folder),
            "window": self.window,
            "strict": strict,
            "passed": not self.failed(strict=strict),
            "errors": self.errors,
            "warnings": self.warnings,
            "findings": [asdict(f) for f in self.findings],
        }
        return json.dumps(data, indent=2, ensure_ascii=False)


# ---- reading the built digest ----


def load_built(config: Config, window: Window) -> BuiltDigest:
    """Read what the build wrote in out/<slug>/; never items/ or the templates as they are now."""
    built = outdir.load(outdir.folder_of(config.paths.out, window.slug))
    manifest = built.manifest
    html_bytes = built.read_text("digest.html").encode()
    text = built.read_text("digest.txt")
    mjml_source = built.read_text("digest.mjml")
    items = tuple(
        ItemRef(
            title=i.title,
            source=i.source,
            summary=i.summary,
            body=i.body or "",
            url=i.url,
            image=i.image,
            image_alt=i.image_alt,
        )
        for i in manifest.items
    )
    web_url = manifest.web_url
    unsubscribe_url = manifest.preview_values["unsubscribe_url"]
    return BuiltDigest(
        html=html_bytes.decode("utf-8", errors="replace"),
        text=text,
        subject=manifest.subject,
        preheader=manifest.preheader,
        mjml=mjml_source,
        web_url=web_url,
        unsubscribe_url=unsubscribe_url,
        items=items,
        html_bytes=len(html_bytes),
        root=config.paths.root,
        templates_dir=config.paths.templates,
        config_name=rel_path(config.paths.config_file, config.paths.root)
        if config.paths.config_file
        else "digest.toml",
    )


def check(config: Config, window: Window) -> Report:
    """Lint the built digest of a window."""
    parts = load_built(config, window)
    folder = outdir.folder_of(config.paths.out, window.slug)
    return Report(folder=folder, window=window.slug, findings=tuple(lint(parts)))


def lint(parts: BuiltDigest) -> list[Finding]:
    """Every rule over the parts, in a stable order."""
    doc = parse_html(parts.html)
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule(parts, doc))
    return findings


# ---- the HTML, as the rules see it ----


@dataclass
class Link:
    """An <a> element."""

    href: str | None
    text: str
    line: int


@dataclass
class Image:
    """An <img> element."""

    src: str
    alt: str | None
    line: int
    width: str = ""
    height: str = ""


@dataclass
class Doc:
    """Links, images, element ids and the visible text of an HTML document."""

    links: list[Link] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    text: str = ""


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_HIDDEN_TAGS = {"head", "style", "script", "title", "template"}


class _HtmlReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.doc = Doc()
        self.stack: list[tuple[str, bool]] = []  # (tag, hidden)
        self.link: Link | None = None
        self.chunks: list[str] = []

    def _hidden(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.doc.ids.add(str(a["id"]))
        if a.get("name") and tag == "a":
            self.doc.ids.add(str(a["name"]))
        line = self.getpos()[0]
        if tag == "img":
            self.doc.images.append(
                Image(a.get("src") or "", a.get("alt"), line, a.get("width") or "", a.get("height") or "")
            )
            if self.link is not None and a.get("alt"):
                self.link.text += " " + str(a["alt"])
        if tag == "a":
            self.link = Link(a.get("href"), "", line)
            self.doc.links.append(self.link)
        if tag in _VOID:
            return
        style = (a.get("style") or "").replace(" ", "").lower()
        hidden = self._hidden() or tag in _HIDDEN_TAGS or "display:none" in style
        self.stack.append((tag, hidden))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self.link = None
        if any(t == tag for t, _ in self.stack):
            while self.stack:
                if self.stack.pop()[0] == tag:
                    break

    def handle_data(self, data: str) -> None:
        if self._hidden():
            return
        self.chunks.append(data)
        if self.link is not None:
            self.link.text += data


def parse_html(source: str) -> Doc:
    """Read links, images, ids and visible text out of an HTML document."""
    reader = _HtmlReader()
    reader.feed(source)
    reader.close()
    reader.doc.text = " ".join(reader.chunks)
    return reader.doc


# ---- the rules ----

Rule = Callable[[BuiltDigest, Doc], Iterable[Finding]]


def rule_html_size(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """Gmail clips an HTML part over 102 KB (warn from 90 KB)."""
    size = parts.html_bytes or len(parts.html.encode())
    fix = "set [categories] limit in digest.toml (the rest go to the web version), or shorten summaries"
    where = f"{parts.config_name} ([categories] limit)"
    if size > GMAIL_CLIP_BYTES:
        yield Finding(
            "error",
            "html-size",
            f"digest.html is {size / 1024:.1f} KB: Gmail clips messages over 102 KB and hides the rest",
            where,
            fix,
        )
    elif size >= GMAIL_WARN_BYTES:
        yield Finding(
            "warning",
            "html-size",
            f"digest.html is {size / 1024:.1f} KB, close to the 102 KB where Gmail clips messages",
            where,
            fix,
        )


def rule_img_alt(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """Every image needs alt text (screen readers, clients that block images)."""
    for img in doc.images:
        if img.alt is None or not img.alt.strip():
            if img.alt is not None and img.width in ("0", "1") and img.height in ("0", "1"):
                continue  # a tracking pixel or spacer: alt="" is right for it
            what = "no alt attribute" if img.alt is None else "an empty alt text"
            item = parts.item_for(img.src)
            where = parts.where(HTML_TEMPLATE, img.src)
            fix = 'add alt="what the image shows" to the <img> (or mj-image) in the template'
            if item is not None and not item.image_alt:
                fix = "give the item an image_alt describing the picture"
            elif item is not None:  # the item has its text: the template does not use it
                where = parts.template(HTML_TEMPLATE, "image_alt", "<mj-image", "<img")
                fix = 'give the image alt="{{ item.image_alt }}" in the template (the item has the text)'
            yield Finding(
                "error" if img.alt is None else "warning",
                "img-alt",
                f"digest.html:{img.line}: the image {_short(img.src)} has {what}",
                where,
                fix,
            )


def rule_links(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """Links must be absolute http(s) or mailto; in-page #anchors must exist."""
    for link in doc.links:
        href = (link.href or "").strip()
        label = _short(_norm_space(link.text)) or "(no text)"
        if not href:
            yield Finding(
                "error",
                "link-empty",
                f"digest.html:{link.line}: the link {label} has an empty address",
                parts.where(HTML_TEMPLATE, link.text),
                "give the link an absolute https:// address, or remove the <a>",
            )
            continue
        if href.startswith("#"):
            if href[1:] not in doc.ids:
                yield Finding(
                    "error",
                    "link-anchor",
                    f"digest.html:{link.line}: the link {label} points to {href}, which is not in the email",
                    parts.where(HTML_TEMPLATE, href),
                    f'add id="{href[1:]}" to the heading it should jump to, or fix the link',
                )
            continue
        parts_ = urlsplit(href)
        scheme = parts_.scheme.lower()
        if scheme in ("http", "https") and parts_.netloc:
            continue
        if scheme == "mailto" and len(href) > len("mailto:"):
            continue
        if not scheme:
            yield Finding(
                "error",
                "link-relative",
                f"digest.html:{link.line}: the link {label} goes to {href!r}, a relative address: "
                "mail clients have no base address to resolve it against",
                parts.where(HTML_TEMPLATE, href),
                f"use an absolute address (the web version's folder is {parts.web_url})",
            )
        else:
            yield Finding(
                "error",
                "link-scheme",
                f"digest.html:{link.line}: the link {label} goes to {_short(href)}: only http(s) and mailto "
                "links work in mail clients",
                parts.where(HTML_TEMPLATE, href),
                "use an https:// or mailto: address",
            )


def rule_link_text(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """The same link text for different targets ("Read more" x 10) tells a screen reader nothing."""
    targets: dict[str, dict[str, int]] = {}
    shown: dict[str, str] = {}
    for link in doc.links:
        text = _norm_space(link.text)
        href = (link.href or "").strip()
        if not text or not href:
            continue
        key = text.casefold()
        shown.setdefault(key, text)
        targets.setdefault(key, {}).setdefault(href, link.line)
    for key, hrefs in targets.items():
        if len(hrefs) > 1:
            first = min(hrefs.values())
            yield Finding(
                "warning",
                "link-text",
                f"digest.html:{first}: the link text {_short(shown[key])} is used for {len(hrefs)} "
                "different addresses",
                parts.template(HTML_TEMPLATE, shown[key], shown[key].split()[0]),
                "make each link text say where it goes, e.g. include the item title",
            )


def rule_items_in_both(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """Every item must be in the HTML and in the text part."""
    html_text = _norm(doc.text)
    text = _norm(parts.text)
    for item in parts.items:
        title = _norm(item.title)
        in_html, in_text = title in html_text, title in text
        if in_html and not in_text:
            yield Finding(
                "error",
                "item-missing-text",
                f"the item {_short(item.title)} is in the HTML but not in the text part",
                parts.template(TEXT_TEMPLATE),
                "show every item in digest.txt.j2 (text-only readers miss it otherwise)",
            )
        elif in_text and not in_html:
            yield Finding(
                "error",
                "item-missing-html",
                f"the item {_short(item.title)} is in the text part but not in the HTML",
                parts.template(HTML_TEMPLATE),
                "show every item in digest.mjml.j2",
            )
        elif not in_html and not in_text:
            yield Finding(
                "error",
                "item-missing-html",
                f"the item {_short(item.title)} is in neither the HTML nor the text part",
                item.source,
                "the templates drop it: check their loops and conditions",
            )


_URL_IN_TEXT = re.compile(r"(?:https?://|mailto:)[^\s<>\"']+")


def _text_urls(text: str) -> dict[str, int]:
    urls: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        for m in _URL_IN_TEXT.finditer(line):
            url = m[0].rstrip(".,;:!?")
            while url.endswith(")") and url.count("(") < url.count(")"):
                url = url[:-1]
            urls.setdefault(url, n)
    return urls


def _base(url: str) -> str:
    return htmllib.unescape(url).split("#", 1)[0].strip()


def rule_links_in_both(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """Every link of the HTML must be in the text part, and every URL of the text in the HTML."""
    html_urls: dict[str, int] = {}
    for link in doc.links:
        href = (link.href or "").strip()
        if href.lower().startswith(("http://", "https://", "mailto:")):
            html_urls.setdefault(_base(href), link.line)
    html_also = {_base(i.src) for i in doc.images}
    text_urls = {_base(u): n for u, n in _text_urls(parts.text).items()}
    for url, line in html_urls.items():
        if url not in text_urls:
            yield Finding(
                "warning",
                "link-missing-text",
                f"digest.html:{line}: the link {_short(url)}{_of_item(parts, url)} is not in the text part",
                parts.template(TEXT_TEMPLATE),
                "print the address in digest.txt.j2 too, so text-only readers can follow it",
            )
    for url, line in text_urls.items():
        if url not in html_urls and url not in html_also:
            yield Finding(
                "warning",
                "link-missing-html",
                f"digest.txt:{line}: the address {_short(url)}{_of_item(parts, url)} "
                "is not linked in the HTML",
                parts.template(HTML_TEMPLATE),
                "link it in digest.mjml.j2 too",
            )


def _via(where: str, template: str) -> str:
    """An item's text, as a template shows it: both places may need the fix."""
    return where if where.split(":")[0] == template.split(":")[0] else f"{where} (shown by {template})"


def _of_item(parts: BuiltDigest, url: str) -> str:
    item = parts.item_for(url)
    return f" (of {item.source})" if item else ""


def display_width(line: str) -> int:
    """Columns a line takes in a terminal or a monospaced mail client (wide characters count two)."""
    width = 0
    for c in line:
        if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return width


def rule_text_width(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """Text lines over 78 columns wrap badly; a line that is only a URL cannot be broken and is fine."""
    for n, line in enumerate(parts.text.splitlines(), 1):
        width = display_width(line)
        if width <= TEXT_WIDTH:
            continue
        token = line.strip()
        if " " not in token and _URL_IN_TEXT.fullmatch(token):
            continue
        yield Finding(
            "warning",
            "text-width",
            f"digest.txt:{n}: the line is {width} columns wide (at most {TEXT_WIDTH}): "
            f"{_short(line.strip())}",
            f"{parts.config_name} (subject)"
            if line.strip() == parts.subject
            else _via(parts.where(TEXT_TEMPLATE, *_phrases(line)), parts.template(TEXT_TEMPLATE)),
            "wrap it with the `wrap` filter in digest.txt.j2, or put a long address on a line of its own",
        )


def rule_subject_preheader(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """A subject over 78 and a preheader over 100 characters are cut off in the inbox list."""
    if len(parts.subject) > SUBJECT_MAX:
        yield Finding(
            "warning",
            "subject-length",
            f"the subject is {len(parts.subject)} characters (at most {SUBJECT_MAX}): "
            f"{_short(parts.subject)}",
            f"{parts.config_name} (subject)",
            "shorten `subject` in digest.toml (or the title it uses)",
        )
    if len(parts.preheader) > PREHEADER_MAX:
        yield Finding(
            "warning",
            "preheader-length",
            f"the preheader is {len(parts.preheader)} characters (at most {PREHEADER_MAX})",
            f"{parts.config_name} (preheader)",
            "shorten `preheader` in digest.toml",
        )


_UNSUBSCRIBE_WORDS = re.compile(
    r"unsubscribe|opt[ -]?out|abmelden|désabonner|desuscribir|darse de baja", re.I
)


def rule_required_links(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """The email needs an unsubscribe link and a link to the web version, in both parts."""
    hrefs = {_base(link.href or "") for link in doc.links}
    unsub = _base(parts.unsubscribe_url)
    html_unsub = unsub in hrefs or any(
        _UNSUBSCRIBE_WORDS.search(link.text) and (link.href or "").strip() for link in doc.links
    )
    text_unsub = parts.unsubscribe_url in parts.text or any(
        _UNSUBSCRIBE_WORDS.search(line) and _URL_IN_TEXT.search(line) for line in parts.text.splitlines()
    )
    for ok, part, template in ((html_unsub, "HTML", HTML_TEMPLATE), (text_unsub, "text part", TEXT_TEMPLATE)):
        if not ok:
            yield Finding(
                "error",
                "unsubscribe-missing",
                f"the {part} has no unsubscribe link",
                parts.template(template),
                "add a link to {{ unsubscribe_url }} (each recipient gets their own)",
            )
    web = _base(parts.web_url)
    for ok, part, template in (
        (web in hrefs, "HTML", HTML_TEMPLATE),
        (web in {_base(u) for u in _text_urls(parts.text)}, "text part", TEXT_TEMPLATE),
    ):
        if not ok:
            yield Finding(
                "error",
                "web-link-missing",
                f"the {part} has no link to the web version ({parts.web_url})",
                parts.template(template),
                'add a link to {{ web_url }} ("View this digest in your browser")',
            )


def rule_mjml(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """MJML problems that mjml-python passes over in silence."""
    for line, rule, severity, message, needle, fix in lint_mjml(parts.mjml):
        yield Finding(
            severity,
            rule,
            f"line {line} of the generated MJML: {message}",
            parts.template(HTML_TEMPLATE, needle),
            fix,
        )


RULES: tuple[Rule, ...] = (
    rule_html_size,
    rule_img_alt,
    rule_links,
    rule_link_text,
    rule_items_in_both,
    rule_links_in_both,
    rule_text_width,
    rule_subject_preheader,
    rule_required_links,
    rule_mjml,
)


# ---- MJML ----

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

MjmlProblem = tuple[int, str, Severity, str, str, str]  # line, rule, severity, message, needle, fix


class _MjmlReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.raw: str | None = None  # inside an ending tag: its content is HTML
        self.problems: list[MjmlProblem] = []

    def _add(self, rule: str, severity: Severity, message: str, needle: str, fix: str) -> None:
        self.problems.append((self.getpos()[0], rule, severity, message, needle, fix))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], *, closed: bool) -> None:
        if self.raw is not None:
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
        known = MJML_ATTRIBUTES.get(tag, "unknown")
        in_attributes = parent in ("mj-attributes",)
        if known == "unknown":
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
            allowed = known if not in_attributes else MJML_ATTRIBUTES.get(tag)
            if allowed is not None and tag not in ("mj-all", "mj-class"):
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
        if closed:
            return
        self.stack.append(tag)
        if tag in _ENDING:
            self.raw = tag

    def handle_endtag(self, tag: str) -> None:
        if self.raw is not None:
            if tag != self.raw:
                return
            self.raw = None
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass


def _similar(a: str, b: str) -> bool:
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def lint_mjml(source: str) -> list[MjmlProblem]:
    """Problems in an MJML document that MRML does not report: (line, rule, severity, what, needle, fix)."""
    reader = _MjmlReader()
    reader.feed(source)
    reader.close()
    return reader.problems


# ---- helpers ----


def _norm_space(text: str) -> str:
    return " ".join(text.split())


def _norm(text: str) -> str:
    return _norm_space(htmllib.unescape(text)).casefold()


def _short(text: str, limit: int = 60) -> str:
    text = _norm_space(text)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _phrases(line: str) -> list[str]:
    words = line.split()
    return [" ".join(words[i : i + 4]) for i in range(0, max(len(words) - 3, 1), 2)][:6]


def _find_line(path: Path, needle: str) -> int | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    n = needle.strip()
    if not n:
        return None
    # Jinja comments are blanked (keeping their line breaks): a mention in a comment is not the place.
    text = re.sub(r"\{#.*?#\}", lambda m: "\n" * m[0].count("\n"), text, flags=re.S)
    idx = text.find(n)
    if idx < 0:
        idx = text.casefold().find(n.casefold())
    return text.count("\n", 0, idx) + 1 if idx >= 0 else None


def format_report(report: Report) -> str:
    """The findings for people: one block per finding."""
    lines: list[str] = []
    for f in report.findings:
        lines.append(f"{f.severity}: {f.message} [{f.rule}]")
        lines.append(f"    where: {f.where}")
        lines.append(f"    fix:   {f.fix}")
    return "\n".join(lines)
