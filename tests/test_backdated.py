"""Back-dated items and `--since-last-send`: an item written after the last digest sent in full and dated
before the window that follows it is taken by no window; build, list, send and list --explain name it.

March 2021 is sent in full for real (aiosmtpd on loopback) on 15 April; the sample's newest March item
is dated 31 March, so the window after it starts on 31 March (Zurich). The look-back is March's window:
from 1 March.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import Result
from conftest import news_item
from smtpserver import MONTH, Handler, Server, subscribers

from digest.backdated import Entry, find
from digest.sent import last_sent_in_full
from digest.window import Window

Run = Callable[..., Result]
ANN = [("ann@example.org", "Ann")]
SENT_AT = "2021-04-15T06:00:00+00:00"
NOW = "2021-04-15T12:00:00+00:00"
ZURICH = ZoneInfo("Europe/Zurich")
# The warning, whole, for the one back-dated item of `_late_items` (10 March items went out from the 10th on).
WARNING = (
    "Warning: 1 item dated before this window was never sent (written after the last digest sent in full?): "
    "no digest sent in full held it, and --since-last-send takes items from 2021-03-31 on: "
    "items/forgotten.md (2021-03-10). To send it with this window's items, give it "
    "`publish_after: 2021-03-31` (the date shown stays) and build again with --since-last-send, or build "
    "`digest build --since 2021-03-10`, which also takes again the 10 items sent since that day\n"
)


def _send_march(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        sent = run("--now", SENT_AT, "send", *MONTH, "--subscribers", str(subscribers(ws, ANN)), "--yes")
        assert sent.exit_code == 0, sent.stderr
        assert len(server.handler.received) == 1


def _late_items(ws: Path) -> None:
    """What the team wrote after March went out: one item of the new window, one back-dated item, and
    three that must not be named: a draft, one older than March's window, a sent item edited."""
    news_item(ws, "april", "2021-04-10", title="April news")
    news_item(ws, "forgotten", "2021-03-10", title="Forgotten event")
    news_item(ws, "unfinished", "2021-03-12", extra="draft: true")
    news_item(ws, "february", "2021-02-20")
    sample = next((ws / "items").glob("2021-03-29-*.md"))
    sample.write_text(sample.read_text(encoding="utf-8").replace("title: ", "title: (fixed) ", 1))


def _titles(ws: Path, said: str) -> list[str]:
    folder = re.search(r"(out/[^/]+)/", said)
    assert folder, said
    manifest = json.loads((ws / folder[1] / "manifest.json").read_text(encoding="utf-8"))
    return sorted(i["title"] for i in manifest["items"])


@pytest.fixture
def sent(workspace: Path, run: Run, smtp_env: Callable[..., None]) -> Path:
    """The sample workspace, March sent in full, then the items of `_late_items` written."""
    _send_march(workspace, run, smtp_env)
    _late_items(workspace)
    return workspace


def _warnings(stderr: str) -> list[str]:
    return [line + "\n" for line in stderr.splitlines() if "never sent" in line]


def test_build_names_the_backdated_item_only_and_still_builds_the_window(sent: Path, run: Run) -> None:
    result = run("--now", NOW, "build", "--since-last-send")
    assert result.exit_code == 0, result.stderr
    assert _warnings(result.stderr) == [WARNING]
    assert _titles(sent, result.stderr) == ["April news"]  # the window is as it was: a warning, no more


def test_the_suggested_build_takes_the_backdated_item_and_the_windows(sent: Path, run: Run) -> None:
    said = run("--now", NOW, "build", "--since-last-send").stderr
    command = re.search(r"`digest (build --since \S+)`", said)
    assert command, said
    result = run("--now", NOW, *command[1].split())
    assert result.exit_code == 0, result.stderr
    titles = _titles(sent, result.stderr)
    assert {"Forgotten event", "April news"} <= set(titles)
    assert len(titles) == 2 + 10  # and the 10 items sent since 10 March, as the warning says


def test_the_suggested_publish_after_puts_it_in_the_window_and_ends_the_warning(sent: Path, run: Run) -> None:
    said = run("--now", NOW, "build", "--since-last-send").stderr
    embargo = re.search(r"`(publish_after: \S+)`", said)
    assert embargo, said
    news_item(sent, "forgotten", "2021-03-10", title="Forgotten event", extra=embargo[1])
    result = run("--now", NOW, "build", "--since-last-send")
    assert result.exit_code == 0, result.stderr
    assert _warnings(result.stderr) == []
    assert _titles(sent, result.stderr) == ["April news", "Forgotten event"]
    manifest = json.loads((sent / "out/2021-03-31_2021-04-15/manifest.json").read_text(encoding="utf-8"))
    assert {i["title"]: i["date"] for i in manifest["items"]}["Forgotten event"] == "2021-03-10"


def test_list_names_it(sent: Path, run: Run) -> None:
    result = run("--now", NOW, "list", "--since-last-send")
    assert result.exit_code == 0, result.stderr
    assert _warnings(result.stderr) == [WARNING]
    assert "April news" in result.stdout and "Forgotten" not in result.stdout


def test_explain_gives_it_the_reason_never_sent_and_how_to_take_it(sent: Path, run: Run) -> None:
    result = run("--now", NOW, "list", "--since-last-send", "--explain", "--json")
    assert result.exit_code == 0, result.stderr
    assert _warnings(result.stderr) == [WARNING]
    data = json.loads(result.stdout)
    assert [w + "\n" for w in data["warnings"]] == [WARNING.removeprefix("Warning: ")]
    why = {v["slug"]: (v["status"], v["reason"], v["detail"]) for v in data["items"]}
    assert why["forgotten"] == (
        "out",
        "never_sent",
        "21 days before the window, never sent (back-dated?): give it `publish_after: 2021-03-31` (the date "
        "shown stays) and build again with --since-last-send, or build `digest build --since 2021-03-10`, "
        "which also takes again the 10 items sent since that day",
    )
    assert why["unfinished"][1] == "draft"
    assert why["february"][1] == "before_last_send"
    fixed = next(slug for slug in why if slug.startswith("2021-03-29-"))
    assert why[fixed][1] == "before_last_send"
    assert why["april"][1] == "selected"
    human = run("--now", NOW, "list", "--since-last-send", "--explain")
    assert _warnings(human.stderr) == [WARNING]
    assert "(items/forgotten.md)  [21 days before the window, never sent (back-dated?): " in human.stdout


def test_send_dry_run_and_the_prompt_name_it(sent: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    csv = str(subscribers(sent, ANN, "late.csv"))
    with Server(Handler()) as server:
        smtp_env(server.port)
        # Not built yet: the dry run builds it first, then names the item.
        dry = run("--now", NOW, "send", "--since-last-send", "--subscribers", csv, "--dry-run")
        assert dry.exit_code == 0, dry.stderr
        assert _warnings(dry.stderr) == [WARNING]
        # Built now: the prompt names it before it asks.
        asked = run("--now", NOW, "send", "--since-last-send", "--subscribers", csv, input="n\n")
        assert asked.exit_code == 1, asked.stderr
        assert _warnings(asked.stderr) == [WARNING]
        assert asked.stderr.index(WARNING) < asked.stderr.index("Send 'Co-operative News Digest: ")
        assert server.handler.received == []
        # With --yes too (a cron job's log), and it sends the window as it is.
        yes = run("--now", NOW, "send", "--since-last-send", "--subscribers", csv, "--yes")
        assert yes.exit_code == 0, yes.stderr
        assert _warnings(yes.stderr) == [WARNING]
        assert len(server.handler.received) == 1


def test_nothing_is_named_without_a_backdated_item_or_without_since_last_send(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    _send_march(workspace, run, smtp_env)
    news_item(workspace, "april", "2021-04-10")
    news_item(workspace, "unfinished", "2021-03-12", extra="draft: true")
    news_item(workspace, "february", "2021-02-20")
    quiet = run("--now", NOW, "build", "--since-last-send")
    assert quiet.exit_code == 0, quiet.stderr
    assert "Warning" not in quiet.stderr
    news_item(workspace, "forgotten", "2021-03-10")
    by_month = run("--now", NOW, "build", "--month", "2021-04")
    assert by_month.exit_code == 0, by_month.stderr
    assert "Warning" not in by_month.stderr


def test_a_backdated_item_on_the_last_windows_first_day_is_named_not_one_just_before(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    _send_march(workspace, run, smtp_env)
    news_item(workspace, "first", "2021-03-01T00:00:00+01:00")
    news_item(workspace, "before", "2021-02-28T23:59:00+01:00")
    result = run("--now", NOW, "build", "--since-last-send")
    assert result.exit_code == 3, result.stderr  # nothing new in the window: still named
    (warning,) = _warnings(result.stderr)
    assert "items/first.md (2021-03-01)" in warning and "before.md" not in warning
    csv = str(subscribers(workspace, ANN, "late.csv"))
    dry = run("--now", NOW, "send", "--since-last-send", "--subscribers", csv, "--dry-run")
    assert dry.exit_code == 3, dry.stderr
    assert _warnings(dry.stderr) == [warning]
    real = run("--now", NOW, "send", "--since-last-send", "--subscribers", csv, "--yes")
    assert real.exit_code == 3, real.stderr
    assert _warnings(real.stderr) == [warning]


def test_with_no_sent_item_from_its_day_on_the_suggested_build_takes_nothing_again(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    _send_march(workspace, run, smtp_env)
    for sample in (workspace / "items").glob("2021-03-*.md"):  # sent, then taken out of the folder
        sample.unlink()
    news_item(workspace, "april", "2021-04-10", title="April news")
    news_item(workspace, "forgotten", "2021-03-10", title="Forgotten event")
    result = run("--now", NOW, "build", "--since-last-send")
    assert result.exit_code == 0, result.stderr
    (warning,) = _warnings(result.stderr)
    assert warning.endswith("or build `digest build --since 2021-03-10`\n")
    again = run("--now", NOW, "build", "--since", "2021-03-10")
    assert _titles(workspace, again.stderr) == ["April news", "Forgotten event"]


def test_the_last_sent_windows_start_comes_from_its_manifest(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    _send_march(workspace, run, smtp_env)
    found = last_sent_in_full(workspace / "out", ZURICH)
    assert found is not None
    assert found[1].window_start == datetime(2021, 3, 1, tzinfo=ZURICH)
    (workspace / "out/2021-03/manifest.json").write_text("{", encoding="utf-8")  # damaged: not known
    found = last_sent_in_full(workspace / "out", ZURICH)
    assert found is not None and found[1].window_start is None


def test_no_look_back_when_the_last_sends_items_are_unknown(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    """A journal of an earlier digest, without its items, whose folder holds another version now: every
    item of its window would look never sent, so none is named."""
    _send_march(workspace, run, smtp_env)
    with closing(sqlite3.connect(workspace / "out/2021-03/journal.sqlite")) as db, db:
        db.execute("DELETE FROM meta WHERE key = 'sent_items'")
        db.execute("UPDATE meta SET value = 'another version' WHERE key = 'sent_content_hash'")
    found = last_sent_in_full(workspace / "out", ZURICH)
    assert found is not None and found[1].window_start is None
    news_item(workspace, "forgotten", "2021-03-10")
    result = run("--now", NOW, "build", "--since-last-send")
    assert result.exit_code == 3, result.stderr  # the window starts just after March's newest item
    assert _warnings(result.stderr) == []


# ---- find(), on its own ----

START = datetime(2021, 3, 31, tzinfo=ZURICH)
WINDOW = Window(
    START,
    datetime(2021, 4, 15, 14, tzinfo=ZURICH),
    "Mar 31 – Apr 15, 2021",
    "2021-03-31_2021-04-15",
    sent=frozenset({"sent-a", "sent-b", "sent-c"}),
    last_sent_start=datetime(2021, 3, 1, tzinfo=ZURICH),
)


def _at(day: str, hour: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=ZURICH)


def test_find_takes_from_the_look_back_to_the_windows_start_and_counts_what_would_go_again() -> None:
    entries = [
        Entry("items/b.md", _at("2021-03-12", 9), "b"),
        Entry("items/a.md", _at("2021-03-12", 9), "a"),  # same instant: by file
        Entry("items/edge.md", _at("2021-03-01"), "edge"),  # the look-back's first instant: in
        Entry("items/old.md", _at("2021-03-01") - timedelta(microseconds=1), "old"),
        Entry("items/in.md", START, "in"),  # the window's: not back-dated
        Entry("items/sent-a.md", _at("2021-03-20"), "sent-a"),  # sent: never named
        Entry("items/sent-b.md", _at("2021-02-10"), "sent-b"),  # sent, before 1 March: not taken again
        Entry("items/sent-c.md", _at("2021-04-30"), "sent-c"),  # sent, after the window: not taken again
    ]
    found = find(entries, WINDOW, out=" --out site")
    assert found is not None
    assert [e.source for e in found.late] == ["items/edge.md", "items/a.md", "items/b.md"]
    assert found.resent == 1
    assert found.command() == "digest build --since 2021-03-01 --out site"
    assert found.publish_after() == "2021-03-31"
    assert found.slugs == {"edge", "a", "b"}
    assert "3 items dated before this window were never sent" in found.warning()
    assert "held them" in found.warning() and "give each `publish_after" in found.warning()
    assert found.advice().endswith("which also takes again the 1 item sent since that day")


def test_find_counts_again_only_the_sent_items_from_the_first_late_day() -> None:
    entries = [
        Entry("items/late.md", _at("2021-03-12", 9), "late"),
        Entry("items/sent-a.md", _at("2021-03-12"), "sent-a"),  # that day's midnight: taken again
        Entry("items/sent-b.md", _at("2021-03-11", 23), "sent-b"),  # the day before: not
    ]
    found = find(entries, WINDOW)
    assert found is not None and found.resent == 1
    # Its day is the window's zone's: 23:30 UTC on the 11th is the 12th in Zurich.
    utc = Entry("items/utc.md", datetime.fromisoformat("2021-03-11T23:30:00+00:00"), "utc")
    in_zurich = find([utc], WINDOW)
    assert in_zurich is not None and "items/utc.md (2021-03-12)" in in_zurich.warning()
    assert in_zurich.command() == "digest build --since 2021-03-12"
    assert found.command() == "digest build --since 2021-03-12"
    none_again = find(entries[:1], WINDOW)
    assert none_again is not None and none_again.resent == 0
    assert none_again.advice().endswith("`digest build --since 2021-03-12`")


def test_find_names_nothing_for_a_window_not_after_a_send_or_without_late_items() -> None:
    late = [Entry("items/late.md", _at("2021-03-12"), "late")]
    assert find(late, Window(START, WINDOW.end, "x", "x", sent=WINDOW.sent)) is None
    assert find([Entry("items/in.md", START, "in")], WINDOW) is None


def test_a_window_starting_at_an_instant_is_given_that_instant_as_publish_after() -> None:
    window = Window(
        _at("2021-03-31", 14),
        WINDOW.end,
        "x",
        "x",
        last_sent_start=WINDOW.last_sent_start,
    )
    found = find([Entry("items/late.md", _at("2021-03-12"), "late")], window)
    assert found is not None
    assert found.publish_after() == "2021-03-31T14:00:00+02:00"
