"""The command line: parse options, call one function per command, turn DigestError into `Error: ...`.

Status goes to stderr, content (lists, messages) to stdout. Exit codes: 0 ok, 1 error, 2 usage error
(click's), 3 nothing in the window.
"""

from __future__ import annotations

import functools
import re
import shutil
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from digest import __version__
from digest.config import CONFIG_NAME, Config, load_config
from digest.errors import DigestError, EmptyWindow
from digest.window import Window, resolve

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    """What the top-level options decided, shared with every command."""

    config_path: Path | None
    verbosity: int
    now: datetime
    _config: Config | None = None

    def config(self, **overrides: Any) -> Config:
        """Load the configuration once (flags given as overrides win over the file)."""
        if self._config is None or overrides:
            self._config = load_config(self.config_path, overrides=overrides)
        return self._config

    def say(self, message: str, *, level: int = 0) -> None:
        """Status to stderr, shown at -v level `level` or above (-q hides level 0)."""
        if self.verbosity >= level:
            click.echo(message, err=True)

    def warn(self, message: str) -> None:
        """A warning to stderr (hidden by -q)."""
        if self.verbosity >= 0:
            click.secho(f"Warning: {message}", err=True, fg="yellow")


def fail_cleanly(fn: F) -> F:
    """Turn a DigestError into `Error: ...` on stderr and exit 1 (3 for an empty window); no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EmptyWindow as err:
            click.echo(f"Nothing to do: {err}", err=True)
            sys.exit(err.exit_code)
        except DigestError as err:
            click.secho(f"Error: {err}", err=True, fg="red")
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def window_options(fn: F) -> F:
    """The date-window options shared by build, list and send."""
    options = [
        click.option("--month", "month_", metavar="YYYY-MM", help="A calendar month, e.g. 2021-03."),
        click.option("--week", "week_", metavar="YYYY-Www", help="An ISO week, e.g. 2021-W12."),
        click.option("--since", "since_", metavar="DATE", help="From this date (inclusive)."),
        click.option("--until", "until_", metavar="DATE", help="Up to this date (inclusive); with --since."),
        click.option("--last", "last_", metavar="N[hdw]", help="The last N hours, days or weeks, e.g. 30d."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def get_window(state: State, config: Config, **opts: str | None) -> Window:
    """Resolve the window options; none given means the previous calendar month."""
    return resolve(tz=config.tz, locale=config.language, now=state.now, **opts)


def _parse_now(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        now = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use an ISO date-time with an offset") from None
    return now if now.tzinfo else now.replace(tzinfo=UTC)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="digest")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"The config file (default: the nearest {CONFIG_NAME} in this folder or its parents).",
)
@click.option("-v", "--verbose", count=True, help="Say more (-vv for even more).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--now", hidden=True, callback=_parse_now, help="Pretend the time is this (for tests).")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, verbose: int, quiet: bool, now: datetime) -> None:
    """Build a monthly email digest from the news items in items/, and send it."""
    ctx.obj = State(config_path=config_path, verbosity=-1 if quiet else verbose, now=now)


@main.command()
@window_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Put the <slug>/ folder under this folder instead of out/.",
)
@click.option("--keep-mjml", is_flag=True, help="Also write digest.mjml, the MJML that was compiled.")
@click.option("--screenshots", is_flag=True, help="Also take the four screenshots (see `digest shots`).")
@click.pass_obj
@fail_cleanly
def build(
    state: State, /, out_dir: Path | None, keep_mjml: bool, screenshots: bool = False, **window: str | None
) -> None:
    """Build the digest of a window into out/<slug>/ (default: last month)."""
    from digest.build import build as run_build

    config = state.config()
    win = get_window(state, config, **window)
    result = run_build(config, win, now=state.now, out_dir=out_dir, keep_mjml=keep_mjml)
    for warning in result.warnings:
        state.warn(warning)
    state.say(f"scanned {result.scan.total_files} item files, parsed {result.scan.parsed_files}", level=1)
    n, c = len(result.digest.items), len(result.digest.sections)
    counted = f"{n} item{'s' if n != 1 else ''} in {c} categor{'ies' if c != 1 else 'y'}"
    sizes = f"html {_kb(result.sizes['digest.html'])}, text {_kb(result.sizes['digest.txt'])}"
    state.say(f"{counted} -> {_shown(result.folder)}/ ({sizes})")
    if screenshots:
        _screenshots(state, config, result.folder, win)


@main.command(name="list")
@window_options
@click.pass_obj
@fail_cleanly
def list_(state: State, /, **window: str | None) -> None:
    """List the items a build of this window would include."""
    from digest.build import collect

    config = state.config()
    win = get_window(state, config, **window)
    digest, _found = collect(config, win)
    for warning in digest.warnings:
        state.warn(warning)
    rows = [
        (
            i.when.date().isoformat(),
            s.name,
            i.title,
            str((config.items_dir / i.source).relative_to(config.root)),
        )
        for s in digest.sections
        for i in [*s.items]
    ]
    state.say(f"{win.label}: {len(rows)} item{'s' if len(rows) != 1 else ''}")
    if not rows:
        return
    cat_w = max(len(r[1]) for r in rows)
    title_w = max(len(r[2]) for r in rows)
    if sys.stdout.isatty():  # fit a terminal; a pipe gets whole titles
        width = shutil.get_terminal_size().columns
        cat_w = min(cat_w, 24)
        file_w = max(len(r[3]) for r in rows)
        title_w = min(title_w, max(20, width - 10 - 2 - cat_w - 2 - 2 - file_w))
    for day, cat, title, file in rows:
        click.echo(f"{day}  {_fit(cat, cat_w)}  {_fit(title, title_w)}  {file}")


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def _kb(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} B"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def slugify(title: str, *, max_len: int = 60) -> str:
    """An ASCII file-name slug of a title."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:max_len].rstrip("-")
    return slug or "item"


@main.command()
@click.argument("title")
@click.option("--category", required=True, help="The item's category, e.g. News.")
@click.option("--summary", default="", help="One or two sentences (you can also write them in the file).")
@click.option("--url", default=None, help="The item's web page.")
@click.pass_obj
@fail_cleanly
def new(state: State, /, title: str, category: str, summary: str, url: str | None) -> None:
    """Create an item file dated today, ready to edit."""
    from digest.items import check_url

    config = state.config()
    if not title.strip() or "\n" in title or "\r" in title:
        raise DigestError("the title must be one non-empty line")
    if url:
        try:
            check_url(url, what="--url")
        except ValueError as err:
            raise DigestError(str(err)) from None
    today = state.now.astimezone(config.tz).date()
    path = config.items_dir / f"{today.isoformat()}-{slugify(title)}.md"
    if path.exists():
        raise DigestError(f"{_shown(path)} already exists")
    fields: dict[str, Any] = {"title": title.strip(), "date": today, "category": category.strip()}
    if url:
        fields["url"] = url
    fields["summary"] = summary.strip()
    text = "---\n" + yaml.safe_dump(fields, allow_unicode=True, sort_keys=False, width=100) + "---\n"
    config.items_dir.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as f:
        f.write(text)
    click.echo(_shown(path))
    if not summary.strip():
        state.say("Write the summary in the file before the next build (it is required).")


@main.command()
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.pass_obj
@fail_cleanly
def init(state: State, /, folder: Path) -> None:
    """Create a new workspace in FOLDER: digest.toml, templates/, items/ with one example item."""
    from digest.workspace import create_workspace

    created = create_workspace(folder, today=state.now.date())
    for path in created:
        state.say(f"created {_shown(path)}", level=1)
    state.say(f"New digest workspace in {_shown(folder)}. Next: cd {folder} && digest build --last 30d")


def _screenshots(state: State, config: Config, folder: Path, win: Window) -> None:
    """Take the screenshots of a built folder and refresh the archive page, whatever they show."""
    from digest.shots import take_screenshots
    from digest.site import write_index

    state.say("taking screenshots in headless Chromium ...", level=1)
    try:
        shots = take_screenshots(folder, base_url=config.base_url, slug=win.slug)
    finally:
        if any(folder.glob("shot-*.png")):
            write_index(folder.parent, title=config.title)
    for url in shots.remote_images:
        state.say(f"not checked (remote image, no network in the screenshot browser): {url}", level=1)
    state.say(f"screenshots -> {', '.join(_shown(p) for p in shots.files)}")


@main.command()
@window_options
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Instead of out/.")
@click.pass_obj
@fail_cleanly
def shots(state: State, /, out_dir: Path | None, **window: str | None) -> None:
    """Screenshot a built digest (375/640 px, light/dark); fail on sideways scroll or a broken image."""
    config = state.config()
    win = get_window(state, config, **window)
    folder = (out_dir or config.out_dir) / win.slug
    if not (folder / "manifest.json").is_file():
        raise DigestError(f"{_shown(folder)}/ has not been built: run `digest build` for this window first")
    _screenshots(state, config, folder, win)


@main.command()
@window_options
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Instead of out/.")
@click.option("--strict", is_flag=True, help="Fail on warnings too (exit 1).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (for CI).")
@click.pass_obj
@fail_cleanly
def check(state: State, /, out_dir: Path | None, strict: bool, as_json: bool, **window: str | None) -> None:
    """Lint a built digest: exit 1 on errors (with --strict, on warnings too)."""
    from digest.check import check as run_check
    from digest.check import format_report

    config = state.config()
    win = get_window(state, config, **window)
    report = run_check(config, win, now=state.now, out_dir=out_dir)
    folder = _shown(report.folder)
    if as_json:
        click.echo(report.as_json(strict=strict))
    elif report.findings:
        click.echo(format_report(report, shown_folder=folder))
    failed = report.failed(strict=strict)
    e, w = report.errors, report.warnings
    counts = f"{e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''}"
    verdict = "failed" if failed else "passed"
    state.say(f"check {verdict}{' (strict)' if strict else ''}: {counts} in {folder}/")
    if failed:
        sys.exit(1)


@main.command()
@window_options
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="The port (default: a free one).")
@click.pass_obj
@fail_cleanly
def preview(state: State, /, port: int, **window: str | None) -> None:
    """Serve a live preview on 127.0.0.1; it rebuilds when an item, a template or the config changes."""
    from digest.preview import Preview

    config_path = state.config().config_path  # fails now, before serving, if there is no config at all
    try:
        server = Preview(
            load=lambda: load_config(config_path),
            window=lambda config: get_window(state, config, **window),
            now=lambda: state.now,
            port=port,
            say=state.say,
        )
    except OSError as err:
        raise DigestError(f"cannot listen on 127.0.0.1:{port}: {err.strerror}") from err
    state.say(f"Preview on {server.url}  (Ctrl-C to stop)", level=-1)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        state.say("Stopped.", level=-1)


if __name__ == "__main__":  # pragma: no cover
    main()
