"""The rules: each reads the built digest (and its parsed HTML) and yields findings.

The email's rules (RULES) read digest.html, digest.txt, digest.mjml and the manifest; the web version's
(WEB_RULES) read index.html, a web page: relative links work there, so only its addresses, anchors and
images are checked.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from digest.check.built import BuiltDigest, norm, norm_space, short
from digest.check.contrast import rule_contrast, rule_web_contrast
from digest.check.darkmode import rule_dark_survives, rule_web_dark_survives
from digest.check.html import Doc
from digest.check.invisible import rule_invisible_characters
from digest.check.itemlinks import rule_item_links, summary_links
from digest.check.report import Finding
from digest.mjmlschema import lint_mjml
from digest.outdir.files import GMAIL_CLIP_BYTES
from digest.plaintext import display_width  # the text part is laid out and checked by one measure
from digest.render import HTML_TEMPLATE, TEXT_TEMPLATE

GMAIL_WARN_BYTES = 90 * 1024
TEXT_WIDTH = 78
SUBJECT_MAX = 78
PREHEADER_MAX = 100
EMAIL_PAGE = "digest.html"
WEB_PAGE = "index.html"

Rule = Callable[[BuiltDigest, Doc], Iterable[Finding]]

_URL_IN_TEXT = re.compile(r"(?:https?://|mailto:)[^\s<>\"']+")
_UNSUBSCRIBE_WORDS = re.compile(
    r"unsubscribe|opt[ -]?out|abmelden|désabonner|desuscribir|darse de baja", re.I
)


def rule_html_size(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """Gmail clips an HTML part over 102 KB (warn from 90 KB)."""
    size = len(parts.html.encode())
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


def img_alt(parts: BuiltDigest, doc: Doc, page: str) -> Iterable[Finding]:
    """Every image of a page needs alt text (screen readers, clients that block images)."""
    for img in doc.images:
        if img.alt is not None and img.alt.strip():
            continue
        if img.alt is not None and img.width in ("0", "1") and img.height in ("0", "1"):
            continue  # a tracking pixel or spacer: alt="" is right for it
        what = "no alt attribute" if img.alt is None else "an empty alt text"
        item = parts.item_for(img.src)
        # A template builds the address ("{{ web_url }}logo.png"): its file name is what it holds as written.
        where = parts.where(HTML_TEMPLATE, img.src, urlsplit(img.src).path.rsplit("/", 1)[-1])
        fix = 'add alt="what the image shows" to the <img> (or mj-image) in the template'
        if item is not None and not item.image_alt:
            fix = "give the item an image_alt describing the picture"
        elif item is not None:  # the item has its text: the template does not use it
            where = parts.template(HTML_TEMPLATE, "image_alt", "<mj-image", "<img")
            fix = 'give the image alt="{{ item.image_alt }}" in the template (the item has the text)'
        yield Finding(
            "error" if img.alt is None else "warning",
            "img-alt",
            f"{page}:{img.line}: the image {short(img.src)} has {what}",
            where,
            fix,
        )


def links(parts: BuiltDigest, doc: Doc, page: str, *, email: bool) -> Iterable[Finding]:
    """A page's links must have an address, http(s) or mailto (or, on the web, relative), and in-page
    #anchors must exist; an email has no base address, so its links must be absolute."""
    for link in doc.links:
        if link.href is None and link.named:
            continue  # <a name="top">: a target, not a link
        href = (link.href or "").strip()
        label = short(link.text) if link.text.strip() else "(no text)"
        if not href:
            yield Finding(
                "error",
                "link-empty",
                f"{page}:{link.line}: the link {label} has an empty address",
                parts.where(HTML_TEMPLATE, link.text),
                "give the link an absolute https:// address, or remove the <a>",
            )
            continue
        if href.startswith("#"):
            if href[1:] not in doc.ids:
                yield Finding(
                    "error",
                    "link-anchor",
                    f"{page}:{link.line}: the link {label} points to {href}, which is not in "
                    f"{'the email' if email else 'the web version'}",
                    parts.where(HTML_TEMPLATE, href),
                    f'add id="{href[1:]}" to the heading it should jump to, or fix the link',
                )
            continue
        split = urlsplit(href)
        scheme = split.scheme  # urlsplit gives it in lower case
        if scheme in ("http", "https") and split.netloc:
            continue
        if scheme == "mailto" and len(href) > len("mailto:"):
            continue
        if not scheme:
            if not email:
                continue  # the browser resolves it against the web version's address
            yield Finding(
                "error",
                "link-relative",
                f"{page}:{link.line}: the link {label} goes to {href!r}, a relative address: "
                "mail clients have no base address to resolve it against",
                parts.where(HTML_TEMPLATE, href),
                f"use an absolute address (the web version's folder is {parts.web_url})",
            )
            continue
        yield Finding(
            "error",
            "link-scheme",
            f"{page}:{link.line}: the link {label} goes to {short(href)}: only http(s) and mailto links "
            f"work in {'mail clients' if email else 'every browser'}",
            parts.where(HTML_TEMPLATE, href),
            "use an https:// or mailto: address",
        )


def rule_img_alt(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """The email's images need alt text."""
    return img_alt(parts, doc, EMAIL_PAGE)


def rule_links(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """The email's links must be absolute http(s) or mailto; in-page #anchors must exist."""
    return links(parts, doc, EMAIL_PAGE, email=True)


def rule_web_img_alt(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """The web version's images need alt text."""
    return img_alt(parts, doc, WEB_PAGE)


def rule_web_links(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """The web version's links must have a working scheme; its #anchors must exist in it."""
    return links(parts, doc, WEB_PAGE, email=False)


def rule_link_text(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """The same link text for different targets ("Read more" x 10) tells a screen reader nothing."""
    targets: dict[str, dict[str, int]] = {}
    first_seen: dict[str, str] = {}
    for link in doc.links:
        text = norm_space(link.text)
        href = (link.href or "").strip()
        if not text or not href:
            continue
        key = text.casefold()
        first_seen.setdefault(key, text)
        targets.setdefault(key, {}).setdefault(href, link.line)
    for key, hrefs in targets.items():
        if len(hrefs) > 1:
            text = first_seen[key]
            yield Finding(
                "warning",
                "link-text",
                f"digest.html:{min(hrefs.values())}: the link text {short(text)} is used for {len(hrefs)} "
                "different addresses",
                parts.template(HTML_TEMPLATE, text, text.split()[0]),
                "make each link text say where it goes, e.g. include the item title",
            )


def rule_items_in_both(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """Every item must be in the HTML and in the text part."""
    html_text = norm(doc.text)
    text = norm(parts.text)
    for item in parts.items:
        title = norm(item.title)
        in_html, in_text = title in html_text, title in text
        if in_html and not in_text:
            yield Finding(
                "error",
                "item-missing-text",
                f"the item {short(item.title)} is in the HTML but not in the text part",
                parts.template(TEXT_TEMPLATE),
                "show every item in digest.txt.j2 (text-only readers miss it otherwise)",
            )
        elif in_text and not in_html:
            yield Finding(
                "error",
                "item-missing-html",
                f"the item {short(item.title)} is in the text part but not in the HTML",
                parts.template(HTML_TEMPLATE),
                "show every item in digest.mjml.j2",
            )
        elif not in_html and not in_text:
            yield Finding(
                "error",
                "item-missing-html",
                f"the item {short(item.title)} is in neither the HTML nor the text part",
                item.source,
                "the templates drop it: check their loops and conditions",
            )


def text_urls(text: str) -> dict[str, int]:
    """The addresses in a text part, each with the line it first appears on (closing punctuation dropped)."""
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
    text_lines = {_base(u): n for u, n in text_urls(parts.text).items()}
    # A Markdown link typed in a summary (plain text) is rule_item_links' finding, with the item's fix.
    typed = {_base(url) for item in parts.items for url in summary_links(item)}
    for url, line in html_urls.items():
        if url not in text_lines:
            yield Finding(
                "warning",
                "link-missing-text",
                f"digest.html:{line}: the link {short(url)}{_of_item(parts, url)} is not in the text part",
                parts.template(TEXT_TEMPLATE),
                "print the address in digest.txt.j2 too, so text-only readers can follow it",
            )
    for url, line in text_lines.items():
        if url not in html_urls and url not in html_also and url not in typed:
            yield Finding(
                "warning",
                "link-missing-html",
                f"digest.txt:{line}: the address {short(url)}{_of_item(parts, url)} "
                "is not linked in the HTML",
                parts.template(HTML_TEMPLATE),
                "link it in digest.mjml.j2 too",
            )


def _of_item(parts: BuiltDigest, url: str) -> str:
    item = parts.item_for(url)
    return f" (of {item.source})" if item else ""


def _phrases(line: str) -> list[str]:
    """Overlapping four-word phrases of a line, to find where its text came from."""
    words = line.split()
    return [" ".join(words[i : i + 4]) for i in range(0, max(len(words) - 3, 1), 2)][:6]


def rule_text_width(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """Text lines over 78 columns wrap badly; a line that is only a URL cannot be broken and is fine."""
    for n, line in enumerate(parts.text.splitlines(), 1):
        width = display_width(line)
        if width <= TEXT_WIDTH:
            continue
        token = line.strip()
        if _URL_IN_TEXT.fullmatch(token):
            continue
        if token == parts.subject:
            where = f"{parts.config_name} (subject)"
        else:
            where = parts.where(TEXT_TEMPLATE, *_phrases(line))
            template = parts.template(TEXT_TEMPLATE)
            if where.split(":")[0] != template.split(":")[0]:  # an item's text, as the template shows it
                where = f"{where} (shown by {template})"
        yield Finding(
            "warning",
            "text-width",
            f"digest.txt:{n}: the line is {width} columns wide (at most {TEXT_WIDTH}): {short(token)}",
            where,
            "wrap it with the `wrap` filter in digest.txt.j2, or put a long address on a line of its own",
        )


def rule_subject_preheader(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """A subject over 78 and a preheader over 100 characters are cut off in the inbox list."""
    if len(parts.subject) > SUBJECT_MAX:
        yield Finding(
            "warning",
            "subject-length",
            f"the subject is {len(parts.subject)} characters (at most {SUBJECT_MAX}): {short(parts.subject)}",
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


def rule_required_links(parts: BuiltDigest, doc: Doc) -> Iterable[Finding]:
    """The email needs an unsubscribe link and a link to the web version, in both parts."""
    hrefs = {_base(link.href or "") for link in doc.links}
    unsub = _base(parts.unsubscribe_url)
    html_unsub = (bool(unsub) and unsub in hrefs) or any(
        _UNSUBSCRIBE_WORDS.search(link.text) and (link.href or "").strip() for link in doc.links
    )
    text_unsub = (bool(parts.unsubscribe_url) and parts.unsubscribe_url in parts.text) or any(
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
        (web in {_base(u) for u in text_urls(parts.text)}, "text part", TEXT_TEMPLATE),
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
    for p in lint_mjml(parts.mjml):
        yield Finding(
            p.severity,
            p.rule,
            f"line {p.line} of the generated MJML: {p.message}",
            parts.template(HTML_TEMPLATE, p.needle),
            p.fix,
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
    rule_invisible_characters,
    rule_item_links,
    rule_contrast,
    rule_dark_survives,
)
WEB_RULES: tuple[Rule, ...] = (rule_web_img_alt, rule_web_links, rule_web_contrast, rule_web_dark_survives)
