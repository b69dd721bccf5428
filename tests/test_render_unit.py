"""render.py with inline inputs: a Digest made in the test, a template written in the test, no items/ folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config import Config, load_config
from digest.errors import TemplateError
from digest.items import Item
from digest.render import (
    GREETING,
    UNSUBSCRIBE_URL,
    Renderer,
    _wrap,
    compile_mjml,
    content_hash,
    inline_css,
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
        ("[bad](javascript:alert(1))", "[bad](javascript:alert(1))", "href"),
        ("[rel](/relative)", "[rel](/relative)", "href"),
        ("<script>alert(1)</script>", "&lt;script&gt;", "<script>"),
    ],
)
def test_markdown_links_are_absolute_and_safe(source: str, kept: str, dropped: str | None) -> None:
    html = str(markdown_html(source))
    assert kept in html
    if dropped:
        assert dropped not in html


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
