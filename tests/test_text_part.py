"""An item's Markdown body in the text part (digest/plaintext.py): laid out as plain text for a mail client."""

from __future__ import annotations

import email
import email.policy
import textwrap
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.check.rules import text_urls
from digest.markdown import safe_link
from digest.plaintext import display_width, markdown_text
from digest.render import markdown_html

Run = Callable[..., Result]
INDENT = "   "  # how digest.txt.j2 indents an item's text
GOLDEN = REPO / "tests" / "golden" / "2021-03" / "digest.txt"
CSW65 = "items/2021-03-23-ilo-coop-participates-in-two-parallel-events-at-csw65.md"


def text(markdown: str, width: int = 78) -> str:
    return markdown_text(textwrap.dedent(markdown).strip("\n"), width, INDENT)


def lines_fit(out: str, width: int = 78) -> None:
    """Every line fits the width, but for one that holds an address (which is never broken)."""
    for line in out.splitlines():
        assert display_width(line) <= width or "://" in line or "mailto:" in line, line


def test_the_reported_body() -> None:
    """The new user's body: lists one item a line, the link whole, no Markdown markers left."""
    out = text(
        """
        an item body with
        - a cake
        - a chair
        - a friend

        1. first
        2. second
        and a [link to the map](https://example.org/map) and **bold** and a # Heading
        """
    )
    # CommonMark reads the last line as the continuation of "second" (no blank line before it), and a "#"
    # inside a line is no heading: the HTML shows the same.
    assert out == (
        "   an item body with\n"
        "\n"
        "   - a cake\n"
        "   - a chair\n"
        "   - a friend\n"
        "\n"
        "   1. first\n"
        "   2. second and a link to the map (https://example.org/map) and bold and a #\n"
        "      Heading"
    )
    html = markdown_html("1. first\n2. second\nand a # Heading")
    assert "<li>second\nand a # Heading</li>" in html


def test_bullets_and_numbers_one_item_a_line() -> None:
    out = text(
        """
        * star
        * star again

        7) seven
        8) eight

        10. ten
        11. eleven
        12. twelve with a text long enough to go past the right margin, so that it wraps under itself
        """
    )
    assert out == (
        "   - star\n"
        "   - star again\n"
        "\n"
        "   7) seven\n"
        "   8) eight\n"
        "\n"
        "   10. ten\n"
        "   11. eleven\n"
        "   12. twelve with a text long enough to go past the right margin, so that it\n"
        "       wraps under itself"
    )


def test_a_loose_list_keeps_its_blank_lines() -> None:
    out = text(
        """
        - one

        - two
          with a second paragraph:

          and its third.
        - three
        """
    )
    assert out == ("   - one\n\n   - two with a second paragraph:\n\n     and its third.\n\n   - three")


def test_nested_list() -> None:
    out = text(
        """
        - fruit
          - apples
            1. green
            2. red
          - pears, of which there are so many kinds that the line must wrap under the word
        - vegetables
        """
    )
    assert out == (
        "   - fruit\n"
        "     - apples\n"
        "       1. green\n"
        "       2. red\n"
        "     - pears, of which there are so many kinds that the line must wrap under\n"
        "       the word\n"
        "   - vegetables"
    )


def test_empty_list_items() -> None:
    assert text("-\n- two\n") == "   -\n   - two"
    assert text("-\n-\n") == "   -\n   -"  # no paragraph at all: a tight list


def test_an_empty_heading_or_code_block_leaves_no_blank_lines() -> None:
    assert markdown_text("First\n\n#\n\nSecond\n\n```\n```\n\nThird\n\n```\n\n\n```") == (
        "First\n\nSecond\n\nThird"
    )
    assert markdown_text("> ##\n\nAfter") == "After"  # a quote of nothing is nothing
    assert markdown_text("    code\n\n#\n\n    more") == "    code\n\n    more"


def test_a_list_that_starts_a_list_item() -> None:
    assert text("- - a\n  - b\n- c") == "   - - a\n     - b\n   - c"


def test_hard_breaks_in_a_list_item_and_twice_in_a_row() -> None:
    assert text("- a\\\n  b") == "   - a\n     b"
    assert text("a\\\n\\\nb") == "   a\n\n   b"  # two <br> in the HTML: an empty line


def test_paragraphs_soft_and_hard_breaks() -> None:
    # Two trailing spaces are a hard break too (written with \x20, which an editor does not strip).
    out = text(
        "First paragraph,\nits second line joins it.\n\nSecond paragraph\\\nafter a hard break\x20\x20\nand another."
    )
    assert out == (
        "   First paragraph, its second line joins it.\n"
        "\n"
        "   Second paragraph\n"
        "   after a hard break\n"
        "   and another."
    )


def test_a_paragraph_wraps_like_the_summary() -> None:
    """The template's `wrap(78, "   ")` and the body's layout agree on prose."""
    from digest.render import _wrap

    prose = "The UN Task Force on Social and Solidarity Economy held its 34th regular meeting. " * 4
    assert text(prose) == _wrap(prose, 78, INDENT)


def test_links_read_text_then_url() -> None:
    out = text(
        """
        See [the map](https://example.org/map), <https://example.org/auto> and
        [https://example.org/same](https://example.org/same). Write to [us](mailto:news@example.org)
        or <news@example.org>. [](https://example.org/empty) [Foo](https://en.wikipedia.org/wiki/Foo_(bar)).
        """
    )
    assert out == (
        "   See the map (https://example.org/map), https://example.org/auto and\n"
        "   https://example.org/same. Write to us (mailto:news@example.org) or\n"
        "   mailto:news@example.org. https://example.org/empty Foo\n"
        "   (https://en.wikipedia.org/wiki/Foo_(bar))."
    )
    # Each address is read whole by the check that compares the text with the HTML's links.
    assert set(text_urls(out)) == {
        "https://example.org/map",
        "https://example.org/auto",
        "https://example.org/same",
        "mailto:news@example.org",
        "https://example.org/empty",
        "https://en.wikipedia.org/wiki/Foo_(bar)",
    }


def test_a_link_around_an_image_and_an_image_alone() -> None:
    out = text(
        "[![the logo](https://example.org/logo.png)](https://example.org/) ![a chart](https://example.org/c.png)"
    )
    assert out == "   the logo (https://example.org/) a chart"


def test_a_long_url_is_never_broken() -> None:
    url = "https://example.org/reports/2021/annual-report-of-the-cooperative-with-a-very-long-path/index.html?lang=en"
    out = text(
        f"""
        Read [the whole annual report of the year, with all its many tables]({url}). Then more words follow
        it, and a typed address https://example.org/{"a" * 90} stays whole too.
        """
    )
    lines = out.splitlines()
    assert f"   ({url})." in lines  # on a line of its own, with what is glued to it
    assert f"   https://example.org/{'a' * 90}" in lines
    assert "   Read the whole annual report of the year, with all its many tables" in lines
    lines_fit(out)
    assert set(text_urls(out)) == {url, f"https://example.org/{'a' * 90}"}


def test_a_long_address_in_a_list_keeps_its_indent() -> None:
    url = "https://example.org/" + "b" * 80
    out = text(f"- a very long link: [the report]({url})\n- next")
    assert out == f"   - a very long link: the report\n     ({url})\n   - next"


def test_a_long_word_that_is_no_address_is_cut_to_the_width() -> None:
    word = "x" * 100
    out = text(f"A {word} b")
    assert out == f"   A\n   {'x' * 75}\n   {'x' * 25} b"
    mail = "mailto:" + "m" * 90 + "@example.org"
    assert text(f"[write]({mail})") == f"   write\n   ({mail})"
    assert text(f"Typed: {mail} now") == f"   Typed:\n   {mail}\n   now"


def test_a_long_word_in_a_list_item_is_cut_under_its_text() -> None:
    assert text("- " + "x" * 100) == f"   - {'x' * 73}\n     {'x' * 27}"


def test_a_combining_mark_never_starts_a_line() -> None:
    """After an address that overflows the line, a decomposed "が" (か + U+3099) still stays in one piece."""
    url = "https://example.org/" + "a" * 80
    assert markdown_text(f"[x]({url})か\u3099", 78, INDENT) == f"   x\n   ({url})か\u3099"


def test_a_short_code_span_is_not_cut_with_the_word_it_is_glued_to() -> None:
    assert markdown_text("x`abcdefghijklmnopqrstuvwxyz`", 20, INDENT) == "   x`abcdefghijklmnopqrstuvwxyz`"


def test_emphasis_markers_dropped_and_headings_plain() -> None:
    out = text(
        """
        # The *first* heading

        Setext heading
        --------------

        Some *em*, _em_, **strong**, __strong__, ***both*** and \\*literal stars\\*.
        """
    )
    assert out == (
        "   The first heading\n\n   Setext heading\n\n   Some em, em, strong, strong, both and *literal stars*."
    )


def test_code_is_kept_as_written() -> None:
    long_line = (
        "    return {'a': 1}  # a comment that goes well past the right margin of seventy-eight columns"
    )
    out = text(
        f"""
        Run `digest  build` or ``a ` b``.

        ```python
        def f():
        {long_line}

            pass
        ```

            indented    code
        """
    )
    assert out == (
        "   Run `digest  build` or ``a ` b``.\n"
        "\n"
        "       def f():\n"
        f"       {long_line}\n"
        "\n"
        "           pass\n"
        "\n"
        "       indented    code"
    )


def test_a_long_code_span_may_break_at_its_spaces() -> None:
    code = "`" + " ".join(["word"] * 20) + "`"
    out = text(f"Code: {code}")
    assert len(out.splitlines()) == 2
    lines_fit(out)


def test_quote_and_rule() -> None:
    out = text(
        """
        > A quote with a *list*:
        >
        > - one
        > - two
        >
        > > and a quote in it, long enough to wrap at the right margin of the text part.

        ---
        After.
        """
    )
    assert out == (
        "   > A quote with a list:\n"
        "   >\n"
        "   > - one\n"
        "   > - two\n"
        "   >\n"
        "   > > and a quote in it, long enough to wrap at the right margin of the text\n"
        "   > > part.\n"
        "\n"
        "   * * *\n"
        "\n"
        "   After."
    )


def test_raw_html_stays_literal() -> None:
    """Raw HTML is escaped in the HTML part (html=False); in the text it is the characters as written."""
    source = textwrap.dedent(
        """
        A <b>bold?</b> &lt;i&gt; and &amp;amp; and <img src=x onerror=alert(1)>.

        <script>
        alert("hi")
        </script>

        <!-- a comment -->
        """
    )
    out = markdown_text(source, 78, INDENT)
    assert out == (
        "   A <b>bold?</b> <i> and &amp; and <img src=x onerror=alert(1)>.\n"
        "\n"
        '   <script> alert("hi") </script>\n'
        "\n"
        "   <!-- a comment -->"
    )
    assert "<script>" not in markdown_html(source)  # the HTML part escapes the same characters


def test_a_javascript_link_shows_no_address() -> None:
    source = (
        "[click](javascript:alert(1)) [two](JavaScript:alert(2)) <javascript:alert(3)> "
        "[four](java&#x09;script:alert(4)) [five](data:text/html;base64,PHNjcmlwdD4=) [six](/relative) "
        "[seven]( vbscript:msgbox) [eight](https://example.org/ok)"
    )
    out = markdown_text(source, 78, INDENT)
    assert out == "   click two four five six seven eight (https://example.org/ok)"
    # The HTML part links none of them either: the two parts agree on which addresses are links.
    html = markdown_html(source)
    assert html.count("href=") == 1 and 'href="https://example.org/ok"' in html


def test_safe_link() -> None:
    assert safe_link("https://x.org") and safe_link("HTTP://x.org") and safe_link(" mailto:a@b.org")
    assert not safe_link("javascript:x") and not safe_link("ftp://x.org") and not safe_link("//x.org")


def test_french_body() -> None:
    """Accents take one column; a no-break space (before « : ! ; », in 10 000) never becomes a line break."""
    source = (
        "Les **coopératives** d’Amérique latine se réunissent à Montréal pour « l’économie sociale et "
        "solidaire\u00a0» : voici le programme de l’été\u00a0! Un café, des crêpes et 10\u202f000 "
        "participants attendus\u00a0; inscrivez-vous [sur le site](https://example.org/inscription)."
    )
    out = markdown_text(source, 60, INDENT)
    assert out == (
        "   Les coopératives d’Amérique latine se réunissent à\n"
        "   Montréal pour « l’économie sociale et solidaire\u00a0» : voici\n"
        "   le programme de l’été\u00a0! Un café, des crêpes et 10\u202f000\n"
        "   participants attendus\u00a0; inscrivez-vous sur le site\n"
        "   (https://example.org/inscription)."
    )
    # Decomposed accents (e + U+0301) are measured as one column each: the lines break at the same places.
    decomposed = markdown_text(unicodedata.normalize("NFD", source), 60, INDENT)
    assert unicodedata.normalize("NFC", decomposed) == out


def test_accents_take_one_column_composed_or_not() -> None:
    """A line of "été" fills the 78 columns whether its accents are one character or two (e + U+0301)."""
    for form in ("NFC", "NFD"):
        out = markdown_text(unicodedata.normalize(form, " ".join(["été"] * 40)), 78, INDENT)
        assert [display_width(line) for line in out.splitlines()] == [78, 78, 10]


def test_cjk_body_breaks_between_characters_by_columns() -> None:
    source = (
        "東京都は日本の首都であり、世界で最も人口の多い都市圏の一つです。「協同組合」の会議は"
        "二〇二一年三月に開かれ、多くの参加者（約一万人）が集まりました。詳しくは"
        "[こちら](https://example.jp/kaigi)をご覧ください。"
    )
    out = markdown_text(source, 40, INDENT)
    assert out == (
        "   東京都は日本の首都であり、世界で最も\n"
        "   人口の多い都市圏の一つです。「協同組\n"
        "   合」の会議は二〇二一年三月に開かれ、\n"
        "   多くの参加者（約一万人）が集まりまし\n"
        "   た。詳しくはこちら\n"
        "   (https://example.jp/kaigi)をご覧くだ\n"
        "   さい。"
    )
    assert all(display_width(line) <= 40 for line in out.splitlines())


def test_cjk_punctuation_stays_with_its_character() -> None:
    """A full stop or closing bracket never starts a line, an opening bracket never ends one."""
    # 3 + 17 * 2 + 2 = 39 columns: "い" fits on the first line but its "。" would not, so both go down.
    assert markdown_text("あ" * 17 + "い。" + "う" * 3, 40, INDENT).splitlines() == [
        "   " + "あ" * 17,
        "   い。ううう",
    ]
    # "「" would fit at the end of the first line, but it goes down with what it opens.
    assert markdown_text("あ" * 17 + "「い」" + "う" * 3, 40, INDENT).splitlines() == [
        "   " + "あ" * 17,
        "   「い」ううう",
    ]


def test_cjk_text_breaks_before_a_latin_word_and_between_fullwidth_letters() -> None:
    assert markdown_text("あ" * 17 + "ABCDEF", 40, INDENT).splitlines() == ["   " + "あ" * 17, "   ABCDEF"]
    assert markdown_text("x " + "Ａ" * 40, 40, INDENT).splitlines() == [
        "   x " + "Ａ" * 17,
        "   " + "Ａ" * 18,
        "   " + "Ａ" * 5,
    ]


def test_empty_bodies() -> None:
    assert markdown_text("", 78, INDENT) == ""
    assert markdown_text("  \n\n", 78, INDENT) == ""
    assert markdown_text("[ref]: https://example.org/", 78, INDENT) == ""


_MARKDOWN_BITS = st.sampled_from(
    [
        "word",
        "mot été",
        "東京都は日本",
        "**bold**",
        "*em*",
        "`code`",
        "[a link](https://example.org/a/rather/long/path/to/somewhere/else/on/the/site)",
        "<b>raw</b>",
        "\n- ",
        "\n1. ",
        "\n\n",
        "\n> ",
        "\n# ",
        "\u00a0!",
        "x" * 90,
        "\n",
    ]
)  # joined with one space: never the four spaces of a code block, whose lines are not wrapped


@settings(max_examples=200, deadline=None)
@given(st.lists(_MARKDOWN_BITS, max_size=40), st.integers(min_value=30, max_value=100))
def test_every_line_fits_the_width(bits: list[str], width: int) -> None:
    out = markdown_text(" ".join(bits), width, INDENT)
    lines_fit(out, width)
    assert all(line == line.rstrip() for line in out.splitlines())
    assert all(line.startswith(INDENT) or not line for line in out.splitlines())


BODY = """\
The two events:
- a panel on *women in cooperatives*
- a workshop with [UN Women](https://www.unwomen.org/en/csw/csw65-2021)

Write to <news@example.org>.
"""
BODY_TEXT = """
   The two events:

   - a panel on women in cooperatives
   - a workshop with UN Women (https://www.unwomen.org/en/csw/csw65-2021)

   Write to mailto:news@example.org.

"""


def test_sample_with_a_body_builds_and_passes_the_checks(workspace: Path, run: Run) -> None:
    """The whole sample: the body laid out in digest.txt and in the message's text/plain part, every other
    line as before (the golden file), and `check --strict` finds no line too wide and no link missing."""
    item = workspace / CSW65
    item.write_text(item.read_text(encoding="utf-8") + BODY, encoding="utf-8")
    assert run("build", "--month", "2021-03").exit_code == 0
    out = workspace / "out" / "2021-03"
    got = (out / "digest.txt").read_text(encoding="utf-8")
    summary_end = "   March 15-26.\n"
    assert summary_end + BODY_TEXT + "   https://www.ilo.org/" in got
    assert got.replace(BODY_TEXT, "", 1) == GOLDEN.read_text(encoding="utf-8")
    msg = email.message_from_bytes((out / "digest.eml").read_bytes(), policy=email.policy.default)
    plain = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    assert plain.get_content().replace("\r\n", "\n") == got
    result = run("check", "--month", "2021-03", "--strict")
    assert result.exit_code == 0, result.stdout + result.stderr


def test_sample_without_bodies_is_unchanged(workspace: Path, run: Run) -> None:
    """No sample item has a body: the text part is byte for byte the one reviewed before bodies were laid out."""
    assert run("build", "--month", "2021-03").exit_code == 0
    assert (workspace / "out" / "2021-03" / "digest.txt").read_bytes() == GOLDEN.read_bytes()


@pytest.mark.parametrize(
    ("body", "text"),
    [
        # Words that read as another address than the link's: the link's own address only.
        ("[https://bank.example.com/login](https://evil.example.net/)", "https://evil.example.net/"),
        ("[www.bank.example](http://evil.example.net)", "http://evil.example.net"),
        ("[news@bank.example](mailto:phish@evil.example.net)", "mailto:phish@evil.example.net"),
        # The same address written otherwise: once.
        ("<https://example.org/ä>", "https://example.org/%C3%A4"),
        ("[https://example.org](https://example.org/)", "https://example.org/"),
        # Words that are words keep their address beside them.
        ("[Node.js](https://nodejs.org)", "Node.js (https://nodejs.org)"),
        ("[the map](https://example.org/map)", "the map (https://example.org/map)"),
    ],
)
def test_link_words_that_look_like_an_address_show_the_real_one_only(body: str, text: str) -> None:
    assert markdown_text(body) == text
