"""out/index.html: every built digest, newest first, every link pointing at a file that exists."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import write_item

from digest.check import parse_html
from digest.errors import OutputError
from digest.outdir import SHOT_FILES
from digest.site import entries, write_index

Run = Callable[..., Result]


def add_february(workspace: Path) -> None:
    write_item(
        workspace / "items",
        "2021-02-10-february.md",
        """
        ---
        title: A February item
        date: 2021-02-10
        category: News
        summary: Something that happened in February.
        ---
        """,
    )


def hrefs(index: Path) -> list[str]:
    doc = parse_html(index.read_text())
    return [link.href or "" for link in doc.links] + [img.src for img in doc.images]


def test_the_archive_lists_every_build_newest_first(workspace: Path, run: Run) -> None:
    add_february(workspace)
    assert run("build", "--month", "2021-02").exit_code == 0
    assert run("build", "--month", "2021-03").exit_code == 0
    index = workspace / "out" / "index.html"
    html = index.read_text()
    assert html.index("March 2021") < html.index("February 2021")
    assert "10 items" in html and "1 item ·" in html
    assert "<title>Co-operative News Digest: archive</title>" in html
    for slug in ("2021-03", "2021-02"):
        for name in ("index.html", "digest.txt", "digest.eml"):
            assert f'href="{slug}/{name}"' in html
    for href in hrefs(index):  # every link resolves to a file of the build
        assert (index.parent / href).is_file(), href


def test_the_web_version_is_where_the_email_says(workspace: Path, run: Run) -> None:
    """The email's "view in browser" link is <base_url><slug>/; the archive links <slug>/index.html there."""
    run("build", "--month", "2021-03")
    out = workspace / "out"
    base_url = "https://example.org/coop-digest/"
    email_links = [
        link.href or "" for link in parse_html((out / "2021-03" / "digest.html").read_text()).links
    ]
    assert f"{base_url}2021-03/" in email_links
    assert "2021-03/index.html" in hrefs(out / "index.html")
    web = (out / "2021-03" / "index.html").read_text()
    assert "<title>Co-operative News Digest: March 2021</title>" in web
    assert "Unsubscribe" not in web


def test_thumbnails_only_for_screenshots_that_exist(workspace: Path, run: Run) -> None:
    run("build", "--month", "2021-03")
    out = workspace / "out"
    assert "<img" not in (out / "index.html").read_text()
    for name in SHOT_FILES:
        (out / "2021-03" / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    site = write_index(out, title="News")
    html = site.path.read_text()
    assert '<img src="2021-03/shot-375-light.png"' in html and 'alt="Screenshot of March 2021"' in html
    assert html.count('href="2021-03/shot-') == 5  # the thumbnail's link and the four PNGs
    assert ">375 px, dark</a>" in html


def test_out_option_writes_the_archive_there(workspace: Path, run: Run, tmp_path: Path) -> None:
    elsewhere = tmp_path / "site"
    assert run("build", "--month", "2021-03", "--out", str(elsewhere)).exit_code == 0
    assert (elsewhere / "index.html").is_file()
    assert 'href="2021-03/index.html"' in (elsewhere / "index.html").read_text()
    assert not (workspace / "out").exists()


def test_a_broken_manifest_is_skipped_not_fatal(workspace: Path, run: Run) -> None:
    run("build", "--month", "2021-03")
    out = workspace / "out"
    (out / "junk").mkdir()
    (out / "junk" / "manifest.json").write_text("{not json")
    (out / "notes").mkdir()  # no manifest: not a build, ignored
    listed, skipped = entries(out)
    assert [e.slug for e in listed] == ["2021-03"]
    assert len(skipped) == 1 and "junk/manifest.json: not a digest manifest" in skipped[0]
    assert run("build", "--month", "2021-03").exit_code == 0


def test_names_are_escaped(workspace: Path, run: Run) -> None:
    run("build", "--month", "2021-03")
    manifest = workspace / "out" / "2021-03" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["subject"] = "<script>alert(1)</script>"
    manifest.write_text(json.dumps(data))
    html = write_index(workspace / "out", title="A & B").path.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "<h1>A &amp; B</h1>" in html


def test_an_empty_out_folder(tmp_path: Path) -> None:
    html = write_index(tmp_path / "out", title="News").path.read_text()
    assert "Nothing built yet" in html


def test_a_failed_write_keeps_the_old_page_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_index(out, title="Old")

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OutputError, match=r"index\.html: cannot write the archive page: No space left"):
        write_index(out, title="New")
    assert "<h1>Old</h1>" in (out / "index.html").read_text()
    assert [p.name for p in out.iterdir()] == ["index.html"]
