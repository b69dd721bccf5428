"""render.py: the HTML email's structure, escaping, the text part, template overrides and template errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import write_item

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
    preheader = re.search(r'<body[^>]*>\s*<div style="display:none;[^"]*">([^<]*)</div>', html)
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
    assert "Some *emphasis*.\n\n   Second paragraph." in text


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
    assert result.stderr.startswith("Error: digest.mjml.j2: the MJML it produced does not compile: ")
    assert result.stderr.endswith(" (the MJML is in .digest-cache/failed.mjml)\n")
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
