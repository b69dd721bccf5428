"""outdir: the built folder's format (Manifest, Parts), its writing (swap, lock, recovery) and its loading."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest import outdir
from digest.errors import NotBuilt, OutputError
from digest.outdir import ItemRecord, Manifest, Parts, SectionRecord

ZURICH = ZoneInfo("Europe/Zurich")


def manifest(**kw: object) -> Manifest:
    values: dict[str, object] = {
        "generator": "digest test",
        "built_at": "2021-04-01T08:00:00+00:00",
        "slug": "2021-03",
        "label": "March 2021",
        "start": datetime(2021, 3, 1, tzinfo=ZURICH),
        "end": datetime(2021, 4, 1, tzinfo=ZURICH),
        "subject": "News: March 2021",
        "preheader": "First; second",
        "web_url": "https://example.org/d/2021-03/",
        "preview_values": {"greeting": "Hello,", "unsubscribe_url": "mailto:n@example.org"},
        "content_hash": "ab" * 32,
        "sections": (SectionRecord(name="News", anchor="news", shown=2, more=0),),
        "items": (
            ItemRecord(
                slug="a",
                title="Day item",
                date="2021-03-05",
                category="News",
                url="https://example.org/a",
                source="items/a.md",
                summary="S",
            ),
            ItemRecord(
                slug="b",
                title="Timed item",
                date="2021-03-30T23:30:00+02:00",
                category="News",
                url=None,
                source="items/b.md",
                summary="T",
                body="**x**",
                image="https://example.org/i.png",
                image_alt="An image",
            ),
        ),
        "files": {"digest.html": {"bytes": 3, "sha256": "00"}},
        "warnings": ("w",),
    }
    values.update(kw)
    return Manifest(**values)  # type: ignore[arg-type]


PARTS = Parts(
    subject="News: March 2021",
    html="<p>G</p>",
    text="G\n",
    content_hash="ab" * 32,
    placeholders={"greeting": "G", "unsubscribe_url": "U"},
)


def built_folder(tmp_path: Path, m: Manifest | None = None) -> Path:
    folder = tmp_path / "out" / "2021-03"
    outdir.write(folder, {outdir.MANIFEST: (m or manifest()).to_json(), outdir.PARTS: PARTS.to_json()})
    return folder


def test_manifest_round_trip() -> None:
    m = manifest()
    assert Manifest.from_json(m.to_json()) == m
    assert m.item_count == 2
    assert json.loads(m.to_json())["format"] == outdir.FORMAT


def test_parts_round_trip() -> None:
    assert Parts.from_json(PARTS.to_json()) == PARTS


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda d: d.update(format=1), "format 1, this digest reads format 2"),
        (lambda d: d.pop("subject"), "missing or malformed field 'subject'"),
        (lambda d: d["items"][0].pop("title"), "missing or malformed field"),
        (lambda d: d["window"].update(start="yesterday"), "Invalid isoformat string"),
    ],
)
def test_a_bad_manifest_says_what_is_wrong(tmp_path: Path, edit: object, why: str) -> None:
    folder = built_folder(tmp_path)
    data = json.loads((folder / outdir.MANIFEST).read_text())
    edit(data)  # type: ignore[operator]
    (folder / outdir.MANIFEST).write_text(json.dumps(data))
    with pytest.raises(OutputError) as info:
        outdir.load(folder)
    assert "manifest.json: not a manifest this digest can read" in str(info.value)
    assert why in str(info.value)


def test_load_of_a_folder_not_built(tmp_path: Path) -> None:
    with pytest.raises(NotBuilt, match="has not been built: run `digest build`"):
        outdir.load(tmp_path / "out" / "2021-03")


def test_parts_of_another_build_are_refused(tmp_path: Path) -> None:
    folder = built_folder(tmp_path, manifest(content_hash="cd" * 32))
    with pytest.raises(OutputError, match=r"digest\.parts\.json and manifest\.json are of different builds"):
        outdir.load(folder).parts()
    assert built_folder(tmp_path / "b").name == "2021-03"
    assert outdir.load(tmp_path / "b" / "out" / "2021-03").parts() == PARTS


def test_item_ends_and_the_newest() -> None:
    m = manifest()
    day, timed = m.items
    assert day.end(ZURICH) == datetime(2021, 3, 6, tzinfo=ZURICH)  # a date-only item is the whole day
    assert timed.end(ZURICH) == datetime(
        2021, 3, 30, 23, 30, tzinfo=timezone(timedelta(hours=2))
    ) + timedelta(microseconds=1)
    assert m.newest_end(ZURICH) == timed.end(ZURICH)
    assert manifest(items=()).newest_end(UTC) is None


def test_write_swaps_in_build_files_and_carries_over_the_rest(tmp_path: Path) -> None:
    folder = built_folder(tmp_path)
    (folder / outdir.JOURNAL).write_bytes(b"journal")
    (folder / "logo.png").write_bytes(b"logo")
    (folder / "shot-375-light.png").write_bytes(b"old screenshot")
    (folder / ".hidden").write_bytes(b"dot file")
    outdir.write(folder, {"digest.txt": b"new", outdir.MANIFEST: manifest().to_json()})
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["digest.txt", outdir.JOURNAL, "logo.png", outdir.MANIFEST]
    assert (folder / outdir.JOURNAL).read_bytes() == b"journal"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["2021-03"]  # no lock, stage or old folder left


def test_write_refuses_names_that_are_not_build_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not build files"):
        outdir.write(tmp_path / "x", {"journal.sqlite": b""})


def test_a_failed_write_leaves_the_folder_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = built_folder(tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    calls = []

    def failing(path: Path, data: bytes, *, mode: int = 0o644) -> None:
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        path.write_bytes(data)

    monkeypatch.setattr(outdir.folder, "atomic_write", failing)
    with pytest.raises(OutputError) as info:
        outdir.write(folder, {"digest.txt": b"new", "digest.html": b"new"})
    assert str(info.value).endswith("2021-03/: cannot write the build: No space left on device")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["2021-03"]


def test_a_held_lock_stops_a_build_and_names_the_folder(tmp_path: Path) -> None:
    folder = built_folder(tmp_path)
    with outdir.lock(folder, exclusive=False), pytest.raises(OutputError) as info:
        outdir.write(folder, {"digest.txt": b"x"})
    message = str(info.value)
    assert "2021-03/ is in use by another `digest build` or `digest send`" in message
    assert ".lock" not in message  # the user's folder, not our internal lock file
    assert not outdir.lock_path(folder).exists()  # the last holder removed it


def test_shared_locks_coexist_and_exclusive_waits(tmp_path: Path) -> None:
    folder = tmp_path / "out" / "d"
    with (
        outdir.lock(folder, exclusive=False),
        outdir.lock(folder, exclusive=False),
        pytest.raises(outdir.FolderBusy),
        outdir.lock(folder, exclusive=True, wait=0.1),
    ):
        pass
    with outdir.lock(folder, exclusive=True):
        assert outdir.lock_path(folder).exists()
    assert not outdir.lock_path(folder).exists()


def test_a_running_send_stops_a_build(tmp_path: Path) -> None:
    folder = built_folder(tmp_path)
    (folder / outdir.JOURNAL).write_bytes(b"")
    fd = os.open(folder / outdir.JOURNAL, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a send holds on its journal
        assert outdir.sending_now(folder)
        with pytest.raises(OutputError, match=r"`digest send` is sending this digest right now"):
            outdir.write(folder, {"digest.txt": b"x"})
    finally:
        os.close(fd)
    assert not outdir.sending_now(folder)
    outdir.write(folder, {"digest.txt": b"x"})


def test_recover_puts_back_a_folder_a_killed_build_left_aside(tmp_path: Path) -> None:
    folder = built_folder(tmp_path)
    (folder / outdir.JOURNAL).write_bytes(b"journal")
    aside = tmp_path / "out" / ".2021-03.old-abc"
    aside.mkdir()
    os.replace(folder, aside / "2021-03")  # killed between the two renames
    outdir.recover(folder)
    assert (folder / outdir.JOURNAL).read_bytes() == b"journal"
    assert not aside.exists()


def test_recover_brings_back_a_journal_only_the_old_folder_has(tmp_path: Path) -> None:
    folder = built_folder(tmp_path)
    aside = tmp_path / "out" / ".2021-03.old-abc" / "2021-03"
    aside.mkdir(parents=True)
    (aside / outdir.JOURNAL).write_bytes(b"journal")
    (aside / f"{outdir.JOURNAL}-wal").write_bytes(b"wal")
    (aside / "digest.txt").write_bytes(b"older build")
    outdir.write(folder, {"digest.txt": b"new"})  # a build recovers first
    assert (folder / outdir.JOURNAL).read_bytes() == b"journal"
    assert (folder / f"{outdir.JOURNAL}-wal").read_bytes() == b"wal"
    assert (folder / "digest.txt").read_bytes() == b"new"
    assert not aside.parent.exists()


def test_built_folders_and_hash_files(tmp_path: Path) -> None:
    built_folder(tmp_path)
    (tmp_path / "out" / "not-built").mkdir()
    (tmp_path / "out" / ".hidden").mkdir()
    assert [p.name for p in outdir.built_folders(tmp_path / "out")] == ["2021-03"]
    assert list(outdir.built_folders(tmp_path / "nothing")) == []
    assert outdir.hash_files({"a": b"abc"}) == {
        "a": {"bytes": 3, "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
    }


def test_a_hidden_folder_is_never_a_build(tmp_path: Path) -> None:
    built_folder(tmp_path)
    stage = tmp_path / "out" / ".2021-03.new-abc"  # a build writing right now
    stage.mkdir()
    (stage / outdir.MANIFEST).write_bytes(manifest().to_json())
    assert [p.name for p in outdir.built_folders(tmp_path / "out")] == ["2021-03"]


def test_the_journal_is_carried_over_last(tmp_path: Path) -> None:
    # Once the journal's database is in a folder its WAL must be there already: a reader opening the
    # database without its WAL would miss results.
    folder = tmp_path / "d"
    folder.mkdir()
    for name in (outdir.JOURNAL, f"{outdir.JOURNAL}-wal", "zz-logo.png", "digest.html"):
        (folder / name).write_bytes(b"x")
    kept = [p.name for p in outdir.folder._kept_files(folder)]
    assert kept[-1] == outdir.JOURNAL and sorted(kept) == sorted(
        [outdir.JOURNAL, f"{outdir.JOURNAL}-wal", "zz-logo.png"]
    )


def test_recover_never_overwrites_the_live_journal(tmp_path: Path) -> None:
    folder = built_folder(tmp_path)
    (folder / outdir.JOURNAL).write_bytes(b"live journal")
    aside = tmp_path / "out" / ".2021-03.old-abc" / "2021-03"
    aside.mkdir(parents=True)
    (aside / outdir.JOURNAL).write_bytes(b"older copy")
    outdir.recover(folder)
    assert (folder / outdir.JOURNAL).read_bytes() == b"live journal"


def test_recover_puts_back_the_newest_of_two_folders_left_aside(tmp_path: Path) -> None:
    out = tmp_path / "out"
    folder = out / "2021-03"
    for name, text, when in (("old-a", b"older", 1_000_000), ("old-b", b"newer", 2_000_000)):
        aside = out / f".2021-03.{name}" / "2021-03"
        aside.mkdir(parents=True)
        (aside / outdir.JOURNAL).write_bytes(text)
        os.utime(aside / outdir.JOURNAL, (when, when))
        os.utime(aside, (when, when))
    outdir.recover(folder)
    assert (folder / outdir.JOURNAL).read_bytes() == b"newer"
    assert sorted(p.name for p in out.iterdir()) == ["2021-03"]


def test_a_built_folder_can_be_published(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        folder = built_folder(tmp_path)
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700: the folder is meant to be served
