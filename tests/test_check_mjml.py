"""digest check, the MJML schema: what mjml-python passes over in silence, found in inline MJML."""

from __future__ import annotations

import pytest

from digest.check import MjmlProblem, lint_mjml
from digest.mjmlschema import MJML_ATTRIBUTES, MJML_CHILDREN, unclosed_tags

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


# ---- a unitless 0 in a padding: mjml-python then sizes Outlook's tables as if there were no padding ----


@pytest.mark.parametrize(
    ("tag", "padding", "flagged"),
    [
        ("mj-divider", "0 24px 16px", True),
        ("mj-divider", "16px 24px 0", True),
        ("mj-image", "0 24px", True),
        ("mj-section", "10px 0 0 5px", True),
        ("mj-column", "0 0 0 5px", True),
        ("mj-divider", "0px 24px 16px", False),
        ("mj-divider", "0", False),  # nothing at the sides: nothing to lose
        ("mj-section", "28px 0 8px", False),
        ("mj-section", "0 5px 0 0px", True),
        ("mj-text", "0 24px", False),  # no width is computed from a text's padding
    ],
)
def test_a_unitless_zero_in_a_padding(tag: str, padding: str, flagged: bool) -> None:
    extra = ' src="https://example.org/a.png" alt="A"' if tag == "mj-image" else ""
    inner = f'<{tag} padding="{padding}"{extra} />' if tag not in ("mj-section", "mj-column") else ""
    section = f' padding="{padding}"' if tag == "mj-section" else ""
    column = f' padding="{padding}"' if tag == "mj-column" else ""
    if tag == "mj-text":
        inner = f'<mj-text padding="{padding}">x</mj-text>'
    mjml = f"<mjml><mj-body><mj-section{section}><mj-column{column}>{inner}</mj-column></mj-section></mj-body></mjml>"
    problems = lint_mjml(mjml)
    if not flagged:
        assert problems == []
        return
    assert [p.rule for p in problems] == ["mjml-padding-zero"]
    px = " ".join("0px" if s == "0" else s for s in padding.split())
    assert problems[0].severity == "warning"
    assert problems[0].fix == f'write padding="{px}" (0px, not 0), or padding-left and padding-right'
    assert problems[0].needle == f'padding="{padding}"'


def test_a_unitless_zero_in_mj_attributes_is_named_so() -> None:
    mjml = '<mjml><mj-head><mj-attributes><mj-all padding="0 10px" /></mj-attributes></mj-head></mjml>'
    (problem,) = lint_mjml(mjml)
    assert problem.message.startswith('<mj-all (in mj-attributes)> padding="0 10px": ')


# ---- tags left open (for a compile error that says only "unexpected end of stream") ----


def test_unclosed_tags() -> None:
    assert unclosed_tags("<mjml>\n<mj-body>\n  <mj-section>\n") == [
        ("mj-section", 3, 3),
        ("mj-body", 2, 1),
        ("mjml", 1, 1),
    ]
    assert unclosed_tags(MJML_OK) == [("mj-whatever", 11, 45)]  # MRML refuses that too
    assert unclosed_tags(MJML_OK.replace("<mj-whatever> ", "")) == []
    inside = "<mjml><mj-body><mj-section><mj-column>\n<mj-text><mj-column>x</mj-text></mj-column></mj-section></mj-body></mjml>"
    assert unclosed_tags(inside) == [("mj-column", 2, 10)]
    closed_inside = "<mjml><mj-body><mj-section><mj-column><mj-text><mj-x>y</mj-x></mj-text></mj-column></mj-section></mj-body></mjml>"
    assert unclosed_tags(closed_inside) == []
