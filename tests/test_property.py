"""Property test: whatever a title or summary holds, the build either escapes it in HTML and keeps it intact
in text, or refuses it with a clear `path:line:` error. Never a traceback, never injected markup."""

from __future__ import annotations

import shutil
from urllib.parse import urlsplit

import lxml.html
import pytest
import yaml
from click.testing import CliRunner
from conftest import NOW, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.cli import main

NASTY = [
    "<script>alert(1)</script>",
    "{{ config }}",
    "{% raw %}",
    "javascript:alert(1)",
    '"><img src=x onerror=alert(1)>',
    "&amp; &lt;",
    "\r\nBcc: victim@example.org",
    "مرحبا بالعالم",
    "\u202eevil\u202c",
    "🎉🧑‍🤝‍🧑",
    "x" * 120,
    "https://example.org/" + "a" * 90,
    "]]><!--",
    "__DIGEST_UNSUBSCRIBE_URL__",
]
fragments = st.one_of(st.sampled_from(NASTY), st.text(min_size=1, max_size=40))
field_text = st.lists(fragments, min_size=1, max_size=4).map(" ".join)
URLS = [
    "https://example.org/a?b=1&c=2#d",
    "http://example.org/",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    'https://example.org/"><script>alert(1)</script>',
    "//example.org/protocol-relative",
    "/relative/path",
    "mailto:someone@example.org",
    "vbscript:msgbox(1)",
]
BODIES = [
    "[click](JaVaScRiPt:alert(1))",
    "[click](java&#x09;script:alert(1))",
    '<a href="javascript:alert(1)">raw</a>',
    "<javascript:alert(1)>",
    "![pic](javascript:alert(1))",
    "[ok](https://example.org/ok) and ![pic](https://example.org/p.png)",
    "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>",
    "[ref][1]\n\n[1]: javascript:alert(1)",
]
SAFE = ("https://", "http://", "mailto:", "#")


def squash(text: str) -> str:
    return "".join(text.split())


def bad_fields(title: str, summary: str, url: str | None) -> set[str]:
    """The rules an item's text must meet, written apart from the code: which fields a build must refuse."""
    bad = set()
    for name, value, multiline in (("title", title, False), ("summary", summary, True)):
        control = any((ord(c) < 32 and c not in "\t\n\r") or 0x7F <= ord(c) < 0xA0 for c in value)
        one_line = multiline or ("\n" not in value.strip() and "\r" not in value)
        if control or not one_line or not value.strip():
            bad.add(name)
    if url is not None:
        parts = urlsplit(url)
        if (
            parts.scheme.lower() not in ("http", "https")
            or not parts.netloc
            or any(c.isspace() or ord(c) < 32 for c in url)
            or set(url) & set('"<>\\^`{|}')
        ):
            bad.add("url")
    return bad


def test_any_item(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each generated item is built or refused exactly as the rules say; both happen many times."""
    seen = {"built": 0, "refused": 0}

    # derandomize: the same examples every run, so that CI never turns red by chance; the oracle keeps it honest.
    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        title=field_text,
        summary=field_text,
        url=st.one_of(st.none(), st.sampled_from(URLS)),
        body=st.one_of(st.just(""), st.lists(st.sampled_from(BODIES), max_size=3).map("\n\n".join)),
    )
    def one(title: str, summary: str, url: str | None, body: str) -> None:
        seen[build_one(tmp_path_factory, title, summary, url, body)] += 1

    one()
    # A property that only ever refused (or only built) would prove nothing about the other branch.
    assert seen["built"] >= 10 and seen["refused"] >= 10, seen


def build_one(
    tmp_path_factory: pytest.TempPathFactory, title: str, summary: str, url: str | None, body: str
) -> str:
    ws = tmp_path_factory.mktemp("ws")
    shutil.copy(REPO / "digest.toml", ws / "digest.toml")
    (ws / "items").mkdir()
    front = {"title": title, "date": "2021-03-15", "category": "News", "summary": summary}
    if url is not None:
        front["url"] = url
    dumped = yaml.safe_dump(front, allow_unicode=True)
    loaded = yaml.safe_load(dumped)  # the rules apply to what the file says
    expected = bad_fields(loaded["title"], loaded["summary"], loaded.get("url"))
    text = "---\n" + dumped + "---\n" + body + "\n"
    (ws / "items" / "item.md").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["--now", NOW, "--config", str(ws / "digest.toml"), "build", "--month", "2021-03"],
        prog_name="digest",
    )
    if expected:
        # Refused: one clear line naming the file, the line and a field that breaks a rule; nothing written.
        assert result.exit_code == 1, (expected, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.stderr.startswith("Error: items/item.md:"), result.stderr
        assert any(f": {name}: " in result.stderr for name in expected), (expected, result.stderr)
        assert not (ws / "out").exists()
        return "refused"
    assert result.exit_code == 0, (front, result.output)
    out = ws / "out" / "2021-03"
    html = (out / "digest.html").read_text(encoding="utf-8")
    text = (out / "digest.txt").read_text(encoding="utf-8")
    doc = lxml.html.document_fromstring(html)
    # No markup from the item made it into the document as markup; every link and image is http(s),
    # mailto or an in-page anchor.
    assert not doc.xpath("//script")
    assert not [e for e in doc.iter() if isinstance(e.tag, str) and any(a.startswith("on") for a in e.attrib)]
    # An <a name> without href is an in-page target (the clients that ignore id need it), never a link.
    links = [a for a in doc.iter("a") if a.get("href") is not None or not a.get("name")]
    for element, attribute in [*((a, "href") for a in links), *((i, "src") for i in doc.iter("img"))]:
        assert element.get(attribute, "").startswith(SAFE), lxml.html.tostring(element)
    if url is not None and url.startswith(("https://", "http://")):
        assert any(a.get("href") == url for a in doc.iter("a"))
    # The title and summary are there, as text, whole (whitespace aside).
    (h3,) = doc.xpath("//h3")
    assert squash(h3.text_content()) == squash(title)
    assert squash(summary) in squash(doc.text_content())
    assert squash(title) in squash(text) and squash(summary) in squash(text)
    return "built"
