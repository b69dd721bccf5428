"""out/index.html: every built digest, newest first, every link pointing at a file that exists.

Most tests write manifests inline (outdir.Manifest(...).to_json() into tmp folders); a few build the sample.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import Result
from conftest import REPO, write_item

from digest.check import parse_html
from digest.errors import OutputError
from digest.outdir import SHOT_FILES, ItemRecord, Manifest
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


# ---- inline manifests: no build needed ----


def item(n: int) -> ItemRecord:
    return ItemRecord(
        slug=f"item-{n}", title=f"Item {n}", date="2021-03-02", category="News", url=None,
        source=f"items/{n}.md", summary="Something.",
    )  # fmt: skip


def manifest(
    out: Path,
    slug: str,
    *,
    start: str,
    label: str | None = None,
    subject: str = "The digest",
    items: int = 2,
    files: tuple[str, ...] = ("index.html", "digest.html", "digest.txt", "digest.eml"),
) -> Path:
    """A built folder as far as the archive sees it: manifest.json and the files named."""
    folder = out / slug
    folder.mkdir(parents=True)
    m = Manifest(
        generator="test",
        built_at="2021-04-15T12:00:00+00:00",
        slug=slug,
        label=label or slug,
        start=datetime.fromisoformat(start),
        end=datetime.fromisoformat(start),
        subject=subject,
        preheader="",
        web_url=f"https://example.org/{slug}/",
        preview_values={"greeting": "Hello", "unsubscribe_url": "https://example.org/u"},
        content_hash="0" * 64,
        sections=(),
        items=tuple(item(n) for n in range(items)),
    )
    (folder / "manifest.json").write_bytes(m.to_json())
    for name in files:
        (folder / name).write_text("x")
    return folder


def test_newest_window_first_by_instant_then_slug(tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest(out, "a-feb", start="2021-02-01T00:00:00+00:00")
    # 2021-03-01 00:00 at +02:00 is 2021-02-28 22:00 UTC: earlier than the next one, though it reads later.
    manifest(out, "b-plus-two", start="2021-03-01T00:00:00+02:00")
    manifest(out, "c-utc", start="2021-02-28T23:30:00+00:00")
    manifest(out, "d-march", start="2021-03-01T00:00:00+00:00")
    manifest(out, "e-march-too", start="2021-03-01T00:00:00+00:00")  # same start: the slug decides
    listed, skipped = entries(out)
    assert [e.slug for e in listed] == ["e-march-too", "d-march", "c-utc", "b-plus-two", "a-feb"]
    assert skipped == []
    html = write_index(out, title="News").path.read_text()
    positions = [html.index(f'id="{slug}"') for slug in ("e-march-too", "d-march", "c-utc", "b-plus-two")]
    assert positions == sorted(positions)


def test_an_entry_holds_what_the_manifest_and_folder_say(tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest(
        out, "2021-03", start="2021-03-01T00:00:00+01:00", label="March 2021", subject="News", items=3,
        files=("digest.txt", "notes.md"),
    )  # fmt: skip
    (out / "2021-03" / "shot-640-dark.png").write_bytes(b"png")
    [e] = entries(out)[0]
    assert (e.slug, e.label, e.subject, e.item_count) == ("2021-03", "March 2021", "News", 3)
    assert (e.start, e.end) == ("2021-03-01T00:00:00+01:00", "2021-03-01T00:00:00+01:00")
    assert e.built_at == "2021-04-15T12:00:00+00:00"
    assert e.files == ("digest.txt", "manifest.json")  # only what exists, among what the archive links
    assert e.shots == ("shot-640-dark.png",)


def test_damaged_manifests_are_skipped_and_said(tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest(out, "2021-03", start="2021-03-01T00:00:00+00:00")
    (out / "junk").mkdir()
    (out / "junk" / "manifest.json").write_text("{not json")
    old = manifest(out, "old-format", start="2021-01-01T00:00:00+00:00")
    data = json.loads((old / "manifest.json").read_text())
    data["format"] = 1
    (old / "manifest.json").write_text(json.dumps(data))
    partial = manifest(out, "partial", start="2021-01-01T00:00:00+00:00")
    data = json.loads((partial / "manifest.json").read_text())
    del data["subject"]
    (partial / "manifest.json").write_text(json.dumps(data))
    (out / "notes").mkdir()  # no manifest: not a build, neither listed nor skipped
    site = write_index(out, title="News")
    assert [e.slug for e in site.entries] == ["2021-03"]
    assert len(site.skipped) == 3
    junk, old_format, part = site.skipped
    assert "junk/manifest.json: not a manifest this digest can read" in junk
    assert "old-format/manifest.json" in old_format and "format 1" in old_format
    assert "partial/manifest.json" in part and "subject" in part
    html = site.path.read_text()
    assert 'id="2021-03"' in html and "junk" not in html and "partial" not in html


def test_texts_are_escaped_and_folder_names_quoted(tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest(
        out,
        'x"><b onclick=alert(1)> #?',  # a folder name: no slash
        start="2021-03-01T00:00:00+00:00",
        label="<img src=x onerror=alert(2)>",
        subject="</p><script>alert(3)</script>",
    )
    html = write_index(out, title="A & B <i>").path.read_text()
    assert "<script>" not in html and "<img src=x" not in html and "<i>" not in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;/p&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in html
    assert "<h1>A &amp; B &lt;i&gt;</h1>" in html and "<title>A &amp; B &lt;i&gt;: archive</title>" in html
    assert "<b onclick" not in html
    quoted = "x%22%3E%3Cb%20onclick%3Dalert%281%29%3E%20%23%3F"
    assert f'href="{quoted}/index.html"' in html
    assert 'id="x&#34;&gt;&lt;b onclick=alert(1)&gt; #?"' in html


def test_thumbnail_is_the_375_light_shot_else_the_first_there_is(tmp_path: Path) -> None:
    out = tmp_path / "out"
    all_four = manifest(out, "all-four", start="2021-03-01T00:00:00+00:00")
    one = manifest(out, "one", start="2021-02-01T00:00:00+00:00")
    manifest(out, "none", start="2021-01-01T00:00:00+00:00")
    for name in reversed(SHOT_FILES):
        (all_four / name).write_bytes(b"png")
    (one / "shot-640-dark.png").write_bytes(b"png")
    listed = {e.slug: e for e in entries(out)[0]}
    assert listed["all-four"].thumbnail == "shot-375-light.png"
    assert listed["all-four"].shots == SHOT_FILES  # in the house order, not the file system's
    assert listed["one"].thumbnail == "shot-640-dark.png"
    assert listed["none"].thumbnail is None
    html = write_index(out, title="News").path.read_text()
    assert '<img src="all-four/shot-375-light.png"' in html and '<img src="one/shot-640-dark.png"' in html
    assert html.count("<img") == 2
    assert '<a href="one/shot-640-dark.png">640 px, dark</a>' in html
    assert '<a href="all-four/shot-375-light.png">375 px, light</a>' in html


def test_links_only_to_files_there_and_counts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest(out, "one", start="2021-03-01T00:00:00+00:00", items=1, files=("digest.txt",))
    manifest(out, "two", start="2021-02-01T00:00:00+00:00", items=2)
    html = write_index(out, title="News").path.read_text()
    one = html[html.index('id="one"') : html.index('id="two"')]
    assert "1 item ·" in one and '<a href="one/digest.txt">Text version</a>' in one
    for name in ("digest.html", "digest.eml", 'index.html">Web'):
        assert f'href="one/{name}' not in one
    assert 'href="one/manifest.json"' in one  # written by the build: always there
    assert "2 items ·" in html and '<a href="two/digest.eml">Message (.eml)</a>' in html
    assert "Nothing built yet" not in html
    for href in hrefs(out / "index.html"):
        assert (out / href).is_file(), href


# ---- a killed write ----


def test_a_killed_write_leaves_no_temporary_the_next_write_keeps(tmp_path: Path) -> None:
    """A process killed (SIGKILL) between writing the page and renaming it leaves .index.html.*.tmp;
    the next write removes it, and only its own."""
    out = tmp_path / "out"
    manifest(out, "2021-03", start="2021-03-01T00:00:00+00:00")
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from digest.site import write_index\n"
        "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        "write_index(Path(sys.argv[1]), title='Killed')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script, str(out)], env=env, check=False, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    [left] = out.glob(".index.html.*.tmp")
    assert "Killed" in left.read_text()
    others = [out / ".digest.html.abc.tmp", out / ".2021-03.lock", out / "index.html.tmp"]
    for other in others:
        other.write_text("not the archive page's")
    write_index(out, title="News")
    assert not left.exists()
    assert list(out.glob(".index.html.*")) == []
    assert all(other.exists() for other in others)
    assert "<h1>News</h1>" in (out / "index.html").read_text()


def test_a_write_in_progress_is_waited_for_not_removed(tmp_path: Path) -> None:
    """Another writer holds out/ while its temporary file exists: it is not removed under it."""
    out = tmp_path / "out"
    out.mkdir()
    live = out / ".index.html.other.tmp"
    live.write_text("being written")
    fd = os.open(out, os.O_RDONLY)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (write_index(out, title="News"), done.set()))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        thread.start()
        assert not done.wait(0.5)  # it waits for the other writer
        assert live.read_text() == "being written"
    finally:
        os.close(fd)  # the other writer is done (or died): its lock goes
        thread.join(timeout=30)
    assert done.is_set() and (out / "index.html").is_file()


def test_the_pages_template_is_compiled_once_into_the_cache_folder(workspace: Path, run: Run) -> None:
    from digest import site

    run("build", "--month", "2021-03")
    out, cache = workspace / "out", workspace / "cache"
    site._template.cache_clear()
    first = write_index(out, title="News", cache_dir=cache).path.read_text()
    (kept,) = (cache / "jinja").iterdir()  # the page's template, compiled
    site._template.cache_clear()  # a new process: the compiled form is read back, not made again
    made = kept.stat().st_mtime_ns
    assert write_index(out, title="News", cache_dir=cache).path.read_text() == first
    assert kept.stat().st_mtime_ns == made and list((cache / "jinja").iterdir()) == [kept]
    assert write_index(out, title="News").path.read_text() == first  # without a cache folder: the same page
