"""render.py with inline inputs: a Digest made in the test, a template written in the test, no items/ folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config import Config, load_config
from digest.css import inline_css, keep_uninlinable, split_css
from digest.errors import TemplateError
from digest.items import Item
from digest.render import (
    GREETING,
    UNSUBSCRIBE_URL,
    Renderer,
    _wrap,
    compile_mjml,
    content_hash,
    markdown_html,
)
from digest.select import Digest, Section
from digest.window import Window

NOW = datetime(2021, 4, 15, 12, tzinfo=UTC)
MARCH = Window(datetime(2021, 3, 1, tzinfo=UTC), datetime(2021, 4, 1, tzinfo=UTC), "March 2021", "2021-03")


def item(n: int, **kw: object) -> Item:
    values: dict[str, object] = {
        "slug": f"item-{n}",
        "source": Path(f"item-{n}.md"),
        "title": f"Title {n}",
        "when": datetime(2021, 3, n, tzinfo=UTC),
        "all_day": True,
        "category": "News",
        "summary": f"Summary {n}.",
        "url": f"https://example.org/{n}",
    }
    values.update(kw)
    return Item(**values)  # type: ignore[arg-type]


def digest(*items: Item) -> Digest:
    return Digest(MARCH, (Section("News", "news", tuple(items), 0),))


def config(tmp_path: Path, toml: str = "", templates: dict[str, str] | None = None) -> Config:
    (tmp_path / "digest.toml").write_text('title = "Coop & News"\n' + toml, encoding="utf-8")
    for name, text in (templates or {}).items():
        (tmp_path / "templates").mkdir(exist_ok=True)
        (tmp_path / "templates" / name).write_text(text, encoding="utf-8")
    return load_config(tmp_path / "digest.toml", environ={})


def test_subject_is_a_header_not_html(tmp_path: Path) -> None:
    rendered = Renderer(config(tmp_path), now=NOW).render(digest(item(2)))
    assert rendered.subject == "Coop & News: March 2021"  # not "&amp;"
    assert rendered.preheader == "Title 2"
    assert GREETING in rendered.text and UNSUBSCRIBE_URL in rendered.html


def test_the_web_version_has_no_personal_parts(tmp_path: Path) -> None:
    web = Renderer(config(tmp_path), now=NOW).render(digest(item(2)), web=True)
    assert GREETING not in web.html and UNSUBSCRIBE_URL not in web.html
    assert web.text == ""


def test_a_long_preheader_is_cut_at_a_word(tmp_path: Path) -> None:
    items = [item(n, title="word " * 15) for n in (1, 2, 3)]
    pre = Renderer(config(tmp_path), now=NOW).render(digest(*items)).preheader
    assert len(pre) <= 100 and pre.endswith("…") and not pre.endswith(" …")


def test_a_template_override_is_used_and_escapes(tmp_path: Path) -> None:
    text = "{% for i in digest.items %}{{ i.title }}|{% endfor %}\n{{ greeting }}\n{{ unsubscribe_url }}\n"
    cfg = config(tmp_path, templates={"digest.txt.j2": text})
    rendered = Renderer(cfg, now=NOW).render(digest(item(1, title="<b>&</b>")))
    assert rendered.text.startswith("<b>&</b>|")  # the text part is not HTML: nothing escaped
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in rendered.html  # the HTML part is


def test_an_undefined_name_in_a_template_is_an_error_with_its_line(tmp_path: Path) -> None:
    cfg = config(tmp_path, templates={"digest.txt.j2": "line one\n{{ no_such_name }}\n"})
    with pytest.raises(TemplateError, match=r"digest\.txt\.j2:2: 'no_such_name' is undefined"):
        Renderer(cfg, now=NOW).render(digest(item(1)))


def test_content_hash_is_stable_across_processes_and_sees_content(tmp_path: Path) -> None:
    renderer = Renderer(config(tmp_path), now=NOW)
    a = renderer.render(digest(item(1)))
    # The placeholders differ from process to process; the hash names them, so it does not.
    swapped = type(a)(a.mjml, a.html.replace(GREETING, "__OTHER__"), a.text, a.subject, a.preheader)
    assert content_hash(a) != content_hash(swapped)
    assert content_hash(a) == content_hash(renderer.render(digest(item(1))))
    assert content_hash(a) != content_hash(renderer.render(digest(item(1, summary="Changed."))))


def test_wrap_keeps_urls_whole_and_cuts_long_words() -> None:
    url = "https://example.org/" + "a" * 100
    assert _wrap(f"see {url} now", width=40).splitlines() == ["see", url, "now"]
    assert all(len(line) <= 20 for line in _wrap("x" * 50, width=20).splitlines())
    assert _wrap("one\n\ntwo", width=20) == "one\n\ntwo"
    assert _wrap("a b c", width=20, indent="  ", first="- ") == "- a b c"


@pytest.mark.parametrize(
    ("source", "kept", "dropped"),
    [
        ("[ok](https://example.org/x)", 'href="https://example.org/x"', None),
        ("[mail](mailto:a@example.org)", 'href="mailto:a@example.org"', None),
        ("[bad](javascript:alert(1))", ">bad<", "href"),
        ("[rel](/relative)", "rel", "href"),
        ("<script>alert(1)</script>", "&lt;script&gt;", "<script>"),
    ],
)
def test_markdown_links_are_absolute_and_safe(source: str, kept: str, dropped: str | None) -> None:
    html = str(markdown_html(source))
    assert kept in html
    if dropped:
        assert dropped not in html


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        # A link an email may not carry shows as its words, without the Markdown around them.
        ("See [bad](javascript:alert(1)) now.", "<p>See bad now.</p>"),
        ("See [about us](/about) now.", "<p>See about us now.</p>"),
        ("See [file](ftp://example.org/f) now.", "<p>See file now.</p>"),
        ("See [x](java&#x09;script:y) now.", "<p>See x now.</p>"),
        ("See [**bold** words](data:text/html,x) now.", "<p>See <strong>bold</strong> words now.</p>"),
        # An autolink's words are its address: both go.
        ("See <ftp://example.org/f> now.", "<p>See  now.</p>"),
        ("See <javascript:alert(1)> now.", "<p>See  now.</p>"),
        # An image with an unsafe source: its alt text; one inside an unsafe link keeps its safe source.
        ("See ![the map](data:image/png;base64,xx) now.", "<p>See the map now.</p>"),
        ("See ![a *b* `c`](rel.png) now.", "<p>See a b `c` now.</p>"),  # the words, as the text part has them
        (
            "See [![map](https://example.org/m.png)](/maps) now.",
            '<p>See <img src="https://example.org/m.png" alt="map" /> now.</p>',
        ),
        # Safe ones around an unsafe one are untouched.
        (
            "[a](https://example.org/a) [b](/b) <https://example.org/c>",
            '<p><a href="https://example.org/a">a</a> b '
            '<a href="https://example.org/c">https://example.org/c</a></p>',
        ),
        (
            "*[em](javascript:x)* and [mail](mailto:a@example.org)",
            '<p><em>em</em> and <a href="mailto:a@example.org">mail</a></p>',
        ),
    ],
)
def test_an_unsafe_link_shows_as_its_words(source: str, shown: str) -> None:
    assert str(markdown_html(source)).strip() == shown


def test_compile_mjml_error_names_template_line_and_keeps_the_mjml(tmp_path: Path) -> None:
    source = "<mjml><mj-body>\n<mj-section>\n<mj-column><mj-text>x</mj-text></mj-column>\n"
    with pytest.raises(TemplateError) as info:
        compile_mjml(source, template="t.mjml.j2", keep_failed=tmp_path)
    assert str(info.value).startswith("t.mjml.j2: the MJML it produced does not compile:")
    assert (tmp_path / "failed.mjml").read_text() == source


def test_inline_css_inlines_and_keeps_media_queries() -> None:
    html = (
        "<html><head><style>p{color:#123456}"
        "@media (prefers-color-scheme: dark){p{color:#fff}}</style></head><body><p>x</p></body></html>"
    )
    out = inline_css(html)
    assert out.startswith("<!doctype html>")
    assert 'style="color:#123456"' in out
    assert "@media (prefers-color-scheme: dark)" in out


# ---- CSS that cannot be inlined stays as written ----


def test_split_css_keeps_at_rules_attribute_and_pseudo_selectors_apart() -> None:
    css = """
      h1 { font-size: 26px; }
      a, [data-ogsc] a { color: red; }
      :root { color-scheme: light dark; }
      /* a comment { with braces } */
      @media (prefers-color-scheme: dark) {
        .x td { color: #fff !important; }
      }
      [data-ogsc] .card a { color: #8cc4ff !important; }
      @font-face { font-family: X; src: url(x.woff2); }
    """
    inline, kept = split_css(css)
    assert inline == "h1 { font-size: 26px; }\na { color: red; }"
    assert kept.splitlines() == [
        "[data-ogsc] a { color: red; }",
        ":root { color-scheme: light dark; }",
        "@media (prefers-color-scheme: dark) {",
        ".x td { color: #fff !important; }",
        "}",
        "[data-ogsc] .card a { color: #8cc4ff !important; }",
        "@font-face { font-family: X; src: url(x.woff2); }",
    ]
    assert "comment" not in inline + kept


def test_split_css_keeps_an_unclosed_rule_as_written() -> None:
    inline, kept = split_css("p { color: red; } @media (x) { p { color: blue; }")
    assert inline == "p { color: red; }"
    assert kept == "@media (x) { p { color: blue; }"


def test_keep_uninlinable_leaves_comments_other_media_and_marked_blocks_alone() -> None:
    html = (
        "<head><!--[if mso]><style>[x] p{a:b}</style><![endif]-->"
        '<style media="print">[x] p{a:b}</style>'
        '<style data-premailer="ignore">[y] p{a:b}</style>'
        "<style>p{color:red} [data-ogsc] p{color:blue}</style></head>"
    )
    out = keep_uninlinable(html)
    assert out.startswith(
        '<head><!--[if mso]><style>[x] p{a:b}</style><![endif]--><style media="print">[x] p{a:b}</style>'
        '<style data-premailer="ignore">[y] p{a:b}</style>'
    )
    assert out.endswith(
        '<style>p {color:red}</style><style data-premailer="ignore">[data-ogsc] p {color:blue}</style></head>'
    )
    assert keep_uninlinable("<style>p{color:red}</style>") == "<style>p {color:red}</style>"
    assert keep_uninlinable("<style>[a] p{color:red}</style>") == (
        '<style data-premailer="ignore">[a] p {color:red}</style>'
    )


def test_inline_css_keeps_outlook_dark_rules() -> None:
    html = (
        "<html><head><style>p{color:#123456} [data-ogsc] p{color:#eeeeee !important}"
        "@media (max-width: 480px){.pad{padding:0}}</style></head><body><p>x</p></body></html>"
    )
    out = inline_css(html)
    assert 'style="color:#123456"' in out
    assert "[data-ogsc] p{color:#eeeeee !important}" in out.replace(" {", "{")
    assert "@media (max-width: 480px){.pad{padding:0}}" in out
    assert "data-premailer" not in out


# ---- the template's own line for a line of the generated MJML ----


def test_source_lines_follow_blocks_comments_and_values(tmp_path: Path) -> None:
    base = (
        "<mjml>\n"  # 1
        "<mj-x></mj-x>\n"  # 2
        "{# a comment\n"  # 3
        "   over two lines #}\n"  # 4
        "<mj-x></mj-x>\n"  # 5: the same text again, below the comment
        "<mj-y />\n"  # 6
        "<mj-x></mj-x>\n"  # 7: and again
        "<mj-body>\n"  # 8
        "{% block main %}{% endblock %}<mj-tail />\n"  # 9
        "<mj-raw>{{ body }}</mj-raw>\n"  # 10
        "</mj-body>\n"  # 11
        "</mjml>\n"  # 12
    )
    child = (
        '{% extends "base.j2" %}\n'  # 1
        "{% block main %}\n"  # 2
        "<mj-section>\n"  # 3
        "  <mj-column>\n"  # 4
        "    <mj-txt>{{ title }}</mj-txt>\n"  # 5
        "  </mj-column>\n"  # 6
        "</mj-section>\n"  # 7
        "<mj-last>{% endblock %}\n"  # 8: the base's <mj-tail /> follows on the same output line
    )
    (tmp_path / "base.j2").write_text(base)
    (tmp_path / "child.j2").write_text(child)
    import jinja2

    from digest.render import source_lines

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(tmp_path), trim_blocks=True, lstrip_blocks=True, autoescape=True
    )
    template = env.get_template("child.j2")
    ctx = {"title": "T", "body": "line a\nline b\nline c"}
    out = template.render(ctx).split("\n")
    lines = source_lines(template, ctx)
    assert len(lines) == len(out)
    pairs = [(text, (Path(f).name, n)) for text, (f, n) in zip(out, lines, strict=True) if text.strip()]
    shown = dict(pairs)
    assert shown["<mjml>"] == ("base.j2", 1)
    assert [where for text, where in pairs if text == "<mj-x></mj-x>"] == [
        ("base.j2", 2),
        ("base.j2", 5),
        ("base.j2", 7),
    ]
    assert shown["<mj-body>"] == ("base.j2", 8)  # after the comment
    assert shown["<mj-section>"] == ("child.j2", 3)
    assert shown["    <mj-txt>T</mj-txt>"] == ("child.j2", 5)
    assert shown["</mj-section>"] == ("child.j2", 7)
    assert shown["<mj-last><mj-tail />"] == ("child.j2", 8)  # who wrote the line's first text
    assert shown["<mj-raw>line a"] == ("base.j2", 10)
    assert shown["line b"] == ("base.j2", 10)  # a value's lines stay on its expression's line
    assert shown["</mj-body>"] == ("base.j2", 11)


def test_a_bad_tag_fails_the_render_with_the_template_line(tmp_path: Path) -> None:
    template = (
        '{% extends "default/digest.mjml.j2" %}\n'
        "{% block intro %}\n"
        "<mj-section>\n"
        "  <mj-colum><mj-text>Hi</mj-text></mj-colum>\n"
        "</mj-section>\n"
        "{% endblock %}\n"
    )
    cfg = config(tmp_path, templates={"digest.mjml.j2": template})
    with pytest.raises(TemplateError) as info:
        Renderer(cfg, now=NOW).render(digest(item(1)))
    assert str(info.value).startswith(
        f"{tmp_path / 'templates' / 'digest.mjml.j2'}:4: unknown MJML tag <mj-colum>"
    )


def test_a_bad_attribute_does_not_fail_the_render(tmp_path: Path) -> None:
    """Only what makes content vanish fails the build; the rest is for `digest check`."""
    template = (
        '{% extends "default/digest.mjml.j2" %}\n'
        '{% block intro %}<mj-section><mj-column><mj-text colour="red">Hi</mj-text></mj-column></mj-section>'
        "{% endblock %}\n"
    )
    cfg = config(tmp_path, templates={"digest.mjml.j2": template})
    assert "Hi" in Renderer(cfg, now=NOW).render(digest(item(1))).html
