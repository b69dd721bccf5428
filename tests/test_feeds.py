"""digest import: feeds written for the tests, served by a real HTTP server on loopback."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import Result

from digest.config import load_config
from digest.errors import ConfigError
from digest.feeds import Source, import_feeds, plain_text, shorten
from digest.items import parse_item

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
NOW = datetime(2021, 4, 15, 12, tzinfo=UTC)  # conftest's --now


@dataclass
class Served:
    """What the server serves (path -> (bytes, content type)) and what it saw."""

    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    base: str = ""


@pytest.fixture
def server() -> Iterator[Served]:
    """A real HTTP server on loopback: ETag and Last-Modified with 304, a redirect, 404, a slow path."""
    served = Served()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            served.statuses.append(status)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError):  # the client gave up (the timeout test)
                self.wfile.write(body)

        def do_GET(self) -> None:
            served.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.path == "/slow":
                time.sleep(1.5)
            if self.path.startswith("/old/"):
                self._send(301, {"Location": "/feeds/" + self.path.removeprefix("/old/")})
                return
            if self.path not in served.files:
                self._send(404, {"Content-Type": "text/plain"}, b"no such feed")
                return
            body, ctype = served.files[self.path]
            etag = f'"{hash(body) & 0xFFFFFF:x}"'
            modified = "Wed, 14 Apr 2021 08:00:00 GMT"
            if self.headers.get("If-None-Match") == etag:
                self._send(304, {"ETag": etag})
                return
            self._send(200, {"Content-Type": ctype, "ETag": etag, "Last-Modified": modified}, body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()


def serve(server: Served, name: str, ctype: str = "application/rss+xml; charset=utf-8") -> str:
    server.files[f"/feeds/{name}"] = ((FIXTURES / name).read_bytes(), ctype)
    return f"{server.base}/feeds/{name}"


CONFIG = """\
title = "Feeds"
timezone = "Europe/Zurich"
[categories]
order = ["News", "Events"]
[import]
default_category = "News"
summary_length = 120
[import.categories]
"Press releases" = "News"
"Événements" = "Events"
"""


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace with an [import] section, as the current folder."""
    root = tmp_path / "ws"
    (root / "items").mkdir(parents=True)
    (root / "digest.toml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def items(ws: Path) -> dict[str, dict[str, Any]]:
    """Every item file's front matter by file name, each checked by the item parser the build uses."""
    found = {}
    for path in sorted((ws / "items").glob("*.md")):
        parse_item(Path(path.name), path.read_bytes(), ZoneInfo("Europe/Zurich"))
        found[path.name] = yaml.safe_load(path.read_text(encoding="utf-8").split("---\n")[1])
    return found


def by_id(ws: Path) -> dict[str, dict[str, Any]]:
    return {fm["source_id"]: fm for fm in items(ws).values()}


def test_rss_with_cdata_html_becomes_items_that_the_build_accepts(
    server: Served, ws: Path, run: Callable[..., Result]
) -> None:
    url = serve(server, "rss_cdata.xml")
    result = run("import", url)
    assert result.exit_code == 0, result.stderr
    got = by_id(ws)
    assert sorted(got) == ["coop-2021-001", "coop-2021-002", "coop-2021-003"]
    first = got["coop-2021-001"]
    assert first["title"] == "Cooperatives meet in Geneva"
    assert first["date"] == "2021-03-23T09:30:00+01:00"
    assert first["category"] == "News"  # "Press releases" through the map
    assert first["url"] == f"{server.base}/news/coops-meet"
    assert first["image"] == f"{server.base}/img/meeting.jpg"
    assert first["image_alt"] == "Cooperatives meet in Geneva"
    assert first["summary"] == "The cooperatives met in Geneva & online. They agreed on a plan for 2022."
    assert first["feed"] == url
    second = got["coop-2021-002"]
    assert second["title"] == "A report on social finance"  # the first of the two with this guid
    assert second["image"] == "https://coop.example.org/img/report.png"
    assert second["summary"] == "A short report."
    assert second["category"] == "News"  # no category: [import] default_category
    undated = got["coop-2021-003"]
    assert undated["date"] == "2021-04-14T08:00:00+02:00"  # the feed's lastBuildDate
    assert "the title had HTML: tags removed" in result.stderr
    assert "'Undated notice': no date: dated 2021-04-14T08:00:00+02:00 (the feed's date)" in result.stderr
    assert (
        '"Next month\'s conference": dated in the future (2021-05-01T09:00:00+00:00): skipped'
        in result.stderr
    )
    assert f"{url}: 3 new items, 1 already imported" in result.stderr
    assert result.stdout.count("wrote items/") == 3
    assert run("build", "--month", "2021-03").exit_code == 0


def test_a_second_fetch_sends_the_validators_and_a_304_adds_nothing(
    server: Served, ws: Path, run: Callable[..., Result]
) -> None:
    url = serve(server, "rss_cdata.xml")
    assert run("import", url).exit_code == 0
    before = items(ws)
    result = run("import", url)
    assert result.exit_code == 0
    assert server.statuses == [200, 304]
    headers = server.requests[1][1]
    assert headers["if-none-match"].startswith('"')
    assert headers["if-modified-since"] == "Wed, 14 Apr 2021 08:00:00 GMT"
    assert "not modified since the last import" in result.stderr
    assert items(ws) == before


def test_a_second_import_adds_only_what_is_new_and_overwrites_nothing(
    server: Served, ws: Path, run: Callable[..., Result], tmp_path: Path
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes((FIXTURES / "rss_cdata.xml").read_bytes())
    assert run("import", str(feed)).exit_code == 0
    edited = next(p for p in (ws / "items").glob("*.md") if "report" in p.name)
    edited.write_text(edited.read_text(encoding="utf-8").replace("A short report.", "Edited by hand."))
    extra = """<item><title>Brand new</title><link>https://coop.example.org/news/new</link>
      <guid>coop-2021-005</guid><pubDate>Thu, 01 Apr 2021 10:00:00 +0200</pubDate>
      <description>New.</description></item></channel>"""
    feed.write_text(feed.read_text(encoding="utf-8").replace("</channel>", extra), encoding="utf-8")
    result = run("import", str(feed))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "wrote items/2021-04-01-brand-new.md: Brand new"
    assert "Edited by hand." in edited.read_text(encoding="utf-8")
    assert len(items(ws)) == 4


def test_an_entry_already_there_by_its_link_is_not_imported(ws: Path, run: Callable[..., Result]) -> None:
    (ws / "items" / "mine.md").write_text(
        "---\ntitle: Mine\ndate: 2021-03-15\ncategory: News\nsummary: Typed by a person.\n"
        "url: https://coop.example.org/news/report\n---\n",
        encoding="utf-8",
    )
    result = run("import", str(FIXTURES / "rss_cdata.xml"))
    assert result.exit_code == 0
    ids = {fm.get("source_id") for fm in items(ws).values()}
    assert ids == {None, "coop-2021-001", "coop-2021-003"}  # None: the person's own item
    assert "is not an absolute http(s) address: no url" in result.stderr


def test_atom_with_xml_base_html_title_and_a_missing_date(
    server: Served, ws: Path, run: Callable[..., Result]
) -> None:
    url = serve(server, "atom_base.xml", "application/atom+xml")
    result = run("import", url)
    assert result.exit_code == 0, result.stderr
    got = by_id(ws)
    senegal = got["urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"]
    assert senegal["url"] == "https://social.example.org/fr/actualites/senegal.html"
    assert senegal["title"] == "Les coopératives au Sénégal"
    assert senegal["category"] == "Events"
    assert senegal["date"] == "2021-03-18T16:45:00+01:00"
    assert senegal["summary"] == "Un atelier à Dakar. Il réunit trente personnes."
    undated = got["urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6b"]
    assert undated["url"] == "https://social.example.org/fr/sans-date"
    assert undated["date"] == "2021-03-20T10:00:00+01:00"
    assert "'Sans date': no date" in result.stderr


@pytest.mark.parametrize("ctype", ["application/rss+xml", "text/xml; charset=iso-8859-1"])
def test_a_latin1_feed_is_decoded(server: Served, ws: Path, run: Callable[..., Result], ctype: str) -> None:
    url = serve(server, "latin1.xml", ctype)
    assert run("import", url).exit_code == 0
    (only,) = items(ws).values()
    assert only["title"] == "Economía social en España"
    assert only["summary"] == "Año de cooperación: más de mil socios."


def test_bad_xml_keeps_the_readable_entries_and_says_so(
    server: Served, ws: Path, run: Callable[..., Result]
) -> None:
    url = serve(server, "broken.xml")
    result = run("import", url)
    assert result.exit_code == 0
    # feedparser resolves a guid that may be a permalink against the feed's address
    assert sorted(fm["title"] for fm in items(ws).values()) == ["Damaged & unescaped", "Readable one"]
    assert f"{server.base}/feeds/b-1" in by_id(ws)
    assert f"{url}: bad XML at line 4: not well-formed (invalid token)" in result.stderr


def test_http_errors_and_non_feeds_name_the_feed_and_the_others_still_import(
    server: Served, ws: Path, run: Callable[..., Result]
) -> None:
    good = serve(server, "latin1.xml")
    page = serve(server, "notfeed.html", "text/html")
    missing = f"{server.base}/feeds/missing.xml"
    result = run("import", missing, page, good)
    assert result.exit_code == 1
    assert f"{missing}: HTTP 404 Not Found" in result.stderr
    assert f"{page}: not an RSS or Atom feed" in result.stderr
    assert "Error: feeds failed:" in result.stderr
    assert len(items(ws)) == 1


def test_a_redirect_is_followed_and_links_resolve_against_where_it_ended(
    server: Served, ws: Path, run: Callable[..., Result]
) -> None:
    serve(server, "rss_cdata.xml")
    result = run("import", f"{server.base}/old/rss_cdata.xml")
    assert result.exit_code == 0, result.stderr
    assert server.statuses[0] == 301
    assert by_id(ws)["coop-2021-001"]["url"] == f"{server.base}/news/coops-meet"
    serve(server, "broken.xml")
    assert run("import", f"{server.base}/old/broken.xml").exit_code == 0
    assert f"{server.base}/feeds/b-1" in by_id(ws)  # resolved where the redirect ended, not at /old/


def test_a_feed_that_does_not_answer_in_time(server: Served, ws: Path, run: Callable[..., Result]) -> None:
    result = run("import", "--timeout", "0.3", f"{server.base}/slow")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {server.base}/slow: no answer within 0.3 s"


def test_a_missing_file_and_no_feed_at_all(ws: Path, run: Callable[..., Result]) -> None:
    result = run("import", "nowhere.xml")
    assert result.exit_code == 1
    assert "Error: nowhere.xml: cannot read the feed file: No such file or directory" in result.stderr
    result = run("import")
    assert result.exit_code == 1
    assert "Error: no feed to import" in result.stderr


def test_dry_run_lists_and_writes_nothing(server: Served, ws: Path, run: Callable[..., Result]) -> None:
    url = serve(server, "rss_cdata.xml")
    result = run("import", "--dry-run", url)
    assert result.exit_code == 0
    assert result.stdout.count("would write items/") == 3
    assert items(ws) == {}
    assert not (ws / ".digest-cache" / "feeds.json").exists()
    assert run("import", url).exit_code == 0
    assert server.statuses == [200, 200]  # the dry run kept no validators


def test_feeds_listed_in_the_config_are_imported_with_their_category(
    ws: Path, run: Callable[..., Result]
) -> None:
    (ws / "es.xml").write_bytes((FIXTURES / "latin1.xml").read_bytes())
    with (ws / "digest.toml").open("a", encoding="utf-8") as f:
        f.write('[[import.feeds]]\nurl = "es.xml"\ncategory = "Events"\nlanguage = "es"\n')
    config = load_config(ws / "digest.toml")
    assert config.feeds_import.feeds[0].language == "es"
    assert dict(config.feeds_import.categories)["Événements"] == "Events"
    assert config.feeds_import.summary_length == 120
    result = run("import")
    assert result.exit_code == 0, result.stderr
    (only,) = items(ws).values()
    assert only["category"] == "Events"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[import.feeds]]\ncategory = "News"\n', "import.feeds: feed 1: url is missing"),
        ('[[import.feeds]]\nurl = "a.xml"\nlang = "fr"\n', "feed 1: unknown key 'lang'"),
        ('[[import.feeds]]\nurl = "a.xml"\nlanguage = "xx-nope"\n', "feed 1: unknown language"),
        ("[import]\nsummary_length = 10\n", "import.summary_length: expected a whole number"),
        ('[import.categories]\n"A" = 3\n', "import.categories: expected a table"),
        ("[import]\nfeeds = 3\n", "import.feeds: expected [[import.feeds]] tables"),
    ],
)
def test_bad_import_settings_are_refused(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "digest.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(tmp_path / "digest.toml")


def test_defaults_of_the_import_settings(tmp_path: Path) -> None:
    config = load_config(None, cwd=tmp_path, environ={})
    assert (config.feeds_import.default_category, config.feeds_import.summary_length) == ("News", 300)
    assert config.feeds_import.feeds == ()


def test_the_library_call_reports_each_feed(tmp_path: Path, ws: Path) -> None:
    config = load_config(ws / "digest.toml")
    reports = import_feeds(
        config, [Source(location=str(FIXTURES / "atom_base.xml"), category="Fallback")], now=NOW, dry_run=True
    )
    (report,) = reports
    assert report.error == ""
    assert [w.title for w in report.written] == ["Les coopératives au Sénégal", "Sans date"]
    assert "category: Fallback" in report.written[1].text  # not in the map: the feed's own category


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("One. Two.", 20, "One. Two."),
        ("First sentence here. Second one is longer.", 30, "First sentence here."),
        ("Is it? Yes! And more words after that", 12, "Is it? Yes!"),
        ("No sentence end in this long text at all", 20, "No sentence end in…"),
        ("Tiny. Then a very long sentence follows here", 30, "Tiny. Then a very long…"),
        ("Abcdefghijklmnopqrstuvwxyz", 10, "Abcdefghi…"),
        ("Exactly ten", 11, "Exactly ten"),
        ("Abc. Defgh. x", 10, "Abc."),  # "Defgh." would end one past the limit
        ("Alpha, beta gamma", 11, "Alpha…"),
    ],
)
def test_shorten_cuts_at_a_sentence_end_under_the_limit(text: str, limit: int, expected: str) -> None:
    assert shorten(text, limit) == expected
    assert len(shorten(text, limit)) <= limit


def test_plain_text_of_html() -> None:
    assert plain_text("<p>a <b>b</b></p><p>c &amp; d</p>") == "a b c & d"
    assert plain_text("  plain\n text ") == "plain text"
    assert plain_text("a &amp; b") == "a & b"


RSS = (
    """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>{}</channel></rss>"""
)


def entry(guid: str, title: str, description: str = "") -> str:
    desc = f"<description>{description}</description>" if description else ""
    return (
        f"<item><title>{title}</title><guid isPermaLink='false'>{guid}</guid>"
        f"<pubDate>Mon, 15 Mar 2021 14:00:00 +0000</pubDate>{desc}</item>"
    )


def test_same_titles_get_distinct_files_and_existing_files_are_left_alone(ws: Path, tmp_path: Path) -> None:
    taken = ws / "items" / "2021-03-15-twin.md"
    taken.write_text(
        "---\ntitle: Other\ndate: 2021-03-01\ncategory: News\nsummary: S.\n---\n", encoding="utf-8"
    )
    feed = tmp_path / "twins.xml"
    feed.write_text(RSS.format(entry("a", "Twin", "One.") + entry("b", "Twin")), encoding="utf-8")
    config = load_config(ws / "digest.toml")
    (report,) = import_feeds(config, [Source(location=str(feed))], now=NOW)
    assert [w.path.name for w in report.written] == ["2021-03-15-twin-2.md", "2021-03-15-twin-3.md"]
    assert "title: Other" in taken.read_text(encoding="utf-8")
    assert "summary: Twin\n" in report.written[1].text
    assert "'Twin': no description: the summary repeats the title" in report.notes


def test_an_entry_the_build_would_refuse_is_skipped_with_each_reason(ws: Path, tmp_path: Path) -> None:
    feed = tmp_path / "bad.xml"  # U+0081 and U+008D: control characters, which no item may hold
    feed.write_text(RSS.format(entry("a", "A&#x81;B", "C&#x8D;D") + entry("b", "Fine")), encoding="utf-8")
    (report,) = import_feeds(load_config(ws / "digest.toml"), [Source(location=str(feed))], now=NOW)
    assert [w.title for w in report.written] == ["Fine"]
    assert report.notes[0] == (
        "'A\\x81B': cannot be made into an item (title: has a control character (U+0081): remove it; "
        "summary: has a control character (U+008D): remove it): skipped"
    )


def test_the_http_charset_decodes_a_feed_that_declares_none(
    server: Served, ws: Path, run: Callable[..., Result]
) -> None:
    body = RSS.format(entry("r", "Кооперативы России", "Новости.")).replace(' encoding="utf-8"', "")
    server.files["/feeds/ru.xml"] = (body.encode("windows-1251"), "application/rss+xml; charset=windows-1251")
    assert run("import", "--category", "Events", f"{server.base}/feeds/ru.xml").exit_code == 0
    (only,) = items(ws).values()
    assert (only["title"], only["summary"], only["category"]) == ("Кооперативы России", "Новости.", "Events")


def test_each_feed_s_language_goes_into_its_items_and_the_build_makes_a_digest_per_language(
    server: Served, ws: Path, run: Callable[..., Result]
) -> None:
    fr, es = serve(server, "rss_fr.xml"), serve(server, "atom_es.xml", "application/atom+xml")
    english = serve(server, "rss_cdata.xml")
    result = run("import", fr, es, english)
    assert result.exit_code == 0, result.stderr
    got = by_id(ws)
    assert got["coop-fr-001"]["lang"] == "fr"  # <language>fr-FR</language>: the French digest
    assert got["coop-fr-001"]["url"] == f"{server.base}/fr/nouvelles/reunion"
    assert got["urn:coop:es:1"]["lang"] == "es"  # Atom's xml:lang
    assert "lang" not in got["coop-2021-001"]  # no language given: the workspace's
    built = run("build", "--month", "2021-03")
    assert built.exit_code == 0, built.stderr
    assert "fr: 2 items in 1 category -> out/2021-03/fr/" in built.stderr
    assert "es: 1 item in 1 category -> out/2021-03/es/" in built.stderr
    html = (ws / "out" / "2021-03" / "fr" / "digest.html").read_text(encoding="utf-8")
    assert "Les coopératives se réunissent à Genève" in html and "Dans ce numéro" in html


def test_the_language_option_and_a_variant_of_the_workspace_s_language(
    server: Served, ws: Path, run: Callable[..., Result]
) -> None:
    assert run("import", "--language", "klingon please", serve(server, "rss_fr.xml")).exit_code == 1
    result = run("import", "--language", "en-US", serve(server, "rss_fr.xml"))
    assert result.exit_code == 0, result.stderr
    assert all("lang" not in fm for fm in items(ws).values())  # en-US: the workspace's own (en) digest


def test_a_feed_language_that_is_no_language_is_said_and_a_configured_file_keeps_its_name(
    ws: Path, run: Callable[..., Result]
) -> None:
    text = (FIXTURES / "rss_fr.xml").read_text(encoding="utf-8").replace("fr-FR", "xx-YY")
    (ws / "odd.xml").write_text(text, encoding="utf-8")
    with open(ws / "digest.toml", "a", encoding="utf-8") as f:
        f.write('\n[[import.feeds]]\nurl = "odd.xml"\n')
    result = run("import")
    assert result.exit_code == 0, result.stderr
    assert (
        "the feed's language 'xx-YY' is not a language code: filed in the workspace's language"
        in result.stderr
    )
    got = by_id(ws)
    assert "lang" not in got["coop-fr-001"]
    assert got["coop-fr-001"]["feed"] == "odd.xml"  # as digest.toml gives it, not this machine's path


def test_an_entry_nested_deeper_than_markdown_keeps_is_imported_whole(ws: Path, tmp_path: Path) -> None:
    # An entry becomes a summary of plain text, never a Markdown body: however deep its HTML or Markdown
    # nests, nothing of it can be cut by markdown-it's nesting limit (digest/markdown.py), so none is skipped.
    html = "&lt;blockquote&gt;" * 25 + "inside" + "&lt;/blockquote&gt;" * 25
    markdown = "&gt; " * 25 + "quoted"
    feed = tmp_path / "deep.xml"
    feed.write_text(RSS.format(entry("a", "Deep", html) + entry("b", "Quoted", markdown)), encoding="utf-8")
    (report,) = import_feeds(load_config(ws / "digest.toml"), [Source(location=str(feed))], now=NOW)
    assert [w.title for w in report.written] == ["Deep", "Quoted"]
    assert report.notes == ()
    assert "summary: inside\n" in report.written[0].text
    assert "quoted" in report.written[1].text
