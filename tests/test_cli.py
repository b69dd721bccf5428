"""The CLI as users meet it: exact errors and exit codes, list, new, init, --version, -q."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import NOW, REPO

from digest import __version__
from digest.cli import main
from digest.scan import scan

Run = Callable[..., Result]


def test_version(run: Run) -> None:
    result = run("--version")
    assert (result.exit_code, result.stdout) == (0, f"digest, version {__version__}\n")


def test_list(workspace: Path, run: Run) -> None:
    result = run("list", "--month", "2021-03")
    assert result.exit_code == 0
    assert result.stderr == "March 2021: 10 items\n"
    lines = result.stdout.splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("2021-03-31  News ")
    # Not a terminal: whole titles, columns padded to the longest.
    assert re.fullmatch(
        r"2021-03-24  Spotlight Interviews with Co-operators  Marta Lozano Molano, Founding Member of Wazo "
        r"Cooperative +  items/2021-03-24-marta-lozano-molano-founding-member-of-wazo-cooperative\.md",
        lines[-1],
    )
    assert len({line.index("  items/") for line in lines}) == 1


def test_list_week(workspace: Path, run: Run) -> None:
    result = run("list", "--week", "2021-W12")  # Mon 22 to Sun 28 March
    assert result.exit_code == 0
    assert [line[:10] for line in result.stdout.splitlines()] == [
        "2021-03-25",
        "2021-03-23",
        "2021-03-23",
        "2021-03-24",
    ]


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (["build", "--month", "March"], 1, "Error: --month 'March': use YYYY-MM, e.g. 2021-03\n"),
        (
            ["build", "--month", "2021-03", "--week", "2021-W12"],
            1,
            "Error: give one window only, not --month and --week\n",
        ),
        (["build", "--until", "2021-03-01"], 1, "Error: --until needs --since\n"),
        (["--config", "missing.toml", "build"], 1, "Error: missing.toml: config file not found\n"),
    ],
)
def test_errors_are_one_line_without_traceback(
    workspace: Path, run: Run, args: list[str], code: int, stderr: str
) -> None:
    result = run(*args)
    assert (result.exit_code, result.stderr) == (code, stderr)
    assert not (workspace / "out").exists()


def test_no_workspace_says_how_to_make_one(tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("build")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: no digest.toml in {tmp_path} or its parent folders, and no items/ folder here: "
        "run `digest init DIR` to create a workspace, or pass --config FILE\n",
    )


def test_usage_error_is_click_exit_2(workspace: Path, run: Run) -> None:
    result = run("build", "--bogus")
    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: digest build [OPTIONS]\n")
    assert "No such option '--bogus'" in result.stderr


def test_config_error_through_cli(workspace: Path, run: Run) -> None:
    (workspace / "digest.toml").write_text('timezone = "Nowhere/Town"\n')
    result = run("build", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {workspace / 'digest.toml'}: timezone: unknown time zone 'Nowhere/Town' "
        "(use an IANA name like 'Europe/Geneva' or 'UTC')\n"
    )


def test_new_item_is_dated_today_and_valid(workspace: Path, run: Run) -> None:
    result = run(
        "new",
        "Our AGM: 12 June, Lyon!",
        "--category",
        "News",
        "--summary",
        "Members meet.",
        "--url",
        "https://example.org/agm",
    )
    assert result.exit_code == 0, result.stderr
    path = workspace / "items" / "2021-04-15-our-agm-12-june-lyon.md"
    assert result.stdout == "items/2021-04-15-our-agm-12-june-lyon.md\n"
    assert path.read_text() == (
        "---\ntitle: 'Our AGM: 12 June, Lyon!'\ndate: 2021-04-15\ncategory: News\n"
        "url: https://example.org/agm\nsummary: Members meet.\n---\n"
    )
    items = scan(workspace / "items", tz=__import__("zoneinfo").ZoneInfo("UTC")).items
    assert "Our AGM: 12 June, Lyon!" in [i.title for i in items]
    again = run("new", "Our AGM: 12 June, Lyon!", "--category", "News")
    assert (again.exit_code, again.stderr) == (
        1,
        "Error: items/2021-04-15-our-agm-12-june-lyon.md already exists\n",
    )


def test_new_without_summary_says_what_to_do(workspace: Path, run: Run) -> None:
    result = run("new", "Draft idea", "--category", "News")
    assert result.exit_code == 0
    assert result.stderr == "Write the summary in the file before the next build (it is required).\n"
    build = run("build", "--since", "2021-04-01")
    assert build.exit_code == 1
    assert (
        build.stderr
        == "Error: items/2021-04-15-draft-idea.md:5: summary: required field is missing or empty\n"
    )


def test_new_refuses_bad_url(workspace: Path, run: Run) -> None:
    result = run("new", "T", "--category", "News", "--url", "javascript:alert(1)")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: --url must be an absolute http:// or https:// address, got 'javascript:alert(1)'\n",
    )


def test_init_then_build(tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("init", "letter")
    assert result.exit_code == 0, result.stderr
    assert "New digest workspace in letter" in result.stderr
    assert sorted(p.name for p in (tmp_path / "letter").iterdir()) == [
        ".gitignore",
        "digest.toml",
        "items",
        "templates",
    ]
    monkeypatch.chdir(tmp_path / "letter")
    built = run("build", "--last", "30d")
    assert built.exit_code == 0, built.stderr
    assert re.fullmatch(
        r"1 item in 1 category -> out/2021-03-16_2021-04-15/ \(html \d+ KB, text \d+ B\)\n", built.stderr
    )
    again = run("init", ".")
    assert again.exit_code == 1
    assert again.stderr.startswith("Error: digest.toml already exists")


def test_quiet_and_verbose(workspace: Path, run: Run) -> None:
    assert run("-q", "build", "--month", "2021-03").stderr == ""
    verbose = run("-v", "build", "--month", "2021-03")
    assert verbose.stderr.startswith("scanned 10 item files, parsed ")


def test_the_config_is_loaded_once_per_run(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import digest.cli.base as cli

    loaded: list[Path | None] = []
    real = cli.load_config

    def counting(path: Path | None, **kw: Any) -> Any:
        loaded.append(path)
        return real(path, **kw)

    monkeypatch.setattr(cli, "load_config", counting)
    state = cli.State(config_path=None, verbosity=0, now=datetime.fromisoformat(NOW))
    assert state.config() is state.config()
    assert loaded == [None]


def test_list_warns_of_a_bad_item_outside_the_window(workspace: Path, run: Any) -> None:
    (workspace / "items" / "unfinished.md").write_text(
        "---\ntitle: T\ndate: 2021-05-02\ncategory: News\n---\n"
    )
    result = run("list", "--month", "2021-03")
    assert result.exit_code == 0, result.stderr
    assert "Warning: items/unfinished.md:1: summary: required field is missing or empty" in result.stderr
    assert "outside the window" in result.stderr


FIELDS = (
    "title, date, category, summary, url, image, image_alt, author, tags, draft, pinned, publish_after, lang, "
    "source_id, feed"
)


def test_build_reports_every_problem_of_every_bad_file_in_one_run(workspace: Path, run: Run) -> None:
    bad = workspace / "items" / "x.md"
    bad.write_text(
        "---\ntitle: ''\ndate: 2021-03-10\ncategory: News\nsummary: S\nurl: www.e.org\nsubtitle: s\n---\n"
    )
    result = run("build", "--month", "2021-03")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: items/x.md:2: title: required field is missing or empty\n"
        "items/x.md:6: url: the address must be an absolute http:// or https:// address, got 'www.e.org'\n"
        f"items/x.md:7: unknown field 'subtitle' (did you mean 'title'?); fields are: {FIELDS}\n",
    )
    assert not (workspace / "out").exists()
    (workspace / "items" / "y.md").write_text("---\ntitle: Y\ndate: 2021-03-11\ncategory: News\n---\n")
    result = run("build", "--month", "2021-03")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: 2 bad item files:\n"
        "items/x.md:2: title: required field is missing or empty\n"
        "items/x.md:6: url: the address must be an absolute http:// or https:// address, got 'www.e.org'\n"
        f"items/x.md:7: unknown field 'subtitle' (did you mean 'title'?); fields are: {FIELDS}\n"
        "items/y.md:1: summary: required field is missing or empty\n",
    )
    assert not (workspace / "out").exists()
    explained = run("list", "--explain", "--month", "2021-03")
    assert (explained.exit_code, explained.stderr) == (1, result.stderr)
    # Outside the window: one warning line a file, and the build goes on.
    result = run("list", "--month", "2021-04")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith(
        "Warning: items/x.md:2: title: required field is missing or empty (and 2 more) "
        "(dated 2021-03-10, outside the window: left out)\n"
        "Warning: items/y.md:1: summary: required field is missing or empty "
        "(dated 2021-03-11, outside the window: left out)\n"
    )


def test_new_refuses_every_bad_value_at_once(workspace: Path, run: Run) -> None:
    result = run("new", " ", "--category", "", "--url", "www.e.org")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: the title must be one non-empty line\n--category must be one non-empty line\n"
        "--url must be an absolute http:// or https:// address, got 'www.e.org'\n",
    )
    assert sorted(p.name for p in (workspace / "items").iterdir()) == sorted(
        p.name for p in (REPO / "items").iterdir()
    )


def test_since_last_send_refuses_other_window_options_and_needs_a_send(workspace: Path, run: Any) -> None:
    both = run("build", "--since-last-send", "--month", "2021-03")
    assert both.exit_code == 1
    assert both.stderr == "Error: --since-last-send chooses the window itself: give no --month with it\n"
    for command in ("build", "list", "send"):
        none = run(command, "--since-last-send")
        assert none.exit_code == 1, (command, none.stderr)
        assert none.stderr == "Error: --since-last-send: no digest in out/ was sent to a whole list yet\n"


def test_each_command_is_found_in_the_module_that_defines_it() -> None:
    """The group imports a command's module when the command is asked for: its table must be right."""
    import importlib
    import pkgutil

    import digest.cli
    from digest.cli.base import _Commands

    for info in pkgutil.iter_modules(digest.cli.__path__):
        importlib.import_module(f"digest.cli.{info.name}")
    defined = {name: cmd.callback.__module__ for name, cmd in main.commands.items() if cmd.callback}
    assert defined == {name: f"digest.cli.{module}" for name, module in _Commands.where.items()}


LAZY_PROBE = """
import sys
from digest.cli import main
try:
    main(["-q", "build", "--month", "2021-03"])
except SystemExit as end:
    assert end.code == 0, end.code
print(sorted(m for m in sys.modules if m.startswith("digest.cli.")))
"""


def test_a_build_imports_only_the_modules_of_its_command(workspace: Path) -> None:
    from digest.cli.base import _Commands

    out = subprocess.run(
        [sys.executable, "-c", LAZY_PROBE], cwd=workspace, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['digest.cli.base', 'digest.cli.commands']"
    helped = subprocess.run(
        [sys.executable, "-m", "digest", "--help"], cwd=workspace, capture_output=True, text=True, check=True
    )
    listed = [line.split()[0] for line in helped.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == sorted(_Commands.where) and "send" in listed and "unsubscribe" in listed


@pytest.mark.parametrize(
    ("args", "pace"),
    [(("build", "--month", "2021-03"), 100_000), (("send", "--month", "2021-03", "--dry-run"), 700)],
)
def test_long_running_commands_collect_garbage_at_pythons_pace(
    workspace: Path, run: Run, args: tuple[str, ...], pace: int
) -> None:
    import gc

    before = gc.get_threshold()
    gc.set_threshold(100_000, *before[1:])  # as digest/__main__.py starts the command line
    try:
        run(*args)  # (the dry run fails for want of a subscriber list: the pace is set before)
        assert gc.get_threshold()[0] == pace
    finally:
        gc.set_threshold(*before)


def test_init_keeps_subscriber_data_out_of_git(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A team that runs `git add -A` in its workspace commits no address: lists, suppressions, journals."""
    monkeypatch.chdir(tmp_path)
    assert run("init", "letter").exit_code == 0
    ws = tmp_path / "letter"
    for name in (
        "subscribers.csv",
        "subscribers-fr.csv",
        "suppressions.sqlite",
        "out/2021-03/journal.sqlite",
    ):
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_text("x", encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    subprocess.run(["git", "-C", str(ws), "add", "-A"], check=True)
    staged = subprocess.run(
        ["git", "-C", str(ws), "diff", "--cached", "--name-only"], check=True, capture_output=True, text=True
    ).stdout.split()
    assert sorted(staged) == [
        ".gitignore",
        "digest.toml",
        *sorted(f"items/{p.name}" for p in (ws / "items").iterdir()),
        *sorted(f"templates/{p.name}" for p in (ws / "templates").iterdir()),
    ]
