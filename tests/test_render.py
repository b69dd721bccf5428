"""render.py: the HTML email's structure, escaping, the text part, template overrides and template errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import REPO, require_tool, write_item
from lxml import html as lxml_html

from digest.check.darkmode import dark_rules, style_text

Run = Callable[..., Result]


def build(run: Run, workspace: Path, *args: str) -> tuple[str, str]:
    result = run("build", "--month", "2021-03", *args)
    assert result.exit_code == 0, result.stderr
    out = workspace / "out" / "2021-03"
    return (out / "digest.html").read_text(), (out / "digest.txt").read_text()


def test_html_structure(workspace: Path, run: Run) -> None:
    html, _ = build(run, workspace)
    assert html.startswith("<!doctype html>")
    assert '<html lang="en" dir="ltr"' in html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<meta name="supported-color-schemes" content="light dark">' in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "max-width:600px" in html  # 600 px wide, fluid below
    # The hidden preheader comes first in the body and starts with the newest titles.
    preheader = re.search(r'<div class="preheader" style="display:none;[^"]*">([^<]*)</div>', html)
    assert preheader and preheader[1].startswith("ILO and UNTFSSE participated in a Conference")
    assert "<title>Co-operative News Digest: March 2021</title>" in html
    assert "March 2021 · 10 items" in html
    # Contents with per-category counts, linking to the sections.
    assert '<a href="#news"' in html and "</a> (9)" in html
    assert '<a href="#spotlight-interviews-with-co-operators"' in html and "</a> (1)" in html
    assert '<h2 id="news"' in html
    # Dates in the configured language, items without a url shown without a link.
    assert "March 31, 2021" in html
    assert html.count("<h3") == 10
    # Footer: web version and an unsubscribe link (a mailto until `digest send` fills in each subscriber's).
    assert 'href="https://example.org/coop-digest/2021-03/"' in html
    assert 'href="mailto:news@example.org?subject=unsubscribe"' in html
    assert "__DIGEST_" not in html
    assert "fonts.googleapis.com" not in html  # no third-party request from the subscriber's mail client


def test_read_more_links_are_descriptive_and_unique(workspace: Path, run: Run) -> None:
    html, _ = build(run, workspace)
    texts = re.findall(r'<p class="more"[^>]*><a [^>]*>(.*?)</a>', html, flags=re.S)
    assert len(texts) == 5  # the five items with a url
    assert len(set(texts)) == 5
    assert all(t.startswith("Read more: ") for t in texts)


def test_css_is_inlined_and_cssutils_stays_quiet(
    workspace: Path, run: Run, capfd: pytest.CaptureFixture[str]
) -> None:
    html, _ = build(run, workspace)
    assert re.search(r'<h3 style="[^"]*font-size:17px', html)
    captured = capfd.readouterr()
    assert "WARNING" not in captured.err and "cssutils" not in captured.err.lower()


def test_text_part_is_wrapped_and_plain(workspace: Path, run: Run) -> None:
    _, text = build(run, workspace)
    for line in text.splitlines():
        assert len(line) <= 78 or re.fullmatch(r"\s*https?://\S+", line), line
    assert not re.search(r"&(amp|lt|gt|quot|#\d+);|<[a-z/]", text)
    assert "NEWS\n----" in text
    assert "SPOTLIGHT INTERVIEWS WITH CO-OPERATORS" in text
    assert "   https://www.ilo.org/global/topics/cooperatives/news/WCMS_776503/lang--en/index.htm" in text
    assert "Read it on the web: https://example.org/coop-digest/2021-03/" in text


def test_markup_in_items_is_escaped_in_html_and_intact_in_text(workspace: Path, run: Run) -> None:
    write_item(
        workspace / "items",
        "evil.md",
        """
        ---
        title: "<script>alert('t')</script> & {{ 7*7 }}"
        date: 2021-03-15
        category: "News <b>"
        url: "https://example.org/?a=1&b='x'"
        summary: "<img src=x onerror=alert(1)> {% raw %}{{ config }}{% endraw %} &amp;"
        ---
        A [link](javascript:alert(1)) and <b>raw html</b>.
        """,
    )
    html, text = build(run, workspace)
    assert "<script>" not in html and "<img src=x" not in html and "<b>raw" not in html
    # premailer (lxml) re-serialises the text: quotes need no escaping there, angle brackets still are.
    assert "&lt;script&gt;alert('t')&lt;/script&gt; &amp; {{ 7*7 }}" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "href=\"https://example.org/?a=1&amp;b='x'\"" in html
    assert (
        'href="javascript:' not in html and '<a href="javascript' not in html
    )  # left as text by markdown-it
    assert "News &lt;b&gt;" in html
    assert "<script>alert('t')</script> & {{ 7*7 }}" in text
    assert "<img src=x onerror=alert(1)> {% raw %}{{ config }}{% endraw %} &amp;" in text


def test_body_markdown_is_rendered(workspace: Path, run: Run) -> None:
    write_item(
        workspace / "items",
        "body.md",
        "---\ntitle: With body\ndate: 2021-03-02\ncategory: News\nsummary: S\n---\nSome *emphasis*.\n\nSecond paragraph.\n",
    )
    html, text = build(run, workspace)
    assert "<em>emphasis</em>" in html
    assert "Some emphasis.\n\n   Second paragraph." in text  # the text part drops the markers


def test_language_and_direction(workspace: Path, run: Run) -> None:
    config = workspace / "digest.toml"
    config.write_text(config.read_text().replace('language = "en"', 'language = "ar"'))
    html, _ = build(run, workspace)
    assert '<html lang="ar" dir="rtl"' in html
    assert "مارس" in html  # the month name, by Babel, in Arabic


def test_user_template_extends_the_default(workspace: Path, run: Run) -> None:
    (workspace / "templates" / "digest.mjml.j2").write_text(
        '{% extends "default/digest.mjml.j2" %}\n'
        "{% block footer %}<mj-section><mj-column><mj-text>Custom footer, "
        '<a href="{{ unsubscribe_url }}">unsubscribe</a></mj-text></mj-column></mj-section>{% endblock %}\n'
    )
    html, _ = build(run, workspace)
    assert "Custom footer" in html
    assert "You receive" not in html
    assert html.count("<h3") == 10  # the rest is the default


def test_missing_user_template_falls_back_to_the_packaged_one(workspace: Path, run: Run) -> None:
    (workspace / "templates" / "digest.txt.j2").unlink()
    _, text = build(run, workspace)
    assert text.startswith("Co-operative News Digest: March 2021\n")


def test_undefined_variable_names_template_and_line(workspace: Path, run: Run) -> None:
    template = workspace / "templates" / "digest.mjml.j2"
    lines = template.read_text().splitlines()
    n = next(k for k, line in enumerate(lines) if "<h1>" in line)
    lines[n] = lines[n].replace("{{ title }}", "{{ titel }}")
    template.write_text("\n".join(lines) + "\n")
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr == f"Error: templates/digest.mjml.j2:{n + 1}: 'titel' is undefined\n"


def test_syntax_error_names_template_and_line(workspace: Path, run: Run) -> None:
    (workspace / "templates" / "digest.txt.j2").write_text("line one\n{% if %}\n")
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: templates/digest.txt.j2:2: Expected an expression, got 'end of statement block'\n"
    )


def test_broken_mjml_names_the_template_and_mjml_line(workspace: Path, run: Run) -> None:
    (workspace / "templates" / "digest.mjml.j2").write_text("<mjml>\n<mj-body>\n<mj-section>\n")
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 1
    # MRML says only "unexpected end of stream": the build says which tag is left open, and where.
    assert result.stderr == (
        "Error: templates/digest.mjml.j2:3: the MJML it produced does not compile: unexpected end of stream "
        "in root template at line 3, column 1 of the generated MJML: <mj-section> is never closed "
        "(the MJML is in .digest-cache/failed.mjml)\n"
    )
    assert (workspace / ".digest-cache" / "failed.mjml").read_text().startswith("<mjml>\n<mj-body>")
    assert not (workspace / "out").exists()


def test_subject_template_error(workspace: Path, run: Run) -> None:
    config = workspace / "digest.toml"
    config.write_text(
        config.read_text().replace('subject = "{{ title }}: {{ window.label }}"', 'subject = "{{ titl }}"')
    )
    result = run("build", "--month", "2021-03")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: digest.toml: subject template: 'titl' is undefined\n",
    )


# ---- the defects measured in real mail clients (issue 9) ----


def tree(html: str) -> lxml_html.HtmlElement:
    return lxml_html.document_fromstring(html.encode())


def test_on_a_phone_only_the_text_cells_get_the_side_padding(workspace: Path, run: Run) -> None:
    """The max-width: 480px rule that sets 16 px side padding must match the cells of text, not also the
    section cells around them (16 + 16 = 32 px: wider margins on a phone than at 481 px)."""
    html, _ = build(run, workspace)
    root = tree(html)
    css = style_text(html)
    mobile = re.search(r"@media only screen and \(max-width: 480px\) \{(.*?)\n\}", css, re.S)
    assert mobile, css
    selectors = [
        sel.strip()
        for rule in re.findall(r"([^{}]+)\{[^{}]*padding-left", mobile[1])
        for sel in rule.split(",")
    ]
    assert selectors
    padded = {el for sel in selectors for el in root.cssselect(sel)}
    text_cells = [
        td for td in root.iter("td") if td.find("div") is not None and "word-break" in td.get("style", "")
    ]
    assert padded and padded <= set(root.iter("td"))
    for el in padded:
        assert not any(a in padded for a in el.iterancestors()), "nested padded cells add up"
    assert set(text_cells) <= padded  # every text cell gets it


def test_in_page_links_have_a_name_target_too(workspace: Path, run: Run) -> None:
    """Gmail, Outlook for Windows and Yahoo drop ids: each #anchor needs an <a name> as well as the id."""
    html, _ = build(run, workspace)
    root = tree(html)
    anchors = [a.get("href")[1:] for a in root.iter("a") if (a.get("href") or "").startswith("#")]
    assert len(anchors) == 2
    for name in anchors:
        assert root.cssselect(f'a[name="{name}"]'), name
        assert root.cssselect(f'[id="{name}"]'), name


def test_outlook_dark_rules_survive_the_inliner(workspace: Path, run: Run) -> None:
    """premailer drops rules that match no element; Outlook.com's [data-ogsc] ones match nothing until it
    adds the attribute. Every dark rule of the MJML is in the built HTML, as written."""
    html, _ = build(run, workspace)
    mjml = (workspace / "out" / "2021-03" / "digest.mjml").read_text()
    declared = {(r.selector, r.prop, r.value) for r in dark_rules(style_text(mjml))}
    built = {(r.selector, r.prop, r.value) for r in dark_rules(style_text(html))}
    assert any(sel.startswith("[data-ogsc]") for sel, _, _ in declared)
    assert declared <= built
    assert "[data-ogsc] .dm-card a { color: #8cc4ff !important; }" in html
    assert 'data-premailer="ignore"' not in html  # premailer's marker is gone from what is sent


def test_outlook_divider_fits_its_column(workspace: Path, run: Run) -> None:
    """mjml-python drops a padding with a unitless 0 when it sizes Outlook's divider table."""
    html, _ = build(run, workspace)
    widths = re.findall(r'<table [^>]*width="(\d+)px" style="border-top:solid', html)
    assert widths == ["552"]


def test_the_preheader_is_hidden_without_low_contrast_text(workspace: Path, run: Run) -> None:
    """White-on-white text scores HTML_FONT_LOW_CONTRAST in SpamAssassin: the preheader is hidden by its
    size and display, and has no colour."""
    html, _ = build(run, workspace)
    pre = tree(html).cssselect("div.preheader")
    assert len(pre) == 1
    style = pre[0].get("style").replace(" ", "")
    assert "display:none" in style and "max-height:0" in style and "overflow:hidden" in style
    assert "color" not in style and "#fff" not in style and "opacity" not in style
    assert not re.search(r"(?<![\w-])color:\s*#fff(fff)?\b", html, re.I)


def test_the_web_version_has_no_preheader(workspace: Path, run: Run) -> None:
    build(run, workspace)
    web = (workspace / "out" / "2021-03" / "index.html").read_text()
    assert "preheader" not in web


def test_an_unknown_mjml_tag_fails_the_build_naming_the_template_line(workspace: Path, run: Run) -> None:
    """MRML drops <mj-txt> and its text: the build fails and names the line of the child template."""
    fixture = REPO / "tests" / "fixtures" / "templates" / "unknown-tag" / "digest.mjml.j2"
    (workspace / "templates" / "digest.mjml.j2").write_text(fixture.read_text())
    result = run("build", "--month", "2021-03")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: templates/digest.mjml.j2:7: unknown MJML tag <mj-txt> (did you mean <mj-text>?): mjml-python "
        "drops it and everything in it; use an MJML component (https://documentation.mjml.io/)\n",
    )
    assert not (workspace / "out").exists()


def test_a_misplaced_component_fails_the_build_naming_the_template_line(workspace: Path, run: Run) -> None:
    fixture = REPO / "tests" / "fixtures" / "templates" / "misplaced" / "digest.mjml.j2"
    (workspace / "templates" / "digest.mjml.j2").write_text(fixture.read_text())
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: templates/digest.mjml.j2:5: <mj-column> cannot be inside <mj-body>;"
    )


def test_an_error_in_the_default_template_names_its_line(workspace: Path, run: Run) -> None:
    """The workspace's own copy of the default, with a typo on one line: that line is named."""
    template = workspace / "templates" / "digest.mjml.j2"
    lines = template.read_text().splitlines()
    n = next(k for k, line in enumerate(lines) if "<mj-divider" in line)
    lines[n] = lines[n].replace("<mj-divider", "<mj-divder")
    template.write_text("\n".join(lines) + "\n")
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: templates/digest.mjml.j2:{n + 1}: unknown MJML tag <mj-divder>")


def test_mjml_inside_an_mj_text_names_the_tag_left_open(workspace: Path, run: Run) -> None:
    template = workspace / "templates" / "digest.mjml.j2"
    lines = template.read_text().splitlines()
    n = next(k for k, line in enumerate(lines) if '<p class="meta">{{ item.when' in line)
    lines[n] = lines[n].replace("<p ", "<mj-column><p ")
    template.write_text("\n".join(lines) + "\n")
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: templates/digest.mjml.j2:{n + 1}: the MJML it produced does not "
    )
    assert "<mj-column> is never closed" in result.stderr


def test_spamassassin_finds_no_low_contrast_text(workspace: Path, run: Run) -> None:
    """The built message, through SpamAssassin's local rules: no HTML_FONT_LOW_CONTRAST (the old hidden
    preheader's white text). Skipped without spamassassin unless DIGEST_REQUIRE_TOOLS=1 (CI)."""
    import shutil
    import subprocess

    require_tool(
        shutil.which("spamassassin"), "spamassassin is not installed (Debian: apt-get install spamassassin)"
    )
    build(run, workspace)
    eml = (workspace / "out" / "2021-03" / "digest.eml").read_bytes()
    report = subprocess.run(
        ["spamassassin", "-t", "-L"], input=eml, capture_output=True, check=True, timeout=120
    ).stdout.decode()
    assert "Content analysis details" in report
    assert "HTML_FONT_LOW_CONTRAST" not in report
    assert "HTML_FONT_TINY" not in report and "TINY_FONT" not in report
