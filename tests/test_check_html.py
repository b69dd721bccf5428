"""digest check, the HTML as the rules see it: links, images, ids and visible text out of inline HTML."""

from __future__ import annotations

from digest.check import Image, Link, parse_html


def test_links_images_ids_and_lines() -> None:
    doc = parse_html(
        "<!doctype html>\n<html><body>\n"
        '<h2 id="news">News</h2>\n'
        '<a href="https://e.org/a">A <b>bold</b> link</a>\n'
        '<a name="top"></a><a>no address</a>\n'
        '<img src="https://e.org/i.png" alt="An image" width="10" height="20"><img src="p.gif">\n'
        "</body></html>"
    )
    assert doc.links == [
        Link("https://e.org/a", "A bold link", 4),
        Link(None, "", 5, named=True),
        Link(None, "no address", 5),
    ]
    assert doc.images == [Image("https://e.org/i.png", "An image", 6, "10", "20"), Image("p.gif", None, 6)]
    assert doc.ids == {"news", "top"}


def test_an_id_on_a_link_is_a_target_too() -> None:
    doc = parse_html('<p><a id="here">x</a><span name="not-an-anchor">y</span></p>')
    assert doc.ids == {"here"}
    assert doc.links == [Link(None, "x", 1, named=True)]


def test_an_image_link_is_named_by_its_alt_text() -> None:
    doc = parse_html('<a href="https://e.org/">Go <img src="x.png" alt="to the site"> now</a><img alt="out">')
    assert [link.text for link in doc.links] == ["Go  to the site now"]
    assert [link.text for link in parse_html('<a href="#"><img src="x.png" alt=""></a>').links] == [""]


def test_visible_text_leaves_out_head_style_script_and_hidden_elements() -> None:
    doc = parse_html(
        "<html><head><title>Title</title><style>p { color: red }</style></head><body>"
        "<p>One<!-- a comment --> two</p><script>var x;</script>"
        '<div style="display: NONE">hidden <b>also hidden</b></div>'
        "<template>template</template>"
        '<div style="color:red">three</div> four'
        "</body></html>"
    )
    assert doc.text.split() == ["One", "two", "three", "four"]


def test_text_after_a_hidden_element_is_visible_and_belongs_to_its_link() -> None:
    doc = parse_html('<a href="https://e.org/">before<span style="display:none">x</span>after</a>tail')
    assert doc.links[0].text == "beforeafter"
    assert doc.text.split() == ["before", "after", "tail"]


def test_entities_are_decoded() -> None:
    doc = parse_html('<p><a href="https://e.org/?a=1&amp;b=2">Fish &amp; chips</a> &eacute;t&eacute;</p>')
    assert doc.links[0].href == "https://e.org/?a=1&b=2"
    assert doc.links[0].text == "Fish & chips"
    assert doc.text == "Fish & chips  été"


def test_a_document_with_nothing_in_it() -> None:
    for source in ("", "   \n", "<!-- only a comment -->"):
        doc = parse_html(source)
        assert (doc.links, doc.images, doc.ids, doc.text) == ([], [], set(), "")


def test_a_fragment_and_non_ascii_text() -> None:
    doc = parse_html(
        '<?xml version="1.0" encoding="latin-1"?><p>Économie <a href="https://e.org/é">sociale</a></p>'
    )
    assert doc.text.split() == ["Économie", "sociale"]
    assert doc.links == [Link("https://e.org/é", "sociale", 1)]
