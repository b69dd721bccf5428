"""digest check, the MJML schema: what mjml-python passes over in silence, found in inline MJML."""

from __future__ import annotations

import pytest

from digest.check import MjmlProblem, lint_mjml
from digest.check.mjml import MJML_ATTRIBUTES, MJML_CHILDREN

MJML_OK = """<mjml lang="en">
  <mj-head>
    <mj-attributes><mj-all font-family="Arial" anything="x" /><mj-text color="#000" padding="0" />
      <mj-class name="muted" color="#666" /></mj-attributes>
    <mj-style inline="inline">a { color: red; }</mj-style>
    <mj-raw><meta name="color-scheme" content="light dark"></mj-raw>
    <meta name="x-apple-disable-message-reformatting">
  </mj-head>
  <mj-body width="600px" css-class="page">
    <mj-section padding="0" mj-class="muted"><mj-column>
      <mj-text><p>Text with <b>HTML</b> and <mj-whatever> inside is not MJML</p></mj-text>
      <mj-image src="https://example.org/a.png" alt="A" width="100px" />
      <mj-social><mj-social-element name="x" whatever="y">X</mj-social-element></mj-social>
    </mj-column></mj-section>
  </mj-body>
</mjml>"""


def test_sound_mjml() -> None:
    assert lint_mjml(MJML_OK) == []


def test_an_unknown_tag() -> None:
    source = MJML_OK.replace("<mj-text><p>", "<mj-txt>Hi</mj-txt><mj-text><p>", 1)
    assert lint_mjml(source) == [
        MjmlProblem(
            11,
            "mjml-unknown-tag",
            "error",
            "unknown MJML tag <mj-txt> (did you mean <mj-text>?): mjml-python drops it and everything in it",
            "<mj-txt",
            "use an MJML component (https://documentation.mjml.io/)",
        )
    ]


def test_an_unknown_tag_like_no_other_gets_no_hint() -> None:
    [problem] = lint_mjml(MJML_OK.replace("<mj-text><p>", "<mj-zzzzzzz>Hi</mj-zzzzzzz><mj-text><p>", 1))
    assert problem.message.startswith("unknown MJML tag <mj-zzzzzzz>: ")


def test_an_unknown_attribute() -> None:
    assert lint_mjml(MJML_OK.replace("<mj-text>", '<mj-text colr="red">', 1)) == [
        MjmlProblem(
            11,
            "mjml-unknown-attribute",
            "warning",
            "<mj-text> has no attribute 'colr' (did you mean 'color'?): it is ignored",
            "colr=",
            "remove it or use the attribute's right name (see the MJML documentation)",
        )
    ]
    [problem] = lint_mjml(MJML_OK.replace("<mj-text>", '<mj-text zzz="1">', 1))
    assert problem.message == "<mj-text> has no attribute 'zzz': it is ignored"


def test_attributes_are_checked_in_mj_attributes_too() -> None:
    [problem] = lint_mjml(MJML_OK.replace('<mj-text color="#000"', '<mj-text colour="#000"'))
    assert (problem.line, problem.rule) == (3, "mjml-unknown-attribute")


def test_mj_image_needs_alt() -> None:
    assert lint_mjml(MJML_OK.replace('alt="A" ', "")) == [
        MjmlProblem(
            12,
            "img-alt",
            "error",
            "<mj-image> without alt text",
            "<mj-image",
            'add alt="what the image shows"',
        )
    ]
    assert [p.rule for p in lint_mjml(MJML_OK.replace('alt="A"', 'alt=""'))] == ["img-alt"]
    # a default in mj-attributes is not an image
    assert lint_mjml(MJML_OK.replace("<mj-all", '<mj-image padding="0" /><mj-all')) == []


def test_nesting() -> None:
    source = MJML_OK.replace(
        '<mj-section padding="0" mj-class="muted"><mj-column>', "<mj-column><mj-section>"
    )
    problems = lint_mjml(source)
    assert problems[0] == MjmlProblem(
        10,
        "mjml-nesting",
        "error",
        "<mj-column> cannot be inside <mj-body>",
        "<mj-column",
        "<mj-body> holds: <mj-section>, <mj-wrapper>, <mj-hero>, <mj-raw>, <mj-include>",
    )
    assert problems[1].message == "<mj-section> cannot be inside <mj-column>"


def test_the_root_must_be_mjml() -> None:
    assert [p.message for p in lint_mjml("<mj-body></mj-body>")] == ["<mj-body> cannot be inside <>"]


def test_html_outside_mj_text() -> None:
    assert lint_mjml(MJML_OK.replace("<mj-text><p>", "<div>x</div><mj-text><p>", 1)) == [
        MjmlProblem(
            11,
            "mjml-html",
            "warning",
            "<div> directly inside <mj-column>: HTML belongs in mj-text or mj-raw",
            "<div",
            "wrap the HTML in <mj-text> (or <mj-raw>)",
        )
    ]


def test_html_in_the_head_or_outside_mjml_is_left_alone() -> None:
    assert lint_mjml("<p>before</p>" + MJML_OK) == []


def test_the_content_of_an_ending_tag_is_not_mjml() -> None:
    """Inside mj-text (and mj-raw...) anything goes, until that same tag closes."""
    source = MJML_OK.replace("<b>HTML</b>", "<mj-column><mj-txt></mj-txt></mj-text-ish><div>", 1)
    assert lint_mjml(source) == []
    after = MJML_OK.replace(
        '<mj-image src="https://example.org/a.png" alt="A" width="100px" />', "<mj-txt></mj-txt>"
    )
    assert [p.rule for p in lint_mjml(after)] == ["mjml-unknown-tag"]


def test_a_self_closed_tag_is_not_a_parent() -> None:
    source = MJML_OK.replace('width="100px" />', 'width="100px" /><mj-text>after</mj-text>')
    assert lint_mjml(source) == []
    closed = MJML_OK.replace("<mj-column>", "<mj-column /><mj-column>", 1)
    assert lint_mjml(closed) == []


def test_an_unclosed_tag_is_closed_by_its_parent() -> None:
    source = MJML_OK.replace("</mj-column></mj-section>", "</mj-section>").replace(
        "</mj-body>", "<mj-section /></mj-body>"
    )
    assert lint_mjml(source) == []


def test_a_stray_end_tag_is_ignored() -> None:
    assert lint_mjml(MJML_OK.replace("<mj-body", "</mj-column><mj-body")) == []


def test_the_schema_is_consistent() -> None:
    for parent, children in MJML_CHILDREN.items():
        assert parent == "" or parent in MJML_ATTRIBUTES
        assert all(child in MJML_ATTRIBUTES for child in children), parent


@pytest.mark.parametrize(
    "tag", ["mj-hero", "mj-navbar", "mj-carousel", "mj-accordion", "mj-wrapper", "mj-group"]
)
def test_less_common_components_are_known(tag: str) -> None:
    assert tag in MJML_ATTRIBUTES
