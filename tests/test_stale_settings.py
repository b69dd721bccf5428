"""A build the settings moved on from is not sent (a message is never made of a folder built with one title
and headers made from another), and a refused send says how to build the same window again."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import Result
from conftest import write_item
from smtpserver import MONTH, PEOPLE, Handler, Server, subscribers

from digest.config import load_config
from digest.config.content import CONTENT, NOT_CONTENT, changed_settings, content_settings, setting_name
from digest.config.schema import SCHEMA
from digest.errors import SendError
from digest.outdir import Manifest
from digest.presend import dry_run, rebuild_command
from digest.sent import last_sent_in_full
from digest.window import after, resolve

Run = Callable[..., Result]
MODES = [(("--yes",), "send"), (("--dry-run",), "dry-run"), (("--test", "me@example.org"), "send a test of")]
ANN = [("ann@example.org", "Ann")]


def _toml(ws: Path, old: str, new: str) -> None:
    path = ws / "digest.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def _refusal(settings: str, what: str, rebuild: str = "digest build --month 2021-03") -> str:
    return (
        "Error: out/2021-03/ was built with other settings than digest.toml and the environment give now: "
        f"{settings}\nRebuild it (`{rebuild}`) and check it, or pass --as-built to {what} the folder as it is.\n"
    )


# ---- which settings count ----


def test_every_setting_is_either_compared_or_said_not_to_be() -> None:
    assert set(CONTENT) | NOT_CONTENT == set(SCHEMA)
    assert not set(CONTENT) & NOT_CONTENT


def test_the_recorded_settings_are_the_contents_not_the_secrets_nor_the_send_ones(workspace: Path) -> None:
    environ = {
        "DIGEST_UNSUBSCRIBE_SECRET": "s3cret-" * 6,
        "DIGEST_SMTP_PASSWORD": "pw-never-recorded",
        "DIGEST_SMTP_HOST": "relay.example.org",
        "DIGEST_GREETING": "Dear {name},",
    }
    config = load_config(cwd=workspace, environ=environ)
    found = content_settings(config)
    assert found["title"] == "Co-operative News Digest"
    assert found["email.from"] == "Co-operative News <news@example.org>"
    assert found["send.greeting"] == "Dear {name},"  # the environment counts as the file does
    assert found["categories.order"] == ["News", "Spotlight Interviews with Co-operators"]
    assert found["paths.templates"] == "templates"  # relative: the workspace may move
    assert "smtp.host" not in found and "send.rate" not in found and "send.unsubscribe_url" not in found
    shown = json.dumps(found)
    assert "s3cret" not in shown and "pw-never" not in shown and "relay.example.org" not in shown


def test_changed_settings_are_named_as_digest_toml_names_them() -> None:
    then = {"title": "A", "email.from": "a@x.org", "send.greeting": "Hi", "languages.fr": {"title": "Un"}}
    now = {"title": "B", "email.from": "b@x.org", "send.greeting": "Hi", "languages.de": {"title": "Ein"}}
    assert changed_settings(then, now) == ["title", "[email] from", "[languages.de]", "[languages.fr]"]
    assert changed_settings(then, dict(then)) == []
    assert setting_name("categories.order") == "[categories] order"


def test_the_manifest_keeps_the_settings_and_an_older_one_has_none(workspace: Path, run: Run) -> None:
    assert run("build", *MONTH).exit_code == 0
    raw = (workspace / "out/2021-03/manifest.json").read_bytes()
    manifest = Manifest.from_json(raw)
    assert manifest.settings == content_settings(load_config(cwd=workspace, environ={}))
    assert Manifest.from_json(manifest.to_json()) == manifest
    data = json.loads(raw)
    del data["settings"]
    older = Manifest.from_json(json.dumps(data))
    assert older.settings is None
    assert b'"settings"' not in older.to_json()  # an older build's manifest stays as it was
    data["settings"] = ["title"]
    with pytest.raises(ValueError, match="malformed"):
        Manifest.from_json(json.dumps(data))


# ---- the send refuses ----


@pytest.mark.parametrize(("mode", "what"), MODES)
def test_a_title_changed_after_the_build_is_refused_unless_as_built(
    ws: Path, run: Run, smtp_env: Callable[..., None], mode: tuple[str, ...], what: str
) -> None:
    _toml(ws, 'title = "Co-operative News Digest"', 'title = "Coop Weekly"')
    csv = str(subscribers(ws, PEOPLE[:1]))
    with Server(Handler()) as server:
        smtp_env(server.port)
        refused = run("send", *MONTH, "--subscribers", csv, *mode)
        assert (refused.exit_code, refused.stdout) == (1, "")
        assert refused.stderr == _refusal("title", what)
        assert server.handler.received == []
        anyway = run("send", *MONTH, "--subscribers", csv, *mode, "--as-built")
        assert anyway.exit_code == 0, anyway.stderr
        assert (
            "Warning: out/2021-03/ was built with other settings (title): --as-built sends it as built, "
            "with From, Reply-To, List-Id and the greeting made from the current ones\n"
        ) in anyway.stderr
        assert len(server.handler.received) == (0 if "--dry-run" in mode else 1)


def test_after_a_rebuild_subject_and_list_id_agree(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    _toml(ws, 'title = "Co-operative News Digest"', 'title = "Coop Weekly"')
    assert run("build", *MONTH).exit_code == 0
    with Server(Handler()) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(subscribers(ws, ANN)), "--yes")
        assert result.exit_code == 0, result.stderr
        msg = server.handler.messages()["ann@example.org"]
    assert msg["Subject"] == "Coop Weekly: March 2021"
    assert msg["List-Id"] == "Coop Weekly <coop-weekly.example.org>"


def test_a_language_table_added_after_the_build_is_refused(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with (ws / "digest.toml").open("a", encoding="utf-8") as f:
        f.write('\n[languages.fr]\ntitle = "Nouvelles coopératives"\n')
    with Server(Handler()) as server:
        smtp_env(server.port)
        refused = run("send", *MONTH, "--subscribers", str(subscribers(ws, ANN)), "--dry-run")
    assert refused.stderr == _refusal("[languages.fr]", "dry-run")


def test_a_language_table_changed_after_the_build_is_refused(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with (workspace / "digest.toml").open("a", encoding="utf-8") as f:
        f.write('\n[languages.fr]\ntitle = "Nouvelles coopératives"\n')
    assert run("build", *MONTH).exit_code == 0
    _toml(workspace, 'title = "Nouvelles coopératives"', 'title = "Nouvelles"')
    with Server(Handler()) as server:
        smtp_env(server.port)
        refused = run("send", *MONTH, "--subscribers", str(subscribers(workspace, ANN)), "--dry-run")
    assert refused.stderr == _refusal("[languages.fr]", "dry-run")


def test_every_changed_setting_is_named_from_the_file_or_the_environment(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    _toml(ws, 'from = "Co-operative News <news@example.org>"', 'from = "Coop <coop@example.org>"')
    _toml(ws, "limit = 0", "limit = 2")
    with Server(Handler()) as server:
        smtp_env(
            server.port,
            DIGEST_REPLY_TO="desk@example.org",
            DIGEST_LIST_ID="coop.example.org",
            DIGEST_GREETING="Dear {name},",
            DIGEST_BASE_URL="https://news.example.org/",
        )
        refused = run("send", *MONTH, "--subscribers", str(subscribers(ws, ANN)), "--dry-run")
    assert refused.stderr == _refusal(
        "base_url, [email] from, [email] reply_to, [categories] limit, [send] list_id, [send] greeting",
        "dry-run",
    )


def test_changed_items_and_settings_are_both_said(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    write_item(
        ws / "items", "late.md", "---\ntitle: Late\ndate: 2021-03-30\ncategory: News\nsummary: Late.\n---\n"
    )
    _toml(ws, 'title = "Co-operative News Digest"', 'title = "Coop Weekly"')
    with Server(Handler()) as server:
        smtp_env(server.port)
        refused = run("send", *MONTH, "--subscribers", str(subscribers(ws, ANN)), "--dry-run")
    assert refused.stderr == (
        "Error: out/2021-03/ is out of date: the window's items changed since it was built:\n"
        "  added:   items/late.md\n"
        "It was also built with other settings than digest.toml and the environment give now: title\n"
        "Rebuild it (`digest build --month 2021-03`) and check it, or pass --as-built to dry-run the folder "
        "as it is.\n"
    )


def test_send_only_settings_changed_after_the_build_are_not_refused(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with (ws / "digest.toml").open("a", encoding="utf-8") as f:
        f.write('\n[check]\nclients = ["gmail"]\n[bounces]\nimap_host = "imap.example.org"\n')
    with Server(Handler()) as server:
        # the relay, its pace, the unsubscribe link and the secret: all set only now, after the build
        smtp_env(
            server.port,
            DIGEST_SEND_RATE="1000/s",
            DIGEST_SEND_CONNECTIONS="2",
            DIGEST_SMTP_TIMEOUT="7",
            DIGEST_SEND_WINDOW="3",
        )
        result = run("send", *MONTH, "--subscribers", str(subscribers(ws, ANN)), "--yes")
        assert result.exit_code == 0, result.stderr
        assert "other settings" not in result.stderr
        assert len(server.handler.received) == 1


def test_an_older_build_without_recorded_settings_is_not_refused(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    path = ws / "out/2021-03/manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["settings"]
    path.write_text(json.dumps(data), encoding="utf-8")
    _toml(ws, 'title = "Co-operative News Digest"', 'title = "Coop Weekly"')
    with Server(Handler()) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(subscribers(ws, ANN)), "--dry-run")
    assert result.exit_code == 0, result.stderr


# ---- the hint builds the same window ----


def _item(ws: Path, name: str, when: str, title: str) -> None:
    write_item(
        ws / "items", f"{name}.md", f"---\ntitle: {title}\ndate: {when}\ncategory: News\nsummary: S.\n---\n"
    )


def test_a_stale_since_last_send_build_is_rebuilt_by_since_last_send(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    csv = str(subscribers(workspace, ANN))
    with Server(Handler()) as server:
        smtp_env(server.port)
        first = run("--now", "2021-04-01T08:00:00+00:00", "send", *MONTH, "--subscribers", csv, "--yes")
        assert first.exit_code == 0, first.stderr
        _item(workspace, "april1", "2021-04-01", "April one")
        built = run("--now", "2021-04-02T08:00:00+00:00", "build", "--since-last-send")
        assert built.exit_code == 0, built.stderr
        _item(workspace, "april1", "2021-04-01", "April one (fixed)")
        refused = run(
            "--now", "2021-04-02T08:05:00+00:00", "send", "--since-last-send", "--subscribers", csv, "--yes"
        )
        assert refused.exit_code == 1
        assert "  edited:  items/april1.md\n" in refused.stderr
        assert refused.stderr.endswith(
            "Rebuild it (`digest build --since-last-send`) and check it, or pass --as-built to send the "
            "folder as it is.\n"
        )
        assert len(server.handler.received) == 1
        # what the hint says does make the folder the send then takes
        again = run("--now", "2021-04-02T08:06:00+00:00", "build", "--since-last-send")
        assert again.exit_code == 0, again.stderr
        sent = run(
            "--now", "2021-04-02T08:07:00+00:00", "send", "--since-last-send", "--subscribers", csv, "--yes"
        )
        assert sent.exit_code == 0, sent.stderr
        assert len(server.handler.received) == 2


def test_a_since_last_send_window_is_known_by_its_start_and_name_or_by_what_it_left_out(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    csv = str(subscribers(workspace, ANN))
    with Server(Handler()) as server:
        smtp_env(server.port)
        first = run("--now", "2021-04-01T08:00:00+00:00", "send", *MONTH, "--subscribers", csv, "--yes")
        assert first.exit_code == 0, first.stderr
    _item(workspace, "april1", "2021-04-01", "April one")
    at = datetime.fromisoformat("2021-04-02T08:00:00+00:00")
    assert run("--now", at.isoformat(), "build", "--since-last-send").exit_code == 0
    config = load_config(cwd=workspace, environ={})
    found = last_sent_in_full(config.paths.out, config.tz)
    assert found is not None
    chosen = after(found[1], config.tz, config.language, now=at)
    assert chosen.sent  # the March items of its first day, sent already
    # Known by its start and name even when it left nothing out...
    assert (
        rebuild_command(config, replace(chosen, sent=frozenset()), now=at) == "digest build --since-last-send"
    )
    # ...and a window by dates with the same name is not taken for it.
    by_dates = resolve(tz=config.tz, locale=config.language, now=at, since_="2021-03-31T12:30")
    assert by_dates.slug == chosen.slug
    assert rebuild_command(config, by_dates, now=at) == "digest build --since 2021-03-31T12:30:00"
    # A folder sent by its path, days later: what its build left out says how it was chosen.
    _item(workspace, "april1", "2021-04-01", "April one (fixed)")
    with Server(Handler()) as server:
        smtp_env(server.port)
        later = datetime.fromisoformat("2021-04-09T08:00:00+00:00")
        config = load_config(cwd=workspace)
        with pytest.raises(SendError, match=r"Rebuild it \(`digest build --since-last-send`\)"):
            dry_run(config, workspace / "out" / chosen.slug, Path(csv), now=later)


NOW = datetime.fromisoformat("2021-04-15T12:00:00+00:00")


@pytest.mark.parametrize(
    ("options", "command"),
    [
        ({}, "--month 2021-03"),  # none given: the previous month, named
        ({"month_": "2021-02"}, "--month 2021-02"),
        ({"week_": "2021-W12"}, "--week 2021-W12"),
        ({"since_": "2021-03-01", "until_": "2021-03-20"}, "--since 2021-03-01 --until 2021-03-20"),
        ({"since_": "2021-03-01T08:30", "until_": "2021-03-20T18:00"}, None),
        ({"since_": "2021-03-01"}, "--since 2021-03-01"),  # up to now
        # Whole days up to now: the same window as --since its first day (which one was typed is not known).
        ({"last_": "30d"}, "--since 2021-03-16"),
        ({"last_": "2w"}, "--since 2021-04-01"),
        ({"last_": "36h"}, "--last 36h"),
    ],
)
def test_the_rebuild_hint_gives_a_window_option_that_makes_the_same_window(
    workspace: Path, options: dict[str, str], command: str | None
) -> None:
    config = load_config(cwd=workspace, environ={})
    window = resolve(tz=config.tz, locale=config.language, now=NOW, **options)
    hint = rebuild_command(config, window, now=NOW)
    if command is not None:
        assert hint == f"digest build {command}"
    # Whatever it says, its options choose that very window again.
    args = re.findall(r"--(\w+) (\S+)", hint)
    again = resolve(tz=config.tz, locale=config.language, now=NOW, **{f"{k}_": v for k, v in args})
    assert (again.start, again.end, again.slug) == (window.start, window.end, window.slug)


def test_the_rebuild_hint_keeps_another_out_folder(workspace: Path) -> None:
    config = load_config(cwd=workspace, environ={"DIGEST_OUT": "elsewhere"})
    window = resolve(tz=config.tz, locale=config.language, now=NOW, month_="2021-03")
    assert rebuild_command(config, window, now=NOW) == "digest build --month 2021-03 --out elsewhere"
