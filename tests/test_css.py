"""css.py: premailer's parses kept between builds give the very HTML of a parse done afresh, and premailer
is imported without the modules it needs only for the network."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from digest import css
from digest.css import MEMO_NAME, ParseMemo, inline_css
from digest.render import compile_mjml

RICH = (
    "<html><head><style>"
    "p { color: #123456; margin: 0 } .x, h1 { font-size: 20px !important; } #a .b { padding: 1px 2px }"
    " a:hover { color: red } [data-ogsc] p { color: #eee !important }"
    " @media (max-width: 480px) { .x { padding: 0 } }"
    "</style><style>td { border: 1px solid #ccc }</style></head><body>"
    '<h1 class="x" style="color: blue">T</h1><div id="a"><p class="b" style="margin: 4px;font-weight:bold">x</p>'
    '<table><tr><td style="padding:2px">c</td></tr></table><a href="https://example.org/">l</a></div>'
    "</body></html>"
)


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Forget what this process parsed: the memos read, and premailer's own in-process cache."""

    def forget() -> None:
        monkeypatch.setattr(ParseMemo, "_open", {})
        import premailer.cache

        premailer.cache.cache.clear()

    forget()
    yield forget
    forget()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every CSS parse cssutils is asked for, as 'sheet' or 'style'."""
    css._premailer()
    import cssutils

    seen: list[str] = []
    sheet, style = cssutils.parseString, cssutils.parseStyle

    def parse_sheet(*args: Any, **kwargs: Any) -> Any:
        seen.append("sheet")
        return sheet(*args, **kwargs)

    def parse_style(*args: Any, **kwargs: Any) -> Any:
        seen.append("style")
        return style(*args, **kwargs)

    monkeypatch.setattr(cssutils, "parseString", parse_sheet)
    monkeypatch.setattr(cssutils, "parseStyle", parse_style)
    return seen


def sample_html(workspace: Path, run: Callable[..., Any]) -> str:
    """The sample digest's HTML as MJML compiled it, before premailer."""
    assert run("build", "--month", "2021-03").exit_code == 0
    mjml = (workspace / "out" / "2021-03" / "digest.mjml").read_text(encoding="utf-8")
    return compile_mjml(mjml, template="digest.mjml.j2")


@pytest.mark.parametrize("source", ["rich", "sample"])
def test_kept_parses_give_the_html_of_fresh_ones(
    source: str,
    tmp_path: Path,
    fresh: Callable[[], None],
    parses: list[str],
    request: pytest.FixtureRequest,
) -> None:
    if source == "sample":
        html = sample_html(request.getfixturevalue("workspace"), request.getfixturevalue("run"))
        fresh()
    else:
        html = RICH
    cache = tmp_path / "cache"
    afresh = inline_css(html)
    assert parses  # premailer did parse
    fresh()
    parses.clear()
    first = inline_css(html, cache_dir=cache)  # fills the memo
    assert first == afresh
    written = (cache / MEMO_NAME).stat().st_ino
    assert inline_css(html, cache_dir=cache) == afresh  # the web version, say: nothing new to write
    assert (cache / MEMO_NAME).stat().st_ino == written
    assert parses.count("sheet") >= 1
    kept = json.loads((cache / MEMO_NAME).read_bytes())
    assert kept["rules"] and kept["pairs"]
    fresh()  # the next build: a new process
    parses.clear()
    again = inline_css(html, cache_dir=cache)
    assert again == afresh
    assert parses == []  # nothing parsed again
    assert (cache / MEMO_NAME).stat().st_ino == written  # nor written again
    assert "color:#123456" in afresh if source == "rich" else "<!doctype html>" in afresh


def test_a_block_written_twice_keeps_each_place(tmp_path: Path, fresh: Callable[[], None]) -> None:
    """A rule's weight holds its block's place: the same block again, later, must win again."""
    red, blue = "<style>p { color: red }</style>", "<style>p { color: blue }</style>"
    html = f"<html><head>{red}{blue}{red}</head><body><p>x</p></body></html>"
    afresh = inline_css(html)
    assert 'style="color:red"' in afresh
    fresh()
    assert inline_css(html, cache_dir=tmp_path) == afresh
    fresh()
    assert inline_css(html, cache_dir=tmp_path) == afresh


def test_the_memo_belongs_to_the_versions_and_is_read_once(
    tmp_path: Path, fresh: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    import premailer

    assert ParseMemo.of(tmp_path) is ParseMemo.of(tmp_path)
    before = css._versions()
    monkeypatch.setattr(premailer, "__version__", "0.0.1")
    assert css._versions() != before


def test_a_stand_in_module_becomes_the_real_one_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "tabnanny", raising=False)
    stand_in = css._OnFirstUse("tabnanny")
    monkeypatch.setitem(sys.modules, "tabnanny", stand_in)  # still in place, as while premailer imports
    check = stand_in.check
    assert sys.modules["tabnanny"] is not stand_in
    assert check is sys.modules["tabnanny"].check


def test_a_memo_of_other_versions_or_damaged_is_not_used(tmp_path: Path, fresh: Callable[[], None]) -> None:
    cache = tmp_path / "cache"
    afresh = inline_css(RICH)
    fresh()
    inline_css(RICH, cache_dir=cache)
    path = cache / MEMO_NAME
    good = json.loads(path.read_bytes())
    # The same keys with other results: believed only under the versions that wrote them.
    lied = {
        "version": "another premailer",
        "rules": {k: [[[0, 0, 0, 0, 0, 0], "p", "color:#badbad"]] for k in good["rules"]},
        "pairs": {k: [["color", "#badbad"]] for k in good["pairs"]},
    }
    path.write_text(json.dumps(lied))
    fresh()
    assert inline_css(RICH, cache_dir=cache) == afresh
    assert json.loads(path.read_bytes()) == good  # written again, under these versions
    path.write_text(json.dumps({**lied, "version": good["version"]}))
    fresh()
    assert "#badbad" in inline_css(RICH, cache_dir=cache)  # (so the test above could fail)
    for damaged in (b"not json", b"[]", b'{"version": 1}', json.dumps({**good, "rules": 3}).encode()):
        path.write_bytes(damaged)
        fresh()
        assert inline_css(RICH, cache_dir=cache) == afresh


def test_the_memo_keeps_only_what_a_build_used(tmp_path: Path, fresh: Callable[[], None]) -> None:
    cache = tmp_path / "cache"
    inline_css(RICH, cache_dir=cache)
    other = RICH.replace("#123456", "#654321").replace("margin: 4px", "margin: 5px")
    fresh()
    inline_css(other, cache_dir=cache)
    kept = json.loads((cache / MEMO_NAME).read_bytes())
    assert any("#654321" in k for k in kept["rules"])
    assert not any("#123456" in k for k in kept["rules"])
    assert any("margin: 5px" in k for k in kept["pairs"])
    assert not any("margin: 4px" in k for k in kept["pairs"])


def test_a_style_block_premailer_leaves_in_place_is_not_kept(tmp_path: Path) -> None:
    memo = ParseMemo(tmp_path / MEMO_NAME, "v")
    left = (["a:hover", "color:red"], [])
    assert memo.rules_of("0:a", lambda: ([], [left])) == ([], [left])
    assert "0:a" not in memo.rules
    rule = ((0, 0, 0, 1, 0, 0), "p", "color:red")
    assert memo.rules_of("0:p", lambda: ([rule], [])) == ([rule], [])
    assert memo.rules_of("0:p", lambda: pytest.fail("parsed again")) == ([rule], [])
    memo.save()
    assert ParseMemo(tmp_path / MEMO_NAME, "v").rules == {"0:p": [rule]}
    assert ParseMemo(tmp_path / MEMO_NAME, "w").rules == {}


def test_a_cache_folder_that_cannot_be_written_still_inlines(
    tmp_path: Path, fresh: Callable[[], None]
) -> None:
    cache = tmp_path / "not-a-folder"
    cache.write_text("a file where the cache folder should be")
    assert inline_css(RICH, cache_dir=cache) == inline_css(RICH)
    assert cache.read_text() == "a file where the cache folder should be"


def test_premailer_after_inlining_is_premailer_again(tmp_path: Path, fresh: Callable[[], None]) -> None:
    """The memo's stand-in for premailer's style parser is only there during an inline_css call."""
    import premailer.merge_style
    import premailer.premailer

    before = premailer.merge_style.csstext_to_pairs
    inline_css(RICH, cache_dir=tmp_path)
    assert premailer.merge_style.csstext_to_pairs is before
    assert premailer.premailer.csstext_to_pairs is before


# ---- premailer without the network's modules ----


class Counting(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Counting.hits.append(self.path)
        body = b"p { color: #00ff00 }"
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def css_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Counting.hits = []
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


PROBE = """
import sys
from digest.css import inline_css
out = inline_css("<html><head><style>p{color:red}</style></head><body><p>x</p></body></html>")
assert 'style="color:red"' in out, out
print(sorted(m for m in ("requests", "urllib.request", "http.client", "ssl", "importlib.metadata") if m in sys.modules))
import cssutils
# cssutils' own use of urllib.request (a file path as a URL) works, with the real module
assert cssutils.helper.path2url("/tmp/a b.css") == "file:/tmp/a%20b.css"
import urllib.request
assert sys.modules["urllib.request"] is urllib.request and hasattr(urllib.request, "urlopen")
sheet = cssutils.parseString("@import url(URL); p { color: red }")
print([r.styleSheet.cssText.decode() for r in sheet if r.type == r.IMPORT_RULE])
import requests
print(hasattr(requests, "Session"))
"""


def test_premailer_comes_without_the_network_modules_and_fetches_nothing(css_server: str) -> None:
    probe = PROBE.replace("URL", css_server + "dark.css")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    imported, imports, real_requests = out.stdout.splitlines()
    assert imported == "[]"  # none of them was imported to inline CSS
    assert imports == "['']"  # cssutils' fetcher found nothing...
    assert Counting.hits == []  # ...and asked no server
    assert real_requests == "True"  # and whoever imports requests later gets the real one


# ---- cssutils only when a parse is not in the memo ----

FLOATING = (
    "<html><head><style>.r { float: right } .l { float:left; width: 10px }</style></head><body>"
    '<img class="r" src="a.png" alt="a"><img src="b.png" alt="b" style="FLOAT : left">'
    '<img class="l" src="c.png" alt="c"><img src="d.png" alt="d" style="border:0"></body></html>'
)


@pytest.mark.parametrize("html", [FLOATING, RICH], ids=["floating", "no-float"])
def test_floating_images_get_premailers_align(html: str, tmp_path: Path, fresh: Callable[[], None]) -> None:
    """The floating-image pass is skipped only where no image can float: the HTML is premailer's own."""
    premailer = css._premailer()
    page = css.keep_uninlinable(html)
    options: dict[str, Any] = {"remove_classes": False, "strip_important": False, "allow_network": False}
    theirs = premailer.Premailer(page, keep_style_tags=False, disable_validation=True, **options).transform()
    ours = inline_css(html)
    assert ours.removeprefix("<!doctype html>\n") == theirs.removeprefix("<!doctype html>\n")
    if html is FLOATING:
        assert ours.count('align="right"') == 1 and ours.count('align="left"') == 2
    fresh()
    assert inline_css(html, cache_dir=tmp_path) == ours
    fresh()
    assert inline_css(html, cache_dir=tmp_path) == ours  # from the memo


CSSUTILS_PROBE = """
import sys
from digest.cli import main
try:
    main(["-q", "build", "--month", "2021-03"])
except SystemExit as end:
    assert end.code == 0, end.code
print("cssutils" in sys.modules)
"""


def test_a_build_with_every_parse_in_the_memo_does_not_import_cssutils(workspace: Path) -> None:
    def cssutils_imported() -> bool:
        out = subprocess.run(
            [sys.executable, "-c", CSSUTILS_PROBE], cwd=workspace, capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip() == "True"

    # An image (with a style attribute) in the window: premailer's floating-image pass has one to read.
    item = next((workspace / "items").glob("2021-03-23-*.md"))
    text = item.read_text(encoding="utf-8")
    item.write_text(text.replace("\n---", "\nimage: https://example.org/a.png\nimage_alt: A\n---", 1))
    assert cssutils_imported()  # the first build parses, and fills the memo
    assert (workspace / ".digest-cache" / MEMO_NAME).exists()
    assert not cssutils_imported()  # the next one finds every parse there
    html = (workspace / "out" / "2021-03" / "digest.html").read_text(encoding="utf-8")
    assert "https://example.org/a.png" in html
    (workspace / ".digest-cache" / MEMO_NAME).unlink()
    assert cssutils_imported()
    assert (workspace / "out" / "2021-03" / "digest.html").read_text(encoding="utf-8") == html


QUIET_PROBE = """
import sys
if sys.argv[1] == "first":
    import cssutils  # imported before digest needs it, by anyone
from digest.css import inline_css
page = '<html><head><style>p { colr: bluish }</style></head><body><p>x</p>'
page += '<img src="a.png" alt="a" style="float: left; colr: bluish; width: -"></body></html>'
out = inline_css(page)
assert 'align="left"' in out, out
"""


@pytest.mark.parametrize("who", ["first", "digest"])
def test_cssutils_says_nothing_of_a_templates_odd_css_whoever_imported_it(who: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", QUIET_PROBE, who], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
