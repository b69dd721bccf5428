"""The command line: parse options, call one function per command, turn DigestError into `Error: ...`.

Status goes to stderr, content (lists, messages) to stdout. Exit codes: 0 ok, 1 error, 2 usage error
(click's), 3 nothing in the window.
"""

from __future__ import annotations

import functools
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from digest import __version__
from digest.config import CONFIG_NAME, Config, load_config
from digest.errors import DigestError, EmptyWindow, SendError
from digest.fsutil import rel_path, shown
from digest.window import Window, resolve
from digest.words import plural

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    """What the top-level options decided, shared with every command."""

    config_path: Path | None
    verbosity: int
    now: datetime
    _config: Config | None = None

    def config(self, **flags: Any) -> Config:
        """Load the configuration once, with this command's flags (keyed by setting, None: not given)."""
        if self._config is None:
            self._config = load_config(self.config_path, flags=flags)
            if self._config.paths.config_file is None and not self._config.paths.items.is_dir():
                raise DigestError(
                    f"no {CONFIG_NAME} in {Path.cwd()} or its parent folders, and no items/ folder here: "
                    "run `digest init DIR` to create a workspace, or pass --config FILE"
                )
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
        click.option(
            "--since-last-send",
            "since_last_send",
            is_flag=True,
            default=None,
            help="The items newer than the newest item of the last digest sent to a whole list, up to now.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def get_window(state: State, config: Config, *, since_last_send: bool | None = None, **opts: Any) -> Window:
    """Resolve the window options; none given means the previous calendar month."""
    if not since_last_send:
        return resolve(tz=config.tz, locale=config.language, now=state.now, **opts)
    from digest.journal import last_sent_in_full
    from digest.window import after

    given = [f"--{k.rstrip('_')}" for k, v in opts.items() if v]
    if given:
        raise DigestError(
            f"--since-last-send chooses the window itself: give no {' or '.join(given)} with it"
        )
    found = last_sent_in_full(config.paths.out, config.tz)
    if found is None:
        raise DigestError(
            f"--since-last-send: no digest in {shown(config.paths.out)}/ was sent to a whole list yet"
        )
    folder, start = found
    state.say(f"last digest sent in full: {shown(folder)}/; items from {start.isoformat()}", level=1)
    return after(start, config.tz, config.language, now=state.now)


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
@click.option("--screenshots", is_flag=True, help="Also take the four screenshots (see `digest shots`).")
@click.pass_obj
@fail_cleanly
def build(
    state: State,
    /,
    out_dir: Path | None,
    screenshots: bool = False,
    **window: Any,
) -> None:
    """Build the digest of a window into out/<slug>/ (default: last month)."""
    from digest.build import build as run_build

    config = state.config(**{"paths.out": out_dir})
    win = get_window(state, config, **window)
    result = run_build(config, win, now=state.now)
    for warning in result.warnings:
        state.warn(warning)
    state.say(f"scanned {result.scan.total_files} item files, parsed {result.scan.parsed_files}", level=1)
    n, c = len(result.digest.items), len(result.digest.sections)
    counted = f"{plural(n, 'item')} in {plural(c, 'category', 'categories')}"
    sizes = f"html {_kb(result.sizes['digest.html'])}, text {_kb(result.sizes['digest.txt'])}"
    state.say(f"{counted} -> {shown(result.folder)}/ ({sizes})")
    if screenshots:
        _screenshots(state, config, result.folder)


@main.command(name="list")
@window_options
@click.pass_obj
@fail_cleanly
def list_(state: State, /, **window: Any) -> None:
    """List the items a build of this window would include."""
    from digest.build import collect

    config = state.config()
    win = get_window(state, config, **window)
    digest, found = collect(config, win)
    for warning in (*found.warnings, *digest.warnings):
        state.warn(warning)
    rows = [
        (
            i.when.date().isoformat(),
            s.name,
            i.title,
            rel_path(config.paths.items / i.source, config.paths.root),
        )
        for s in digest.sections
        for i in [*s.items]
    ]
    state.say(f"{win.label}: {plural(len(rows), 'item')}")
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


@main.command()
@click.argument("title")
@click.option("--category", required=True, help="The item's category, e.g. News.")
@click.option("--summary", default="", help="One or two sentences (you can also write them in the file).")
@click.option("--url", default=None, help="The item's web page.")
@click.pass_obj
@fail_cleanly
def new(state: State, /, title: str, category: str, summary: str, url: str | None) -> None:
    """Create an item file dated today, ready to edit."""
    from digest.items import new_item

    config = state.config()
    today = state.now.astimezone(config.tz).date()
    path = new_item(config, title=title, category=category, summary=summary, url=url, today=today)
    click.echo(shown(path))
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
        state.say(f"created {shown(path)}", level=1)
    step = "" if folder.resolve() == Path.cwd() else f"cd {folder} && "
    state.say(f"New digest workspace in {shown(folder)}. Next: {step}digest build --last 30d")


def _screenshots(state: State, config: Config, folder: Path) -> None:
    """Take the screenshots of a built folder and refresh the archive page, whatever they show."""
    from digest.shots import take_screenshots
    from digest.site import write_index

    state.say("taking screenshots in headless Chromium ...", level=1)
    try:
        shots = take_screenshots(folder, base_url=config.base_url, slug=folder.name)
    finally:
        if any(folder.glob("shot-*.png")):
            write_index(config.paths.out, title=config.title)
    for url in shots.remote_images:
        state.say(f"not checked (remote image, no network in the screenshot browser): {url}", level=1)
    state.say(f"screenshots -> {', '.join(shown(p) for p in shots.files)}")


@main.command()
@window_options
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Instead of out/.")
@click.pass_obj
@fail_cleanly
def shots(state: State, /, out_dir: Path | None, **window: Any) -> None:
    """Screenshot a built digest (375/640 px, light/dark); fail on sideways scroll or a broken image."""
    from digest import outdir

    config = state.config(**{"paths.out": out_dir})
    win = get_window(state, config, **window)
    built = outdir.load(outdir.folder_of(config.paths.out, win.slug))
    _screenshots(state, config, built.folder)


@main.command()
@window_options
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Instead of out/.")
@click.option("--strict", is_flag=True, help="Fail on warnings too (exit 1).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (for CI).")
@click.pass_obj
@fail_cleanly
def check(state: State, /, out_dir: Path | None, strict: bool, as_json: bool, **window: Any) -> None:
    """Lint a built digest: exit 1 on errors (with --strict, on warnings too)."""
    from digest.check import check as run_check
    from digest.check import format_report

    config = state.config(**{"paths.out": out_dir})
    win = get_window(state, config, **window)
    report = run_check(config, win)
    folder = shown(report.folder)
    if as_json:
        click.echo(report.as_json(strict=strict))
    elif report.findings:
        click.echo(format_report(report))
    failed = report.failed(strict=strict)
    e, w = report.errors, report.warnings
    counts = f"{plural(e, 'error')}, {plural(w, 'warning')}"
    verdict = "failed" if failed else "passed"
    state.say(f"check {verdict}{' (strict)' if strict else ''}: {counts} in {folder}/")
    if failed:
        sys.exit(1)


def _rate(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    from digest.config import parse_rate

    try:
        return None if value is None else parse_rate(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


@main.command()
@window_options
@click.option(
    "--subscribers",
    "subscribers",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The subscriber list: CSV with a header row, an 'email' column, optionally 'name' and others.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the built <slug>/ folder is (as for `digest build`).",
)
@click.option("--dry-run", is_flag=True, help="Print the first message and the counts; connect to nothing.")
@click.option(
    "--test", "test_address", metavar="ADDRESS", help="Send one copy to ADDRESS, outside the journal."
)
@click.option("--status", is_flag=True, help="Print the journal's counts (sent, failed, deferred, pending).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--connections", type=click.IntRange(1, 64), help="SMTP connections in parallel (default 1).")
@click.option(
    "--rate", metavar="N/s|N/h", callback=_rate, help="At most this many messages per second or hour."
)
@click.option("--skip-invalid", is_flag=True, help="Send to the good rows even when some rows are bad.")
@click.option(
    "--allow-changed", is_flag=True, help="Resume a send although the digest changed since it began."
)
@click.option(
    "--as-built", is_flag=True, help="Send the built folder although the window's items changed since."
)
@click.option(
    "--retries", type=click.IntRange(0, 20), default=5, show_default=True, help="Retries per message."
)
@click.option("--retry-delay", type=click.FloatRange(0, 600), default=1.0, show_default=True, help="Seconds.")
@click.option(
    "--insecure-no-verify",
    is_flag=True,
    help="DANGEROUS: do not check the server's TLS certificate (anyone on the path can read the mail).",
)
@click.pass_obj
@fail_cleanly
def send(
    state: State,
    /,
    subscribers: Path | None,
    out_dir: Path | None,
    dry_run: bool,
    test_address: str | None,
    status: bool,
    yes: bool,
    connections: int | None,
    rate: float | None,
    skip_invalid: bool,
    allow_changed: bool,
    as_built: bool,
    retries: int,
    retry_delay: float,
    insecure_no_verify: bool,
    **window: Any,
) -> None:
    """Send the digest of a window (built in out/<slug>/, built first if absent) to a subscriber list."""
    from digest import outdir
    from digest import send as sending
    from digest.journal import status as journal_status
    from digest.smtp import smtp_settings

    flags = {
        "paths.out": out_dir,
        "send.connections": connections,
        "send.rate": rate,
        "smtp.verify": False if insecure_no_verify else None,
    }
    config = state.config(**flags)
    win = get_window(state, config, **window)
    if status:
        found = journal_status(outdir.folder_of(config.paths.out, win.slug))
        click.echo(f"{shown(found.journal)}: {found.counts}{' (complete)' if found.complete else ''}")
        return
    if test_address is None and subscribers is None:
        raise click.UsageError("give --subscribers FILE.csv (or --test ADDRESS, or --status)")
    if dry_run and subscribers is None:
        raise click.UsageError("--dry-run needs --subscribers FILE.csv")
    address = smtp_settings(config).address  # checked first: a mistake there should not wait for a build
    options = sending.SendOptions(
        retries=retries,
        retry_delay=retry_delay,
        allow_changed=allow_changed,
        skip_invalid=skip_invalid,
        as_built=as_built,
    )
    if dry_run:
        assert subscribers is not None
        plan = sending.dry_run(config, win, subscribers, options, now=state.now, say=state.say)
        if plan.message is not None:
            click.echo(plan.message.data.decode("ascii"), nl=False)
        _report_list(state, plan.listed)
        if plan.counts is not None:
            state.say(f"journal: {plan.counts}")
        state.say(f"dry run: would send {plan.would_send} messages via {plan.address}; sent nothing")
        return
    if not config.smtp.verify:
        click.secho(
            f"WARNING: TLS certificate verification is OFF for {address}: "
            "anyone on the network path can read and change these messages.",
            err=True,
            fg="red",
            bold=True,
        )
    if test_address is not None:
        reply = sending.send_test(config, win, test_address, now=state.now, as_built=as_built, say=state.say)
        state.say(f"test message sent to {test_address} via {address}: {reply}")
        return
    assert subscribers is not None

    def confirm(plan: sending.Plan) -> bool:
        if yes:
            return True
        state.say(f"journal: {plan.counts}")
        answer = click.confirm(
            f"Send {plan.subject!r} to {plural(plan.todo, 'recipient')} via {plan.address}?", err=True
        )
        if not sys.stdin.isatty():  # piped: no terminal echoed the answer and its line end
            click.echo(err=True)
        return answer

    progress = _Progress(enabled=state.verbosity >= 0)
    try:
        report = sending.run(
            config,
            win,
            subscribers,
            options,
            now=state.now,
            confirm=confirm,
            progress=progress.step,
            say=state.say,
        )
    finally:
        progress.close()
    _report_list(state, report.listed)
    rate_done = report.sent / report.elapsed if report.elapsed > 0 else 0.0
    state.say(
        f"{report.sent} sent, {report.failed} failed, {report.deferred} deferred in this run "
        f"({report.already_done} done before; {rate_done:.0f} messages/s). Journal: {report.counts}"
    )
    for email, code, reply in report.failures:
        state.say(f"  {email}: {code or ''} {reply}".rstrip())
    bad = report.refused + report.unfinished
    if bad:
        raise SendError(
            f"{plural(bad, 'recipient')} did not get the digest "
            f"({report.refused} refused, {report.unfinished} deferred: run again to retry those)"
        )


class _Progress:
    """A progress bar on stderr with the rate and ETA; updated from the sending threads."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.began = 0.0
        self.lock = threading.Lock()

    def step(self, done: int, todo: int) -> None:
        with self.lock:
            if done == 0:
                self.began = time.monotonic()
                if self.enabled:
                    self.bar = click.progressbar(
                        length=todo, label="Sending", show_eta=True, show_pos=True, file=sys.stderr
                    )
                    self.bar.__enter__()
            elif self.bar is not None:
                rate = done / max(time.monotonic() - self.began, 1e-6)
                self.bar.update(1, current_item=f"{rate:.0f}/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _report_list(state: State, listed: Any) -> None:
    state.say(
        f"{listed.path}: {listed.count} unique addresses"
        + (
            f", {listed.duplicates} duplicate{'s' if listed.duplicates != 1 else ''} merged"
            if listed.duplicates
            else ""
        )
        + (
            f", {listed.bad_rows} bad row{'s' if listed.bad_rows != 1 else ''} skipped"
            if listed.bad_rows
            else ""
        )
    )


@main.command()
@window_options
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="The port (default: a free one).")
@click.pass_obj
@fail_cleanly
def preview(state: State, /, port: int, **window: Any) -> None:
    """Serve a live preview on 127.0.0.1; it rebuilds when an item, a template or the config changes."""
    from contextlib import suppress

    from digest.preview import Preview

    config = state.config()  # fails now, before serving, if there is no config at all
    config_path = config.paths.config_file
    get_window(state, config, **window)  # a bad option too: no edit of a watched file could fix it
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
    with suppress(KeyboardInterrupt):  # Ctrl-C; on SIGTERM or SIGHUP it returns
        server.serve_forever()
    state.say("Stopped.", level=-1)


if __name__ == "__main__":  # pragma: no cover
    main()
