"""`digest build --import`: the [[import.feeds]] pulled first (a real HTTP server on loopback), then built."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import test_feeds
from click.testing import Result
from test_feeds import Served, serve

Run = Callable[..., Result]
server = test_feeds.server  # test_feeds' fixtures: its HTTP server on loopback and its workspace
ws = test_feeds.ws


def listed(ws: Path, *urls: str) -> None:
    with (ws / "digest.toml").open("a", encoding="utf-8") as f:
        for url in urls:
            f.write(f'[[import.feeds]]\nurl = "{url}"\n')


def test_build_import_pulls_the_feeds_then_builds_them(server: Served, ws: Path, run: Run) -> None:
    listed(ws, serve(server, "rss_cdata.xml"))
    result = run("build", "--month", "2021-03", "--import")
    assert result.exit_code == 0, result.stderr
    assert f"{server.base}/feeds/rss_cdata.xml: 3 new items, 1 already imported" in result.stderr
    assert "Warning: " in result.stderr  # the feed's own notes (HTML in a title, an undated entry) are said
    assert "2 items in 1 category -> out/2021-03/" in result.stderr  # the third is dated April
    manifest = json.loads((ws / "out" / "2021-03" / "manifest.json").read_bytes())
    assert [i["title"] for i in manifest["items"]] == [
        "Cooperatives meet in Geneva",
        "A report on social finance",
    ]
    again = run("build", "--month", "2021-03", "--import")  # a 304: nothing new, and it builds again
    assert again.exit_code == 0, again.stderr
    assert server.statuses[-1] == 304
    assert "new item" not in again.stderr
    assert len(list((ws / "items").glob("*.md"))) == 3


def test_a_feed_that_fails_is_a_warning_and_the_rest_is_imported_and_built(
    server: Served, ws: Path, run: Run
) -> None:
    listed(ws, f"{server.base}/feeds/missing.xml", serve(server, "rss_cdata.xml"))
    result = run("build", "--month", "2021-03", "--import")
    assert result.exit_code == 0, result.stderr
    missing = f"{server.base}/feeds/missing.xml"
    warnings = [line for line in result.stderr.splitlines() if line.startswith(f"Warning: {missing}")]
    assert len(warnings) == 1 and "404" in warnings[0]
    assert warnings[0].endswith("(building with the items already there)")
    assert "2 items in 1 category -> out/2021-03/" in result.stderr


def test_every_feed_failing_still_builds_what_is_there(server: Served, ws: Path, run: Run) -> None:
    (ws / "items" / "kept.md").write_text(
        "---\ntitle: Kept\ndate: 2021-03-02\ncategory: News\nsummary: Here before.\n---\n", encoding="utf-8"
    )
    listed(ws, f"{server.base}/feeds/missing.xml")
    result = run("build", "--month", "2021-03", "--import")
    assert result.exit_code == 0, result.stderr
    assert "Warning: " in result.stderr and "404" in result.stderr
    assert "1 item in 1 category -> out/2021-03/" in result.stderr


def test_build_import_without_feeds_listed_is_an_error_before_building(ws: Path, run: Run) -> None:
    result = run("build", "--month", "2021-03", "--import")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --import: no [[import.feeds]] in digest.toml: list the feeds to pull, or drop --import\n"
    )
    assert not (ws / "out").exists()


def test_build_without_import_fetches_nothing(server: Served, ws: Path, run: Run) -> None:
    listed(ws, serve(server, "rss_cdata.xml"))
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 3  # nothing in items/: nothing to do
    assert server.requests == []
