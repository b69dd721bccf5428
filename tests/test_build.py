"""The sample digest end to end through the CLI: files, order, golden output, atomic writes, exit codes."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import BUILT, REPO, write_item

Run = Callable[..., Result]
GOLDEN = REPO / "tests" / "golden" / "2021-03"
NEWS_ORDER = [
    "ILO and UNTFSSE participated in a Conference on Social and Solidarity Economy (SSE) and creation of jobs in the EU",
    "The 110th Session of the International Labour Conference in 2022 will hold a general discussion on the "
    "Social and Solidarity Economy for a human-centred future of work",
    "ILO COOP participates in a seminar on cooperatives and the global COVID19 pandemic at the second Global "
    "Youth Forum (GYF 2021)",
    "Joint UNTFSSE-SEE event in the framework of European Social Economy Summit",
    "The UN Task Force on Social and Solidarity Economy (UNTFSSE) held its 34th regular meeting",
    "The UNTFSSE project on the Knowledge Hub funded by the Government of Luxembourg",
    "The ILO and the Bolivian Ministry of Mining and Metallurgy strengthen mining cooperatives for economic "
    "recovery with decent work",
    "ILO COOP participates in a Webinar on Sustainable Development and Culture organized by the Mediterranean Academy",
    "ILO COOP participates in two parallel events at CSW65",
]


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_sample_build(workspace: Path, run: Run) -> None:
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert re.fullmatch(
        r"10 items in 2 categories -> out/2021-03/ \(html \d+ KB, text \d+ KB\)\n", result.stderr
    ), result.stderr
    out = workspace / "out" / "2021-03"
    assert sorted(p.name for p in out.iterdir()) == BUILT
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in manifest["sections"]] == ["News", "Spotlight Interviews with Co-operators"]
    assert [s["shown"] for s in manifest["sections"]] == [9, 1]
    titles = [i["title"] for i in manifest["items"]]
    assert titles == [*NEWS_ORDER, "Marta Lozano Molano, Founding Member of Wazo Cooperative"]
    assert manifest["window"] == {
        "slug": "2021-03",
        "label": "March 2021",
        "start": "2021-03-01T00:00:00+01:00",
        "end": "2021-04-01T00:00:00+02:00",
    }
    first = manifest["items"][0]
    assert (
        first["source"] == "items/2021-03-31-ilo-and-untfsse-participated-in-a-conference-on-social-and-s.md"
    )
    assert first["url"] is None
    for name, info in manifest["files"].items():
        data = (out / name).read_bytes()
        assert info == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert len(manifest["content_hash"]) == 64

    # The HTML keeps the order too: newest first inside News, then Spotlight.
    html = (out / "digest.html").read_text()
    positions = [html.index(t.replace("&", "&amp;")) for t in titles]
    assert positions == sorted(positions)


def test_eml_is_a_complete_multipart_alternative_message(workspace: Path, run: Run) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    out = workspace / "out" / "2021-03"
    raw = (out / "digest.eml").read_bytes()
    assert b"\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n")  # CRLF throughout
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "Co-operative News Digest: March 2021"
    assert msg["From"] == "Co-operative News <news@example.org>"
    assert msg["Reply-To"] == "Communications team <communications@example.org>"
    # The sent shape: the same code made it as makes each sent message, addressed to the sender.
    assert msg["To"] == "news@example.org"
    assert msg["List-Id"] == "Co-operative News Digest <co-operative-news-digest.example.org>"
    assert msg["List-Unsubscribe"] == "<mailto:news@example.org?subject=unsubscribe>"
    assert msg["Date"] and re.fullmatch(
        r"<digest\.[0-9a-f]{16}\.[0-9a-f]{24}@example\.org>", msg["Message-ID"]
    )
    text, html = (part for part in msg.iter_parts())
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    # On the wire every line ends in CRLF; decoded, the parts are the files written beside the .eml.
    assert text.get_content().replace("\r\n", "\n") == (out / "digest.txt").read_text()
    assert html.get_content().replace("\r\n", "\n") == (out / "digest.html").read_text()


@pytest.mark.parametrize("name", ["digest.txt", "digest.html"])
def test_golden(workspace: Path, run: Run, name: str, request: pytest.FixtureRequest) -> None:
    """The sample's text and HTML as reviewed; `pytest --update-golden` rewrites them after a deliberate change."""
    assert run("build", "--month", "2021-03").exit_code == 0
    got = (workspace / "out" / "2021-03" / name).read_text()
    golden = GOLDEN / name
    if request.config.getoption("--update-golden"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got)
    assert got == golden.read_text(), f"{name} differs from {golden}: review, then pytest --update-golden"


def test_out_dir_option(workspace: Path, run: Run, tmp_path: Path) -> None:
    result = run("build", "--month", "2021-03", "--out", str(tmp_path / "preview"))
    assert result.exit_code == 0, result.stderr
    folder = tmp_path / "preview" / "2021-03"
    assert (folder / "digest.mjml").read_text().startswith('<mjml lang="en" dir="ltr">')
    assert (tmp_path / "preview" / "index.html").is_file()  # the archive page of that folder
    assert not (workspace / "out").exists()


def test_keep_mjml_is_gone(run: Run) -> None:
    # It did nothing for a long time (digest.mjml is always written); a flag that does nothing misleads.
    result = run("build", "--month", "2021-03", "--keep-mjml")
    assert result.exit_code == 2 and "No such option '--keep-mjml'" in result.stderr


def test_empty_window_writes_nothing_and_exits_3(workspace: Path, run: Run) -> None:
    result = run("build", "--month", "2019-01")
    assert result.exit_code == 3
    assert result.stderr == "Nothing to do: no items between 2019-01-01 and 2019-01-31: nothing built\n"
    assert not (workspace / "out").exists()


def test_default_window_is_last_month(workspace: Path, run: Run) -> None:
    result = run("build")  # --now is 2021-04-15 in the tests
    assert result.exit_code == 0, result.stderr
    assert (workspace / "out" / "2021-03" / "digest.html").exists()


def test_failed_build_leaves_out_as_it_was(workspace: Path, run: Run) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    out = workspace / "out" / "2021-03"
    (out / "journal.sqlite").write_bytes(b"kept across rebuilds")
    before = snapshot(workspace / "out")
    template = workspace / "templates" / "digest.txt.j2"
    template.write_text(template.read_text().replace("{{ item.title", "{{ item.titel"))
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "'titel'" in result.stderr
    assert snapshot(workspace / "out") == before
    # no temporary folders left (index.html is the archive page: digest/site.py)
    assert sorted(p.name for p in (workspace / "out").iterdir()) == ["2021-03", "index.html"]


def test_a_build_killed_while_writing_leaves_nothing_behind_next_time(workspace: Path, run: Run) -> None:
    (workspace / "out" / ".2021-03.new-abc123").mkdir(parents=True)  # as a killed build leaves it
    (workspace / "out" / ".2021-03.new-abc123" / "digest.html").write_text("half")
    assert run("build", "--month", "2021-03").exit_code == 0
    assert sorted(p.name for p in (workspace / "out").iterdir()) == ["2021-03", "index.html"]


def test_rebuild_replaces_build_files_and_keeps_others(workspace: Path, run: Run) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    out = workspace / "out" / "2021-03"
    (out / "journal.sqlite").write_text("journal")
    item = next((workspace / "items").glob("2021-03-23-ilo-coop-participates-in-two*.md"))
    item.write_text(item.read_text().replace("CSW65", "CSW65 (updated)"))
    assert run("build", "--month", "2021-03").exit_code == 0
    assert (out / "journal.sqlite").read_text() == "journal"
    assert "CSW65 (updated)" in (out / "digest.mjml").read_text()  # always rewritten: never a stale copy
    assert "CSW65 (updated)" in (out / "digest.txt").read_text()


def test_bad_items_fail_with_every_problem_and_write_nothing(workspace: Path, run: Run) -> None:
    items = workspace / "items"
    write_item(items, "bad-one.md", "---\ntitle: T\ndate: 2021-03-05\ncategory: News\n---\n")
    write_item(items, "bad-two.md", "---\ntitle: T\ndate: soon\ncategory: News\nsummary: S\n---\n")
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 2 bad item files:\n"
        "items/bad-one.md:1: summary: required field is missing or empty\n"
        "items/bad-two.md:3: date: cannot read 'soon' as a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM+HH:MM\n"
    )
    assert not (workspace / "out").exists()


def test_category_limit_links_the_rest_to_the_web_version(workspace: Path, run: Run) -> None:
    config = workspace / "digest.toml"
    config.write_text(config.read_text().replace("limit = 0", "limit = 3"))
    assert run("build", "--month", "2021-03").exit_code == 0
    out = workspace / "out" / "2021-03"
    html = (out / "digest.html").read_text()
    assert '<a href="https://example.org/coop-digest/2021-03/#news"' in html
    assert "6 more items in News</a>" in html
    assert html.count("<h3") == 4  # 3 News + 1 Spotlight
    web = (out / "index.html").read_text()
    assert web.count("<h3") == 10  # the web version has everything
    text = (out / "digest.txt").read_text()
    assert "6 more in News: https://example.org/coop-digest/2021-03/" in text


def test_big_digest_warns_about_gmail_clipping(workspace: Path, run: Run) -> None:
    for k in range(160):
        write_item(
            workspace / "items",
            f"bulk-{k:03d}.md",
            f"---\ntitle: Bulk item number {k}\ndate: 2021-03-{k % 28 + 1:02d}\ncategory: News\n"
            f"url: https://example.org/news/{k}\nsummary: {'A fairly long summary sentence. ' * 6}\n---\n",
        )
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 0
    assert re.search(r"Warning: the HTML is \d+ KB: Gmail clips messages over 102 KB", result.stderr)
    assert run("-q", "build", "--month", "2021-03").stderr == ""


def test_an_item_added_to_a_warm_index_is_built(
    workspace: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build renders the window the index knows while the folder is listed; a new item changes that."""
    import time

    monkeypatch.setattr("digest.index.MARGIN_NS", 0)
    time.sleep(0.05)
    assert run("build", "--month", "2021-03").exit_code == 0  # the index is now warm
    time.sleep(0.05)
    write_item(
        workspace / "items",
        "zz-no-date-in-name.md",
        "---\ntitle: Late news\ndate: 2021-03-30\ncategory: News\nsummary: S\n---\n",
    )
    (next((workspace / "items").glob("2021-03-23-ilo-coop-participates-in-two*.md"))).unlink()
    assert run("build", "--month", "2021-03").exit_code == 0
    html = (workspace / "out" / "2021-03" / "digest.html").read_text()
    assert "Late news" in html
    assert "two parallel events at CSW65" not in html
    manifest = json.loads((workspace / "out" / "2021-03" / "manifest.json").read_text())
    assert manifest["item_count"] == 10


def test_an_archive_page_that_cannot_be_written_does_not_fail_the_build(workspace: Path, run: Run) -> None:
    (workspace / "out" / "index.html").mkdir(parents=True)  # in the way of out/index.html
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 0, result.stderr
    assert "Warning: the digest is built, but the archive page is not up to date:" in result.stderr
    assert (workspace / "out" / "2021-03" / "digest.html").is_file()


def test_an_out_folder_that_cannot_be_made_is_named(workspace: Path, run: Run) -> None:
    (workspace / "a-file").write_text("not a folder")
    result = run("build", "--month", "2021-03", "--out", "a-file/sub")
    assert result.exit_code == 1
    assert result.stderr == "Error: a-file/sub: cannot use this output folder: Not a directory\n"


def test_a_bad_item_outside_the_window_is_a_build_warning(workspace: Path, run: Run) -> None:
    write_item(workspace / "items", "next-month.md", "---\ntitle: T\ndate: 2021-04-02\ncategory: News\n---\n")
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 0, result.stderr
    assert "Warning: items/next-month.md:1: summary: required field is missing or empty" in result.stderr
    manifest = json.loads((workspace / "out" / "2021-03" / "manifest.json").read_text())
    assert any(w.startswith("items/next-month.md:1: summary:") for w in manifest["warnings"])


def test_changes_since_the_build_name_each_file(workspace: Path, run: Run) -> None:
    from digest import outdir
    from digest.build import changes_since
    from digest.config import load_config

    assert run("build", "--month", "2021-03").exit_code == 0
    config = load_config(workspace / "digest.toml", environ={})
    built = outdir.load(workspace / "out" / "2021-03")
    assert changes_since(config, built) == []
    items = workspace / "items"
    edited = next(items.glob("2021-03-23-ilo-coop-participates-in-two*.md"))
    edited.write_text(edited.read_text().replace("CSW65", "CSW65 (updated)"))
    removed = next(items.glob("2021-03-24-*.md"))
    removed.unlink()
    write_item(items, "added.md", "---\ntitle: New\ndate: 2021-03-30\ncategory: News\nsummary: S\n---\n")
    assert changes_since(config, built) == [
        "added:   items/added.md",
        f"edited:  items/{edited.name}",
        f"removed: items/{removed.name}",
    ]
