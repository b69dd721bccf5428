"""`digest list --explain` (digest/explain.py): every item file, in or out, and why."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import write_item
from smtpserver import Handler, Server, subscribers

from digest.config import load_config
from digest.explain import _span, explain, format_explanation
from digest.window import month

Run = Callable[..., Result]
NOW = datetime.fromisoformat("2021-04-15T12:00:00+00:00")


def add(ws: Path, name: str, *, date: str, category: str = "News", **more: str) -> None:
    extra = "".join(f"{k}: {v}\n" for k, v in more.items())
    write_item(
        ws / "items",
        name,
        f"---\ntitle: {name.removesuffix('.md').title()}\ndate: {date}\ncategory: {category}\n"
        f"summary: Something.\n{extra}---\n",
    )


@pytest.fixture
def ws(workspace: Path) -> Path:
    """The sample (10 March items) with one item of each kind that is left out."""
    add(workspace, "old.md", date="2021-02-26")  # 3 days before 1 March (midnight, Europe/Zurich)
    add(workspace, "late.md", date="2021-04-01T02:30:00+02:00")  # 2 h 30 after the end
    add(workspace, "draft.md", date="2021-03-10", draft="true")
    add(workspace, "secret.md", date="2021-03-12", publish_after="2021-04-20T09:00:00+02:00")
    add(workspace, "lifted.md", date="2021-03-13", publish_after="2021-03-20T09:00:00+02:00")
    # Dated in March, embargoed until April: it is due in April, whenever March is built.
    add(workspace, "held.md", date="2021-03-14", publish_after="2021-04-01T09:00:00+02:00")
    return workspace


def by_title(found: Any) -> dict[str, Any]:
    return {v["title"]: v for v in found}


def test_every_item_file_has_a_verdict_with_its_reason(ws: Path) -> None:
    config = load_config(ws / "digest.toml")
    found = explain(config, month("2021-03", config.tz, "en"), now=NOW)
    verdicts = by_title([v.__dict__ for v in found.verdicts])
    assert len(found.verdicts) == len(list((ws / "items").glob("*.md"))) == 16
    assert {
        k: (v["status"], v["reason"], v["detail"])
        for k, v in verdicts.items()
        if k[0].isupper() and len(k) < 8
    } == {
        "Old": ("out", "before_window", "3 days before the window"),
        "Late": ("out", "after_window", "2 hours after the window"),
        "Draft": ("out", "draft", "draft: true"),
        "Secret": (
            "out",
            "embargo",
            "embargoed until 2021-04-20T09:00:00+02:00 (publish_after), after the window: it goes in the window holding that date",
        ),
        "Lifted": ("in", "selected", "in the email"),
        "Held": (
            "out",
            "embargo",
            "embargoed until 2021-04-01T09:00:00+02:00 (publish_after), after the window: it goes in the window holding that date",
        ),
    }
    assert verdicts["Old"]["source"] == "items/old.md" and verdicts["Old"]["date"] == "2021-02-26"
    assert verdicts["Late"]["date"] == "2021-04-01T02:30:00+02:00"
    assert (found.count("in"), found.count("online"), found.count("out")) == (11, 0, 5)
    # In the email: in reading order, as the digest shows them (the configured sections, newest first).
    assert [v.status for v in found.verdicts] == ["in"] * 11 + ["out"] * 5
    assert found.verdicts[0].title.startswith("ILO and UNTFSSE participated")


def test_the_limit_moves_items_online_and_says_so(ws: Path) -> None:
    text = (ws / "digest.toml").read_text(encoding="utf-8").replace("limit = 0", "limit = 2")
    (ws / "digest.toml").write_text(text, encoding="utf-8")
    config = load_config(ws / "digest.toml")
    found = explain(config, month("2021-03", config.tz, "en"), now=NOW)
    online = [v for v in found.verdicts if v.status == "online"]
    assert len(online) == 8 and {v.reason for v in online} == {"limit"}
    assert online[0].detail == "over the per-category limit ([categories] limit): moved online"
    assert found.count("in") == 3  # two of News, the one of Spotlight


def test_before_the_last_send_is_said_when_the_window_starts_there(ws: Path) -> None:
    config = load_config(ws / "digest.toml")
    window = month("2021-03", config.tz, "en")
    found = explain(config, window, now=NOW, after_last_send=True)
    (old,) = [v for v in found.verdicts if v.title == "Old"]
    assert (old.reason, old.detail) == (
        "before_last_send",
        "3 days before the window: before the day of the newest item sent",
    )


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(days=1), "1 day"),
        (timedelta(days=2, hours=23), "2 days"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(minutes=59, seconds=59), "59 minutes"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(seconds=59), "less than a minute"),
        (timedelta(0), "less than a minute"),
    ],
)
def test_gaps_in_words(delta: timedelta, words: str) -> None:
    assert _span(delta) == words


def test_the_cli_groups_the_items_by_status(ws: Path, run: Run) -> None:
    result = run("list", "--month", "2021-03", "--explain")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "March 2021: 16 item files (11 in, 0 online, 5 out)\n"
    out = result.stdout
    assert out.startswith("In the email (11):\n  2021-03-31  News: ILO and UNTFSSE")
    assert "\n\nLeft out (5):\n" in out and "In the web version only" not in out
    assert "  2021-02-26  News: Old  (items/old.md)  [3 days before the window]\n" in out
    assert "  2021-03-10  News: Draft  (items/draft.md)  [draft: true]\n" in out
    assert "  2021-03-13  News: Lifted  (items/lifted.md)\n" in out  # in the email: no reason to give


def test_the_json_output_has_a_stable_schema(ws: Path, run: Run) -> None:
    result = run("list", "--month", "2021-03", "--explain", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema"] == 1
    assert data["window"] == {
        "slug": "2021-03",
        "label": "March 2021",
        "start": "2021-03-01T00:00:00+01:00",
        "end": "2021-04-01T00:00:00+02:00",
    }
    assert data["counts"] == {"in": 11, "online": 0, "out": 5}
    assert all(
        set(v) == {"source", "slug", "title", "date", "category", "status", "reason", "detail", "lang"}
        for v in data["items"]
    )
    assert by_title(data["items"])["Secret"] == {
        "source": "items/secret.md",
        "slug": "secret",
        "title": "Secret",
        "date": "2021-03-12",
        "category": "News",
        "status": "out",
        "reason": "embargo",
        "detail": "embargoed until 2021-04-20T09:00:00+02:00 (publish_after), after the window: it goes in the window holding that date",
        "lang": "en",
    }
    assert data["warnings"] == []


def test_bad_files_are_reported_as_a_build_reports_them(ws: Path, run: Run) -> None:
    (ws / "items" / "bad-old.md").write_text("---\ntitle: x\ndate: 2020-01-01\n---\n", encoding="utf-8")
    result = run("list", "--month", "2021-03", "--explain")
    assert result.exit_code == 0
    assert "Warning: items/bad-old.md:" in result.stderr and "outside the window: left out" in result.stderr
    (ws / "items" / "bad-now.md").write_text("---\ntitle: x\ndate: 2021-03-05\n---\n", encoding="utf-8")
    result = run("list", "--month", "2021-03", "--explain")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "items/bad-now.md:" in result.stderr


def test_the_fit_is_explained(ws: Path, run: Run) -> None:
    text = (ws / "digest.toml").read_text(encoding="utf-8")
    text = text.replace("[email]\n", "[email]\nfit = true\nfit_budget = 20\n")
    (ws / "digest.toml").write_text(text, encoding="utf-8")
    built = run("build", "--month", "2021-03")
    assert built.exit_code == 0, built.stderr
    manifest = json.loads((ws / "out" / "2021-03" / "manifest.json").read_bytes())
    moved = {m["source"] for m in manifest["moved"]}
    assert moved and {m["by"] for m in manifest["moved"]} == {"fit"}
    result = run("list", "--month", "2021-03", "--explain", "--json")
    items = json.loads(result.stdout)["items"]
    assert {v["source"] for v in items if v["reason"] == "fit"} == moved
    assert {v["source"] for v in items if v["status"] == "in"} == {i["source"] for i in manifest["items"]}
    human = run("list", "--month", "2021-03", "--explain").stdout
    assert human.count("[moved online by the fit") == len(moved)
    assert f"In the web version only ({len(moved)}):" in human


def test_list_without_explain_is_as_before_and_leaves_out_the_embargoed(ws: Path, run: Run) -> None:
    result = run("list", "--month", "2021-03")
    assert result.stderr == "March 2021: 11 items\n"
    assert "Lifted" in result.stdout and "Secret" not in result.stdout and "Draft" not in result.stdout


def test_since_last_send_on_the_command_line(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        people = subscribers(ws, [("ann@example.org", "Ann")])
        sent = run("send", "--month", "2021-03", "--subscribers", str(people), "--yes")
        assert sent.exit_code == 0, sent.stderr
    add(ws, "april.md", date="2021-04-02")
    result = run("list", "--since-last-send", "--explain", "--json")
    assert result.exit_code == 0, result.stderr
    verdicts = by_title(json.loads(result.stdout)["items"])
    assert verdicts["April"]["status"] == "in"
    assert verdicts["Old"]["reason"] == "before_last_send"
    assert verdicts["Late"]["status"] == "in"  # 1 April, after the newest item sent (31 March)
    assert "before the day of the newest item sent" in verdicts["Lifted"]["detail"]
    assert verdicts["Held"]["status"] == "in"  # due 1 April, when its embargo ended: not sent in March
    # The newest item March sent (31 March) is on the window's first day: left out as sent, not by date.
    newest = [v for v in json.loads(result.stdout)["items"] if v["date"] == "2021-03-31"]
    assert newest and {(v["status"], v["reason"], v["detail"]) for v in newest} == {
        ("out", "sent", "already in a digest sent in full")
    }


def test_the_window_edges_are_the_builds(workspace: Path) -> None:
    add(workspace, "first.md", date="2021-03-01")  # midnight, the window's first instant: in
    add(workspace, "next.md", date="2021-04-01")  # the end is not in the window
    add(workspace, "eve.md", date="2021-03-31T23:59:00+02:00")
    add(workspace, "before.md", date="2021-02-28T23:59:30+01:00")
    add(workspace, "after.md", date="2021-04-01T00:00:30+02:00")
    config = load_config(workspace / "digest.toml")
    found = explain(config, month("2021-03", config.tz, "en"), now=NOW)
    got = {v.title: (v.reason, v.detail) for v in found.verdicts}
    assert got["First"] == ("selected", "in the email")
    assert got["Eve"] == ("selected", "in the email")
    assert got["Next"] == ("after_window", "at the window's end: the window stops just before it")
    assert got["After"] == ("after_window", "less than a minute after the window")
    assert got["Before"] == ("before_window", "less than a minute before the window")


def test_format_with_nothing_is_empty(ws: Path) -> None:
    config = load_config(ws / "digest.toml")
    found = explain(config, month("2019-01", config.tz, "en"), now=NOW)
    assert found.count("in") == 0 and found.count("out") == 16
    assert format_explanation(found).startswith("Left out (16):\n")


def test_an_item_due_in_the_window_but_still_embargoed_says_until_when(ws: Path) -> None:
    config = load_config(ws / "digest.toml")
    found = explain(
        config, month("2021-03", config.tz, "en"), now=datetime.fromisoformat("2021-03-15T12:00+01:00")
    )
    verdict = by_title([v.__dict__ for v in found.verdicts])["Lifted"]
    assert (verdict["status"], verdict["reason"], verdict["detail"]) == (
        "out",
        "embargo",
        "embargoed until 2021-03-20T08:00:00+01:00 (publish_after)",
    )
