"""digest check, the rules: each fails on a small broken input and passes on the sound one next to it.

The inputs are inline: an email's HTML and text, a web version, some MJML and a Manifest made here. No build.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest.check import BuiltDigest, Finding, display_width, lint
from digest.check.built import short
from digest.check.contrast import parse_colour, ratio, suggest
from digest.check.darkmode import dark_rules
from digest.check.rules import text_urls
from digest.outdir import ItemRecord, Manifest
from digest.render import default_templates_dir

WEB = "https://example.org/d/2021-03/"
UNSUB = "https://example.org/unsubscribe?t=PREVIEW"
SOURCE = "items/2021-03-02-alpha.md"
DEFAULT_TXT = "default/digest.txt.j2 (the packaged default: copy it to templates/ to change it)"
DEFAULT_MJML = "default/digest.mjml.j2 (the packaged default: copy it to templates/ to change it)"

HTML = f"""<!doctype html>
<html><head><title>News</title><style>p {{ color: red }}</style></head><body>
<div style="display:none">The preheader</div>
<p><a href="{WEB}">View this digest in your browser</a></p>
<h2 id="news">News</h2>
<h3><a href="https://example.org/a">Alpha news</a></h3>
<p>What happened to alpha.</p>
<p><a href="{UNSUB}">Unsubscribe</a></p>
</body></html>
"""
TEXT = f"""News: March 2021
View it in your browser: {WEB}

Alpha news
https://example.org/a

Unsubscribe: {UNSUB}
"""
MJML = "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text></mj-column></mj-section></mj-body></mjml>"
WEB_HTML = """<html><body>
<p><a href="#news">News</a></p>
<h2 id="news">News</h2>
<h3><a href="https://example.org/a">Alpha news</a></h3>
<p><img src="logo.png" alt="Our logo"> <a href="../">All digests</a></p>
</body></html>
"""


def item(**over: Any) -> ItemRecord:
    fields: dict[str, Any] = {
        "slug": "alpha",
        "title": "Alpha news",
        "date": "2021-03-02",
        "category": "News",
        "url": "https://example.org/a",
        "source": SOURCE,
        "summary": "What happened to alpha.",
    }
    return ItemRecord(**(fields | over))


def manifest(*items: ItemRecord, **over: Any) -> Manifest:
    fields: dict[str, Any] = {
        "generator": "digest test",
        "built_at": "2021-04-15T12:00:00+00:00",
        "slug": "2021-03",
        "label": "March 2021",
        "start": datetime(2021, 3, 1, tzinfo=UTC),
        "end": datetime(2021, 4, 1, tzinfo=UTC),
        "subject": "News: March 2021",
        "preheader": "The preheader",
        "web_url": WEB,
        "preview_values": {"unsubscribe_url": UNSUB, "greeting": "Hello,"},
        "content_hash": "0" * 64,
        "sections": (),
        "items": items,
    }
    return Manifest(**(fields | over))


def digest(*, items: tuple[ItemRecord, ...] | None = None, **over: Any) -> BuiltDigest:
    """The sound inline digest; `subject=`/`preheader=` go to its manifest, the rest to BuiltDigest."""
    m = {k: over.pop(k) for k in ("subject", "preheader") if k in over}
    fields: dict[str, Any] = {
        "manifest": manifest(*(items if items is not None else (item(),)), **m),
        "html": HTML,
        "text": TEXT,
        "mjml": MJML,
        "web_html": WEB_HTML,
        "root": Path("/nowhere"),
    }
    return BuiltDigest(**(fields | over))


def with_html(snippet: str, **over: Any) -> BuiltDigest:
    """The sound digest with some HTML added at the end of the email's body."""
    return digest(html=HTML.replace("</body>", f"{snippet}\n</body>"), **over)


def with_web(snippet: str) -> BuiltDigest:
    """The sound digest with some HTML added at the end of the web version's body."""
    return digest(web_html=WEB_HTML.replace("</body>", f"{snippet}\n</body>"))


def with_text(extra: str, **over: Any) -> BuiltDigest:
    return digest(text=TEXT + extra + "\n", **over)


def found(parts: BuiltDigest) -> dict[str, list[Finding]]:
    by_rule: dict[str, list[Finding]] = {}
    for finding in lint(parts):
        by_rule.setdefault(finding.rule, []).append(finding)
    return by_rule


def the(parts: BuiltDigest, rule: str) -> Finding:
    """The one finding of a rule (and no other rule fires)."""
    findings = lint(parts)
    assert [f.rule for f in findings] == [rule], findings
    return findings[0]


def test_the_sound_digest_has_no_findings() -> None:
    assert lint(digest()) == []


# ---- html-size ----


def padded(size: int) -> BuiltDigest:
    pad = size - len(HTML.encode()) - len("<!---->\n")
    return with_html(f"<!--{'x' * pad}-->")


def test_html_size() -> None:
    assert len(padded(102 * 1024 + 1).html.encode()) == 102 * 1024 + 1
    over = the(padded(102 * 1024 + 1), "html-size")
    assert over == Finding(
        "error",
        "html-size",
        "digest.html is 102.0 KB: Gmail clips messages over 102 KB and hides the rest",
        "digest.toml ([categories] limit)",
        "set [categories] limit in digest.toml (the rest go to the web version), or shorten summaries",
    )
    at_limit = the(padded(102 * 1024), "html-size")
    assert at_limit.severity == "warning"
    assert at_limit.message == "digest.html is 102.0 KB, close to the 102 KB where Gmail clips messages"
    assert the(padded(90 * 1024), "html-size").severity == "warning"
    assert lint(padded(90 * 1024 - 1)) == []


def test_html_size_counts_bytes_not_characters() -> None:
    parts = padded(90 * 1024 - 1)
    assert lint(parts) == []
    wider = replace(parts, html=parts.html.replace("<!--x", "<!--é", 1))  # as many characters, one byte more
    assert the(wider, "html-size").severity == "warning"


def test_html_size_names_the_config_file() -> None:
    assert the(replace(padded(103 * 1024), config_name="conf/d.toml"), "html-size").where == (
        "conf/d.toml ([categories] limit)"
    )


# ---- img-alt ----


def test_an_image_without_alt_is_an_error() -> None:
    finding = the(with_html('<img src="https://example.org/chart.png">'), "img-alt")
    assert finding == Finding(
        "error",
        "img-alt",
        "digest.html:9: the image 'https://example.org/chart.png' has no alt attribute",
        DEFAULT_MJML,
        'add alt="what the image shows" to the <img> (or mj-image) in the template',
    )


@pytest.mark.parametrize("alt", ["", "   "])
def test_an_image_with_empty_alt_is_a_warning(alt: str) -> None:
    finding = the(with_html(f'<img src="https://example.org/c.png" alt="{alt}">'), "img-alt")
    assert finding.severity == "warning"
    assert finding.message == "digest.html:9: the image 'https://example.org/c.png' has an empty alt text"


@pytest.mark.parametrize(
    ("attrs", "rule"),
    [
        ('alt="A chart"', None),
        ('alt="" width="1" height="1"', None),  # a tracking pixel: alt="" is right
        ('alt="" width="0" height="0"', None),
        ('alt="" width="1" height="0"', None),
        ('width="1" height="1"', "error"),  # a pixel still needs the attribute
        ('alt="" width="1" height="10"', "warning"),
        ('alt="" width="10" height="1"', "warning"),
        ('alt="" width="2" height="2"', "warning"),
    ],
)
def test_img_alt_cases(attrs: str, rule: str | None) -> None:
    findings = lint(with_html(f'<img src="https://example.org/p.gif" {attrs}>'))
    assert [f.severity for f in findings] == ([rule] if rule else [])


def test_img_alt_names_the_template_line_of_the_image_file(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.mjml.j2").write_text('<mjml>\n<mj-body>\n<img src="{{ web_url }}logo.png">\n')
    parts = with_html(f'<img src="{WEB}logo.png">', templates_dir=templates, root=tmp_path)
    assert the(parts, "img-alt").where == "templates/digest.mjml.j2:3"


def test_img_alt_points_at_the_item_without_image_alt() -> None:
    parts = with_html(
        '<img src="https://example.org/photo.jpg">', items=(item(image="https://example.org/photo.jpg"),)
    )
    finding = the(parts, "img-alt")
    assert finding.where == f"{SOURCE} (image)"
    assert finding.fix == "give the item an image_alt describing the picture"


def test_img_alt_of_an_item_with_image_alt_points_at_the_template(tmp_path: Path) -> None:
    """The item has its alt text: the template that drops it is the place to fix."""
    templates = tmp_path / "templates"
    templates.mkdir()
    # the alt text went to the title
    (templates / "digest.mjml.j2").write_text('<mjml>\n<mj-body>\n<mj-image title="{{ item.image_alt }}">\n')
    one = item(image="https://example.org/photo.jpg", image_alt="A photo")
    parts = with_html(
        '<img src="https://example.org/photo.jpg">', items=(one,), templates_dir=templates, root=tmp_path
    )
    finding = the(parts, "img-alt")
    assert finding.where == "templates/digest.mjml.j2:3"
    assert finding.fix == 'give the image alt="{{ item.image_alt }}" in the template (the item has the text)'


# ---- links ----

LINK_RULES = ("link-empty", "link-relative", "link-scheme", "link-anchor")


@pytest.mark.parametrize(
    ("link", "rule", "message"),
    [
        ('<a href="">Somewhere</a>', "link-empty", "the link 'Somewhere' has an empty address"),
        ('<a href="  ">Somewhere</a>', "link-empty", "the link 'Somewhere' has an empty address"),
        ("<a>Nowhere</a>", "link-empty", "the link 'Nowhere' has an empty address"),
        ('<a name="x" href="">Named</a>', "link-empty", "the link 'Named' has an empty address"),
        ('<a href=""> </a>', "link-empty", "the link (no text) has an empty address"),
        (
            '<a href="#nowhere">Somewhere</a>',
            "link-anchor",
            "the link 'Somewhere' points to #nowhere, which is not in the email",
        ),
        (
            '<a href="archive.html">Older</a>',
            "link-relative",
            "the link 'Older' goes to 'archive.html', a relative address: "
            "mail clients have no base address to resolve it against",
        ),
        ('<a href="/archive/">Older</a>', "link-relative", "the link 'Older' goes to '/archive/'"),
        (
            '<a href="javascript:alert(1)">Go</a>',
            "link-scheme",
            "the link 'Go' goes to 'javascript:alert(1)': only http(s) and mailto links work in mail clients",
        ),
        (
            '<a href="ftp://example.org/f">Go</a>',
            "link-scheme",
            "the link 'Go' goes to 'ftp://example.org/f'",
        ),
        ('<a href="mailto:">Write</a>', "link-scheme", "goes to 'mailto:'"),
        ('<a href="https:/example.org">Go</a>', "link-scheme", "goes to 'https:/example.org'"),
    ],
)
def test_bad_links_in_the_email(link: str, rule: str, message: str) -> None:
    findings = [f for f in lint(with_html(link)) if f.rule in LINK_RULES]
    assert [f.rule for f in findings] == [rule]
    assert findings[0].severity == "error"
    assert findings[0].message.startswith("digest.html:9: ")
    assert message in findings[0].message


@pytest.mark.parametrize(
    "link",
    [
        '<a href="https://example.org/a">Alpha news</a>',
        '<a href="HTTP://EXAMPLE.ORG/a">Alpha news</a>',
        '<a href="mailto:news@example.org">Alpha news</a>',
        '<a href="#news">Alpha news</a>',
        '<a href=" #news ">Alpha news</a>',
        '<a name="top"></a><a href="#top">Alpha news</a>',
        '<a id="top">Top</a><a href="#top">Alpha news</a>',
    ],
)
def test_good_links_in_the_email(link: str) -> None:
    findings = found(with_html(link))
    assert not set(LINK_RULES) & findings.keys()


def test_a_bad_link_points_at_the_item_holding_it() -> None:
    one = item(body="See [the archive](archive.html).")
    finding = found(with_html('<a href="archive.html">the archive</a>', items=(one,)))["link-relative"][0]
    assert finding.where == f"{SOURCE} (body)"
    assert finding.fix == f"use an absolute address (the web version's folder is {WEB})"


READ_MORE_LINE = next(
    n
    for n, line in enumerate((default_templates_dir() / "digest.mjml.j2").read_text().splitlines(), 1)
    if "Read more" in line
)


def test_link_text_repeated_for_different_targets() -> None:
    links = "".join(f'<a href="https://example.org/{n}">Read more</a>\n' for n in range(3))
    parts = with_html(links + '<a href="https://example.org/0">read  MORE</a>')
    finding = found(parts)["link-text"]
    assert finding == [
        Finding(
            "warning",
            "link-text",
            "digest.html:9: the link text 'Read more' is used for 3 different addresses",
            f"default/digest.mjml.j2:{READ_MORE_LINE} (the packaged default: copy it to templates/ to change it)",
            "make each link text say where it goes, e.g. include the item title",
        )
    ]


def test_link_text_compares_without_case_and_spacing() -> None:
    parts = with_html(
        '<a href="https://example.org/1">Read more</a><a href="https://example.org/2">read\n MORE</a>'
    )
    assert [f.message for f in found(parts)["link-text"]] == [
        "digest.html:9: the link text 'Read more' is used for 2 different addresses"
    ]


@pytest.mark.parametrize(
    "links",
    [
        '<a href="https://example.org/1">Read more</a>' * 2,  # a title link and its "Read more" may repeat
        '<a href="https://example.org/1">Read more</a><a>Read more</a>',  # no address: link-empty's
        '<a href="https://example.org/1"> </a><a href="https://example.org/2"></a>',  # no text
    ],
)
def test_link_text_not_repeated(links: str) -> None:
    assert "link-text" not in found(with_html(links))


def test_link_text_names_the_template_line(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.mjml.j2").write_text("a\nb\n<a>Continue</a> reading\n")
    links = "".join(f'<a href="https://example.org/{n}">Continue reading</a>' for n in range(2))
    finding = found(with_html(links, templates_dir=templates, root=tmp_path))["link-text"][0]
    assert finding.where == "templates/digest.mjml.j2:3"  # the phrase is not there; its first word is


# ---- items in both parts ----


def test_item_missing_from_the_text_part() -> None:
    finding = the(digest(text=TEXT.replace("Alpha news", "Something else")), "item-missing-text")
    assert finding.severity == "error"
    assert finding.message == "the item 'Alpha news' is in the HTML but not in the text part"
    assert finding.where == DEFAULT_TXT


def test_item_missing_from_the_html() -> None:
    finding = found(digest(html=HTML.replace("Alpha news", "Something else")))["item-missing-html"]
    assert [f.message for f in finding] == ["the item 'Alpha news' is in the text part but not in the HTML"]
    assert finding[0].where == DEFAULT_MJML


def test_item_missing_from_both() -> None:
    one = item(title="Beta news")
    finding = the(digest(items=(one,)), "item-missing-html")
    assert finding.message == "the item 'Beta news' is in neither the HTML nor the text part"
    assert finding.where == SOURCE


def test_a_title_only_in_hidden_html_does_not_count() -> None:
    html = HTML.replace("Alpha news", "Something else").replace("The preheader", "Alpha news")
    assert "item-missing-html" in found(digest(html=html))
    in_title = HTML.replace("Alpha news", "Something else").replace("<title>News", "<title>Alpha news")
    assert "item-missing-html" in found(digest(html=in_title))


def test_titles_compare_with_entities_spaces_and_case_normalised() -> None:
    one = item(title="Alpha & Omega  news")
    html = HTML.replace("Alpha news", "ALPHA &amp; omega\n news")
    text = TEXT.replace("Alpha news", "Alpha & Omega news")
    assert "item-missing-html" not in found(digest(items=(one,), html=html, text=text))
    assert "item-missing-text" not in found(digest(items=(one,), html=html, text=text))


# ---- links in both parts ----


def test_link_missing_from_the_text_part() -> None:
    finding = the(digest(text=TEXT.replace("https://example.org/a", "")), "link-missing-text")
    assert finding == Finding(
        "warning",
        "link-missing-text",
        f"digest.html:6: the link 'https://example.org/a' (of {SOURCE}) is not in the text part",
        DEFAULT_TXT,
        "print the address in digest.txt.j2 too, so text-only readers can follow it",
    )


def test_a_mailto_link_must_be_in_the_text_too() -> None:
    finding = the(with_html('<a href="mailto:news@example.org">Write to us</a>'), "link-missing-text")
    assert "'mailto:news@example.org' is not in the text part" in finding.message


def test_link_in_the_text_part_missing_from_the_html() -> None:
    finding = the(with_text("See also https://example.org/elsewhere."), "link-missing-html")
    assert finding == Finding(
        "warning",
        "link-missing-html",
        "digest.txt:8: the address 'https://example.org/elsewhere' is not linked in the HTML",
        DEFAULT_MJML,
        "link it in digest.mjml.j2 too",
    )


def test_addresses_compare_without_fragment_and_entities() -> None:
    parts = with_html('<a href="https://example.org/b?x=1&amp;y=2#top">B</a>')
    assert lint(replace(parts, text=TEXT + "B: https://example.org/b?x=1&y=2\n")) == []


def test_an_image_address_in_the_text_counts_as_in_the_html() -> None:
    parts = with_html('<img src="https://example.org/pic.png" alt="A picture">')
    assert lint(replace(parts, text=TEXT + "Picture: https://example.org/pic.png\n")) == []


def test_text_urls_are_read_whole() -> None:
    assert text_urls(
        "a https://e.org/x_(y). b\n\nsee (https://e.org/z), mailto:a@e.org!\nhttps://e.org/z\n"
    ) == {
        "https://e.org/x_(y)": 1,
        "https://e.org/z": 3,  # where it first appears
        "mailto:a@e.org": 3,
    }
    parts = with_html('<a href="https://example.org/x_(y)">x</a>')
    assert lint(replace(parts, text=TEXT + "See [x](https://example.org/x_(y)).\n")) == []


# ---- text width ----


def test_text_width() -> None:
    finding = the(with_text("word " * 16 + "wordy"), "text-width")  # 85 columns
    assert finding == Finding(
        "warning",
        "text-width",
        "digest.txt:8: the line is 85 columns wide (at most 78): "
        "'word word word word word word word word word word word word…'",
        DEFAULT_TXT,
        "wrap it with the `wrap` filter in digest.txt.j2, or put a long address on a line of its own",
    )
    assert lint(with_text("x" * 70 + " " + "y" * 7)) == []  # 78 columns
    # an address alone on its line cannot be broken
    assert "text-width" not in found(with_text("   https://example.org/" + "a" * 90))
    assert "text-width" in found(with_text("see https://example.org/" + "a" * 90))


def test_text_width_counts_wide_characters_twice_and_combining_ones_not() -> None:
    assert display_width("日本") == 4
    assert display_width("e\u0301") == 1
    assert display_width("a\u200bb") == 2
    assert "text-width" in found(with_text("日本語" * 14))  # 42 characters, 84 columns
    assert lint(with_text("日本語" * 13)) == []
    assert lint(with_text("e\u0301" * 78)) == []


def test_text_width_points_at_the_item(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.txt.j2").write_text("{{ title }}\n")
    one = item(
        summary="A summary that goes on and on, far longer than any line of a text part should ever be."
    )
    parts = with_text("   " + one.summary, items=(one,), templates_dir=templates, root=tmp_path)
    assert the(parts, "text-width").where == f"{SOURCE} (summary) (shown by templates/digest.txt.j2)"


def test_text_width_finds_the_item_by_a_phrase_further_in_the_line() -> None:
    one = item(
        summary="A summary that goes on and on, far longer than any line of a text part should ever be."
    )
    parts = with_text("Prefix words here then " + one.summary, items=(one,))
    assert the(parts, "text-width").where == f"{SOURCE} (summary) (shown by {DEFAULT_TXT})"


def test_a_long_line_of_the_template_points_at_the_template(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    long = "This footer line was written into the template and is longer than seventy-eight columns"
    (templates / "digest.txt.j2").write_text(f"{{{{ title }}}}\n\n{long}\n")
    parts = with_text(long, templates_dir=templates, root=tmp_path)
    assert the(parts, "text-width").where == "templates/digest.txt.j2:3"


def test_a_long_subject_line_in_the_text_points_at_the_config() -> None:
    subject = "A subject that is much too long for the first line of the text part of the digest"
    parts = digest(subject=subject, text=TEXT.replace("News: March 2021", subject))
    findings = found(parts)
    assert findings["text-width"][0].where == "digest.toml (subject)"


# ---- subject and preheader ----


def test_subject_and_preheader_length() -> None:
    assert the(digest(subject="s" * 79), "subject-length") == Finding(
        "warning",
        "subject-length",
        f"the subject is 79 characters (at most 78): {'s' * 59 + '…'!r}",
        "digest.toml (subject)",
        "shorten `subject` in digest.toml (or the title it uses)",
    )
    assert lint(digest(subject="s" * 78)) == []
    assert the(digest(preheader="p" * 101), "preheader-length") == Finding(
        "warning",
        "preheader-length",
        "the preheader is 101 characters (at most 100)",
        "digest.toml (preheader)",
        "shorten `preheader` in digest.toml",
    )
    assert lint(digest(preheader="p" * 100)) == []


# ---- required links ----


def test_unsubscribe_missing_from_the_html() -> None:
    html = HTML.replace(f'<a href="{UNSUB}">Unsubscribe</a>', "")
    assert found(digest(html=html))["unsubscribe-missing"] == [
        Finding(
            "error",
            "unsubscribe-missing",
            "the HTML has no unsubscribe link",
            DEFAULT_MJML,
            "add a link to {{ unsubscribe_url }} (each recipient gets their own)",
        )
    ]


def test_unsubscribe_missing_from_the_text() -> None:
    [finding] = found(digest(text=TEXT.replace(f"Unsubscribe: {UNSUB}\n", "")))["unsubscribe-missing"]
    assert (finding.message, finding.where) == ("the text part has no unsubscribe link", DEFAULT_TXT)


def test_an_unsubscribe_link_of_your_own_counts() -> None:
    own = "https://lists.example.org/leave?id=1"
    assert lint(digest(html=HTML.replace(UNSUB, own), text=TEXT.replace(UNSUB, own))) == []
    opt_out = HTML.replace(f'<a href="{UNSUB}">Unsubscribe</a>', f'<a href="{own}">Opt out</a>')
    assert "unsubscribe-missing" not in found(digest(html=opt_out, text=TEXT.replace(UNSUB, own)))


def test_unsubscribe_words_need_an_address() -> None:
    html = HTML.replace(f'<a href="{UNSUB}">Unsubscribe</a>', "<a>Unsubscribe</a>")
    assert "unsubscribe-missing" in found(digest(html=html))
    text = TEXT.replace(f"Unsubscribe: {UNSUB}", "Unsubscribe: write to us")
    assert "unsubscribe-missing" in found(digest(text=text))


def test_the_unsubscribe_address_counts_without_words() -> None:
    html = HTML.replace(f'<a href="{UNSUB}">Unsubscribe</a>', f'<a href="{UNSUB}">Leave</a>')
    assert lint(digest(html=html, text=TEXT.replace("Unsubscribe:", "Leave:"))) == []


def test_web_version_link_missing() -> None:
    html = HTML.replace(WEB, "https://example.org/elsewhere/")
    assert found(digest(html=html))["web-link-missing"] == [
        Finding(
            "error",
            "web-link-missing",
            f"the HTML has no link to the web version ({WEB})",
            DEFAULT_MJML,
            'add a link to {{ web_url }} ("View this digest in your browser")',
        )
    ]
    [finding] = found(digest(text=TEXT.replace(WEB, "")))["web-link-missing"]
    assert (finding.message, finding.where) == (
        f"the text part has no link to the web version ({WEB})",
        DEFAULT_TXT,
    )


def test_a_longer_address_is_not_the_web_version() -> None:
    text = TEXT.replace(WEB, WEB + "index.html")
    html = HTML.replace(f'href="{WEB}"', f'href="{WEB}index.html"')
    assert [f.message for f in found(digest(text=text, html=html))["web-link-missing"]] == [
        f"the HTML has no link to the web version ({WEB})",
        f"the text part has no link to the web version ({WEB})",
    ]


def test_a_web_version_link_to_an_anchor_counts() -> None:
    html = HTML.replace(f'href="{WEB}"', f'href="{WEB}#news"')
    assert lint(digest(html=html, text=TEXT.replace(WEB, WEB + "#news"))) == []


# ---- MJML, as findings ----


def test_mjml_problems_become_findings_naming_the_template_line(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.mjml.j2").write_text("<mjml>\n<mj-body>\n  <mj-txt>Hi</mj-txt>\n")
    mjml = MJML.replace("<mj-text>Hi</mj-text>", "\n<mj-txt>Hi</mj-txt>")
    finding = the(digest(mjml=mjml, templates_dir=templates, root=tmp_path), "mjml-unknown-tag")
    assert finding == Finding(
        "error",
        "mjml-unknown-tag",
        "line 2 of the generated MJML: unknown MJML tag <mj-txt> (did you mean <mj-text>?): "
        "mjml-python drops it and everything in it",
        "templates/digest.mjml.j2:3",
        "use an MJML component (https://documentation.mjml.io/)",
    )
    warning = the(digest(mjml=MJML.replace("<mj-text>", '<mj-text colr="red">')), "mjml-unknown-attribute")
    assert warning.severity == "warning"


# ---- the web version (index.html) ----


@pytest.mark.parametrize(
    ("snippet", "rule", "severity", "message"),
    [
        (
            '<a href="#elsewhere">Elsewhere</a>',
            "link-anchor",
            "error",
            "index.html:6: the link 'Elsewhere' points to #elsewhere, which is not in the web version",
        ),
        (
            '<a href="">Nowhere</a>',
            "link-empty",
            "error",
            "index.html:6: the link 'Nowhere' has an empty address",
        ),
        (
            '<a href="javascript:void(0)">Menu</a>',
            "link-scheme",
            "error",
            "index.html:6: the link 'Menu' goes to 'javascript:void(0)': only http(s) and mailto links "
            "work in every browser",
        ),
        (
            '<img src="chart.png">',
            "img-alt",
            "error",
            "index.html:6: the image 'chart.png' has no alt attribute",
        ),
        (
            '<img src="chart.png" alt="">',
            "img-alt",
            "warning",
            "index.html:6: the image 'chart.png' has an empty",
        ),
    ],
)
def test_the_web_version_is_linted(snippet: str, rule: str, severity: str, message: str) -> None:
    finding = the(with_web(snippet), rule)
    assert finding.severity == severity
    assert finding.message.startswith(message)


@pytest.mark.parametrize(
    "snippet",
    ['<a href="../index.html">Archive</a>', '<a href="#news">Top</a>', '<a href="https://e.org/">E</a>'],
)
def test_the_web_version_may_use_relative_links(snippet: str) -> None:
    assert lint(with_web(snippet)) == []


def test_the_web_version_anchors_are_its_own() -> None:
    """An anchor the email has but the web version lacks is broken there, and the other way round."""
    web = WEB_HTML.replace('id="news"', 'id="all-news"')
    assert [f.message for f in lint(digest(web_html=web))] == [
        "index.html:2: the link 'News' points to #news, which is not in the web version"
    ]
    assert "link-anchor" in found(
        with_html('<a href="#all-news">All</a>', web_html=web.replace('#news"', '#all-news"'))
    )


def test_without_a_web_version_only_the_email_is_linted() -> None:
    assert lint(digest(web_html="")) == []


def test_findings_come_in_rule_order_email_first() -> None:
    parts = digest(
        subject="s" * 79,
        html=HTML.replace("</body>", '<a href="archive.html">Old</a><img src="https://e.org/i.png"></body>'),
        web_html=WEB_HTML.replace("</body>", '<img src="x.png"></body>'),
    )
    assert [(f.rule, f.message[:11]) for f in lint(parts)] == [
        ("img-alt", "digest.html"),
        ("link-relative", "digest.html"),
        ("subject-length", "the subject"),
        ("img-alt", "index.html:"),
    ]


def test_where_names_the_packaged_default_when_the_workspace_has_no_template(tmp_path: Path) -> None:
    parts = digest(text=TEXT.replace("Alpha news", "Something else"), templates_dir=tmp_path)
    assert the(parts, "item-missing-text").where == DEFAULT_TXT


def test_template_tries_each_needle_in_order(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.txt.j2").write_text(
        "{# needle-one here\nis a comment #}\nx\nneedle-two\nneedle-one\nNEEDLE-3\n"
    )
    parts = digest(templates_dir=templates, root=tmp_path)
    assert parts.template("digest.txt.j2", "needle-one", "needle-two") == "templates/digest.txt.j2:5"
    assert parts.template("digest.txt.j2", "absent", "needle-two") == "templates/digest.txt.j2:4"
    assert parts.template("digest.txt.j2", "needle-3") == "templates/digest.txt.j2:6"  # any case, at last
    assert parts.template("digest.txt.j2", "absent") == "templates/digest.txt.j2"
    assert parts.template("digest.txt.j2", "  ") == "templates/digest.txt.j2"
    assert parts.template("digest.txt.j2") == "templates/digest.txt.j2"
    # a needle only the packaged default has: the default, with its line
    default = (default_templates_dir() / "digest.txt.j2").read_text()
    line = next(n for n, text in enumerate(default.splitlines(), 1) if "{{ intro" in text)
    assert parts.template("digest.txt.j2", "absent", "{{ intro") == (
        f"default/digest.txt.j2:{line} (the packaged default: copy it to templates/ to change it)"
    )


def test_item_for_finds_the_field() -> None:
    one = item(image="https://example.org/i.png", body="Body &amp; text")
    parts = digest(items=(item(slug="z", title="Zed", summary="", url=None), one))
    assert parts.item_for("alpha NEWS") == one
    assert parts.where("digest.txt.j2", "https://example.org/a") == f"{SOURCE} (url)"
    assert parts.where("digest.txt.j2", "happened to") == f"{SOURCE} (summary)"
    assert parts.where("digest.txt.j2", "body & TEXT") == f"{SOURCE} (body)"
    assert parts.where("digest.txt.j2", "nothing", "i.png") == f"{SOURCE} (image)"
    assert parts.item_for("") is None and parts.item_for("absent") is None


def test_short_quotes_and_cuts_at_the_limit() -> None:
    assert short("x" * 60) == repr("x" * 60)
    assert short("x" * 61) == repr("x" * 59 + "…")
    assert short(" a \n b ", limit=3) == "'a b'"


# ---- contrast ----


def test_contrast_maths() -> None:
    assert ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert ratio((255, 255, 255), (0, 0, 0)) == pytest.approx(21.0)
    fg, bg = parse_colour("#1f2933"), parse_colour("#15191e")
    assert fg and bg and round(ratio(fg, bg), 2) == 1.20  # the web version's dark title bar, measured
    assert parse_colour("#fff") == (255, 255, 255)
    assert parse_colour("rgb(1, 2, 3)") == (1, 2, 3)
    assert parse_colour("#ffffff url(x.png) no-repeat") == (255, 255, 255)
    assert parse_colour("white") == (255, 255, 255)
    assert parse_colour("transparent") is None and parse_colour("inherit") is None
    for need in (3.0, 4.5):
        better = parse_colour(suggest((150, 150, 150), (255, 255, 255), need))
        assert better and need <= ratio(better, (255, 255, 255)) < need + 1.5
    light = parse_colour(suggest((31, 41, 51), (21, 25, 30), 4.5))
    assert light and ratio(light, (21, 25, 30)) >= 4.5


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('<p style="color:#999999">Grey text</p>', ("warning", "2.85:1", "body")),
        ('<p style="color:#ffffff">White text</p>', ("error", "1.00:1", "body")),
        ('<h1 style="font-size:16px;color:#888888">Small</h1>', ("warning", "3.54:1", "body")),
        (
            '<p style="font-size:18px;font-weight:bold;color:#999999">Not large</p>',
            ("warning", "2.85:1", "body"),
        ),
        ('<h2 style="font-size:20px;color:#bbbbbb">Large</h2>', ("warning", "1.92:1", "large")),
        ('<p style="font-size:20px;color:#999999">20 px, not bold</p>', ("warning", "2.85:1", "body")),
        (
            '<p style="font-size:20px;font-weight:bold;color:#999999">20 px bold</p>',
            ("warning", "2.85:1", "large"),
        ),
        ('<p style="color:#777777">Just short of 4.5</p>', ("warning", "4.48:1", "body")),
        ('<div style="max-height:0;color:#ffffff">It overflows: it shows</div>', ("error", "1.00:1", "body")),
        (
            '<table bgcolor="#000000"><tr><td style="color:#333333">On black</td></tr></table>',
            ("warning", "1.66:1", "body"),
        ),
        (
            '<div style="background:#222 url(a.png)"><p style="color:#333">On dark</p></div>',
            ("error", "1.26:1", "body"),
        ),
        ('<a href="https://example.org/a" style="color:#ccc">Pale link</a>', ("warning", "1.61:1", "body")),
    ],
)
def test_low_contrast_text_in_light_mode(snippet: str, expected: tuple[str, str, str]) -> None:
    finding = the(with_html(snippet), "contrast")
    severity, shown, size = expected
    assert finding.severity == severity
    assert "in light mode, text #" in finding.message
    assert f"has a contrast of {shown} (WCAG AA: at least" in finding.message
    assert f"for {size} text)" in finding.message
    assert finding.message.startswith("digest.html:")
    assert "e.g. #" in finding.fix


@pytest.mark.parametrize(
    "snippet",
    [
        '<h1 style="font-size:26px;color:#888888">Large enough</h1>',
        '<p style="font-size:19px;font-weight:700;color:#888888">Large and bold</p>',
        '<div style="display:none;color:#ffffff">The hidden preheader</div>',
        '<div style="max-height:0;overflow:hidden;color:#ffffff">Also hidden</div>',
        '<p style="color:#ffffff;background-color:#0b5cad">White on blue</p>',
        '<div style="background-color:#000"><a href="https://example.org/a" style="color:#8cc4ff">Link</a></div>',
        '<p style="color:#595959">Just enough (7:1)</p>',
        '<p style="color:#767676">Just enough (4.54:1)</p>',
        '<p style="font-size:20px;font-weight:bold;color:#8a8a8a">Large and bold: 3.45:1 is enough</p>',
    ],
)
def test_enough_contrast(snippet: str) -> None:
    assert "contrast" not in found(with_html(snippet))


def test_a_link_without_a_colour_has_the_browsers_not_its_parents() -> None:
    snippet = '<div style="background-color:#000;color:#fff"><a href="https://example.org/a">Blue on black</a></div>'
    finding = the(with_html(snippet), "contrast")
    assert "text #0000ee on #000000" in finding.message


def test_one_finding_per_colour_pair_with_a_count() -> None:
    snippet = "".join(f'<p style="color:#aaaaaa">Pale {n}</p>' for n in range(3))
    finding = the(with_html(snippet), "contrast")
    assert finding.message.endswith("'Pale 0' (and 2 more)")


def test_contrast_names_the_template_line_of_the_colour(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.mjml.j2").write_text('<mjml>\n<mj-body>\n<mj-text color="#AAAAAA">x</mj-text>\n')
    parts = with_html('<p style="color:#aaaaaa">Pale</p>', templates_dir=templates, root=tmp_path)
    assert the(parts, "contrast").where == "templates/digest.mjml.j2:3"


DARK_HEAD = (
    '<meta name="color-scheme" content="light dark"><style>'
    "@media (prefers-color-scheme: dark) { .card { background-color: #15191e !important; } RULE }"
    "</style></head>"
)
CARD = '<div class="card" style="background-color:#ffffff"><p style="color:#1f2933">Our title</p></div>'


def dark_html(rule: str = "") -> str:
    return HTML.replace("</head>", DARK_HEAD.replace("RULE", rule)).replace("</body>", CARD + "</body>")


def test_dark_text_left_on_a_dark_background(tmp_path: Path) -> None:
    """The web version's title bar: dark text with no dark-mode colour, on the dark-mode background."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.mjml.j2").write_text('<mjml>\n<mj-text color="#1f2933">{{ title }}</mj-text>\n')
    finding = the(digest(html=dark_html(), templates_dir=templates, root=tmp_path), "contrast")
    assert finding.severity == "error"
    assert "in dark mode, text #1f2933 on #15191e has a contrast of 1.20:1" in finding.message
    assert finding.where == "templates/digest.mjml.j2:2"
    assert finding.fix.startswith(
        "give this text a dark-mode colour in the @media (prefers-color-scheme: dark)"
    )
    assert ".card p { color: #" in finding.fix and "!important; }" in finding.fix


def test_a_pair_dark_mode_leaves_as_it_was_is_reported_once() -> None:
    pale = '<div style="background-color:#ffffff"><span style="color:#aaaaaa">Pale</span></div>'
    html = dark_html(".card p { color: #e4e7eb !important; }").replace("</body>", pale + "</body>")
    finding = the(digest(html=html), "contrast")
    assert "in light mode, text #aaaaaa on #ffffff" in finding.message


def test_a_dark_rule_with_important_fixes_it() -> None:
    assert lint(digest(html=dark_html(".card p { color: #e4e7eb !important; }"))) == []


def test_a_dark_rule_that_is_too_dark_is_named() -> None:
    finding = the(digest(html=dark_html(".card p { color: #333333 !important; }")), "contrast")
    assert "in dark mode, text #333333 on #15191e" in finding.message
    assert finding.fix.startswith("make .card p lighter in the dark-mode rules, e.g. color: #")


def test_a_dark_rule_without_important_loses_to_the_inline_colour() -> None:
    findings = found(digest(html=dark_html(".card p { color: #e4e7eb; }")))
    assert sorted(findings) == ["contrast", "dark-mode-overridden"]
    over = findings["dark-mode-overridden"][0]
    assert over.severity == "warning"
    assert over.message.endswith(
        "the dark mode rule .card p { color: #e4e7eb } never applies: the inliner wrote color: #1f2933 into "
        "the style of the 1 element it matches, and an inline style wins over a rule without !important"
    )
    assert over.fix == "add !important: .card p { color: #e4e7eb !important; }"


def test_without_color_scheme_dark_text_stays_black_on_white() -> None:
    html = HTML.replace("</body>", "<p>Plain</p></body>").replace(
        "</head>", "<style>@media (prefers-color-scheme: dark) { p { color: #eeeeee; } }</style></head>"
    )
    assert "contrast" not in found(digest(html=html))


def test_the_web_version_contrast_is_checked() -> None:
    finding = the(with_web('<p style="color:#eeeeee">Faint</p>'), "contrast")
    assert finding.message.startswith("index.html:")


# ---- dark mode survives inlining ----

DARK_MJML = MJML.replace(
    "<mjml>",
    "<mjml><mj-head><mj-style>\n"
    "  @media (prefers-color-scheme: dark) { .card a { color: #8cc4ff !important; } }\n"
    "  [data-ogsc] .card a { color: #8cc4ff !important; }\n"
    "</mj-style></mj-head>",
)


def test_dark_rules_dropped_by_the_inliner(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.mjml.j2").write_text(
        "<mjml>\n<mj-style>\n@media (prefers-color-scheme: dark) { .card a { color: #8cc4ff !important; } }\n"
        "[data-ogsc] .card a { color: #8cc4ff !important; }\n</mj-style>\n"
    )
    html = HTML.replace(
        "</head>",
        "<style>@media (prefers-color-scheme: dark) { .card a { color: #8cc4ff !important } }</style></head>",
    )
    finding = the(
        digest(html=html, mjml=DARK_MJML, templates_dir=templates, root=tmp_path), "dark-mode-dropped"
    )
    assert finding.severity == "error"
    assert finding.message == (
        "the Outlook.com's dark mode rule [data-ogsc] .card a { color: #8cc4ff } of the template is not in "
        "digest.html: the CSS inliner dropped it"
    )
    assert finding.where == "templates/digest.mjml.j2:4"
    assert "<mj-style>" in finding.fix


def test_dark_rules_all_there() -> None:
    html = HTML.replace(
        "</head>",
        "<style>@media (prefers-color-scheme: dark) {\n .card  a { color: #8CC4FF !important; }\n}\n"
        "[data-ogsc] .card a { color: #8cc4ff !important; }</style></head>",
    )
    assert lint(digest(html=html, mjml=DARK_MJML)) == []


def test_dark_rules_parsed() -> None:
    css = (
        "p { color: red } @media screen { p { color: blue } }"
        "@media (prefers-color-scheme:dark) { h1, .a > b { color: #fff !important; background: #000 } }"
        "[data-ogsb] .x, .y { background-color: #111 }"
    )
    rules = [(r.selector, r.prop, r.value, r.important, r.outlook) for r in dark_rules(css)]
    assert rules == [
        ("h1", "color", "#fff", True, False),
        ("h1", "background", "#000", False, False),
        (".a > b", "color", "#fff", True, False),
        (".a > b", "background", "#000", False, False),
        ("[data-ogsb] .x", "background-color", "#111", False, True),
    ]


# ---- invisible characters in items ----


@pytest.mark.parametrize(
    ("field", "text", "name"),
    [
        ("title", "Alpha \u202enews", "U+202E RIGHT-TO-LEFT OVERRIDE at character 7"),
        ("title", "Alpha\u2066 news\u2069", "U+2066 LEFT-TO-RIGHT ISOLATE at character 6 (and 1 more)"),
        ("summary", "What\u200b happened", "U+200B ZERO WIDTH SPACE at character 5"),
        ("summary", "\ufeffWhat happened", "U+FEFF ZERO WIDTH NO-BREAK SPACE at character 1"),
        ("summary", "wh\u200dat", "U+200D ZERO WIDTH JOINER at character 3"),
    ],
)
def test_invisible_characters_in_an_item(field: str, text: str, name: str) -> None:
    record = item(**{field: text})
    html = HTML.replace("Alpha news", record.title)
    text_part = TEXT.replace("Alpha news", record.title)
    finding = the(digest(items=(record,), html=html, text=text_part), "invisible-character")
    assert finding.severity == "warning"
    assert finding.where == f"{SOURCE} ({field})"
    assert f"the {field} of " in finding.message and f"has an invisible {name}: " in finding.message


@pytest.mark.parametrize(
    "summary",
    [
        "Coder \U0001f469\u200d\U0001f4bb at work",  # ZWJ inside an emoji sequence
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # ZWNJ in Persian
        "\u0645\u0631\u062d\u0628\u0627 \u200fok",  # a right-to-left mark is not an override
    ],
)
def test_joiners_where_they_belong_are_fine(summary: str) -> None:
    assert "invisible-character" not in found(digest(items=(item(summary=summary),)))


# ---- links no reader can follow, in an item ----


@pytest.mark.parametrize(
    ("body", "first", "more"),
    [
        ("[us](/about)", "/about", 0),
        ("[x](javascript:alert(1)) and <ftp://example.org/f>", "javascript:alert(1)", 1),
        ("![map](data:image/png;base64,xx)", "data:image/png;base64,xx", 0),
        ("- a list with [a](page.html)\n\n> and [b](#top) quoted", "page.html", 1),
    ],
)
def test_a_body_link_no_reader_can_follow(body: str, first: str, more: int) -> None:
    finding = the(digest(items=(item(body=body),)), "item-link")
    assert finding.severity == "warning" and finding.where == f"{SOURCE} (body)"
    assert f"links to {first!r}" in finding.message
    assert ("(and 1 more)" in finding.message) is bool(more)


@pytest.mark.parametrize(
    ("summary", "address"),
    [
        ("See [the report](https://example.org/r) now.", "https://example.org/r"),
        ("See [the report]( <https://example.org/r> ) now.", "https://example.org/r"),
        ("Write to [us](mailto:team@example.org).", "mailto:team@example.org"),
        ("See [the page](/about).", "/about"),
    ],
)
def test_a_markdown_link_typed_in_a_summary(summary: str, address: str) -> None:
    finding = the(digest(items=(item(summary=summary),)), "summary-markdown")
    assert finding.where == f"{SOURCE} (summary)" and repr(address) in finding.message


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        ("[a](https://example.org/a), [m](mailto:a@example.org), ![i](https://example.org/i.png)", None),
        ("", "Prices [rose] (again) by 3% <in March>."),  # brackets and angles that are no link
        ("", "Prices [in EUR](see below) and <https://example.org/a>, as plain text writes them."),
    ],
)
def test_links_readers_can_follow_and_plain_brackets_are_fine(body: str, summary: str | None) -> None:
    record = item(body=body, **({"summary": summary} if summary else {}))
    rules = [f.rule for f in lint(digest(items=(record,)))]
    assert "item-link" not in rules and "summary-markdown" not in rules
