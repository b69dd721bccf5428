"""Shared fixtures: an isolated environment, a CliRunner, and a copy of the sample workspace."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import main

# tests/smtpserver.py: the aiosmtpd server on loopback and its fixtures, for every test module that sends.
pytest.register_assert_rewrite("smtpserver")
pytest_plugins = ["smtpserver"]

REPO = Path(__file__).resolve().parents[1]
NOW = "2021-04-15T12:00:00+00:00"
# What a plain `digest build` writes into out/<slug>/, sorted.
BUILT = [
    "digest.eml",
    "digest.html",
    "digest.mjml",
    "digest.parts.json",
    "digest.txt",
    "index.html",
    "manifest.json",
]  # "today" for tests: the default window is then March 2021


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No DIGEST_* variable of the developer's shell leaks into a test; HOME is a fresh folder."""
    import os

    for name in list(os.environ):
        if name.startswith("DIGEST_") and name not in ("DIGEST_REQUIRE_BROWSER", "DIGEST_REQUIRE_TOOLS"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the sample workspace (digest.toml, items/, templates/) as the current folder."""
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(REPO / "digest.toml", ws / "digest.toml")
    shutil.copytree(REPO / "items", ws / "items")
    shutil.copytree(REPO / "templates", ws / "templates")
    monkeypatch.chdir(ws)
    return ws


@pytest.fixture
def run() -> Iterator[Callable[..., Result]]:
    """Run the CLI in-process: run("build", "--month", "2021-03") -> click Result (stdout, stderr apart)."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(
            main, ["--now", NOW, *args], input=input, catch_exceptions=False, prog_name="digest"
        )

    yield invoke


def write_item(folder: Path, name: str, text: str) -> Path:
    """Write an item file (text is dedented front matter + body)."""
    import textwrap

    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def news_item(ws: Path, name: str, when: str, *, title: str | None = None, extra: str = "") -> Path:
    """items/<name>.md of category News dated `when` (its title: the name capitalised; `extra`: one more
    front matter line)."""
    return write_item(
        ws / "items",
        f"{name}.md",
        f"""
        ---
        title: {title or name.capitalize()}
        date: {when}
        category: News
        summary: Something.
        {extra}
        ---
        """,
    )


# Read at import: the isolated_env fixture clears DIGEST_* variables, but this one is CI's word.
REQUIRE_TOOLS = os.environ.get("DIGEST_REQUIRE_TOOLS") == "1"


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Stop a server a fixture started: TERM, and KILL if it has not ended within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def require_tool(found: object, why: str) -> None:
    """Skip with `why` when a Debian tool a test drives is missing; fail instead when CI requires tools."""
    if found:
        return
    if REQUIRE_TOOLS:
        pytest.fail(f"DIGEST_REQUIRE_TOOLS=1 but {why}")
    pytest.skip(why)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/ from this build")
