"""What every command shares: the top-level group and its options, the state they decide, the window
options, and the turning of a DigestError into `Error: ...` (exit 1; 3 for an empty window)."""

from __future__ import annotations

import functools
import gc
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click

from digest import __version__
from digest.config import CONFIG_NAME, Config, load_config
from digest.errors import DigestError, EmptyWindow
from digest.fsutil import shown
from digest.window import Window, resolve

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
        click.option(
            "--last",
            "last_",
            metavar="N[hdw]",
            help="Up to now: the last N whole days or weeks (from the first one's midnight), or hours: 30d.",
        ),
        click.option(
            "--since-last-send",
            "since_last_send",
            is_flag=True,
            default=None,
            help="From the day of the newest item sent to a whole list up to now, without the items sent.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def get_window(state: State, config: Config, *, since_last_send: bool | None = None, **opts: Any) -> Window:
    """Resolve the window options; none given means the previous calendar month."""
    if not since_last_send:
        return resolve(tz=config.tz, locale=config.language, now=state.now, **opts)
    from digest.sent import last_sent_in_full
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
    folder, sent = found
    window = after(sent, config.tz, config.language, now=state.now)
    state.say(
        f"last digest sent in full: {shown(folder)}/; items from {window.start.isoformat()}, "
        f"less the {len(sent.items)} that digests sent in full held",
        level=1,
    )
    return window


def _parse_now(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        now = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use an ISO date-time with an offset") from None
    return now if now.tzinfo else now.replace(tzinfo=UTC)


class _Commands(click.Group):
    """The top-level group: a command's module is imported when that command is asked for (the module
    registers its commands on the group), so that `digest build` does not import what `digest send`,
    `digest bounces` or `digest suppress` need."""

    # Each command, and the module that defines it: tests/test_cli.py checks this against the modules.
    where: ClassVar[dict[str, str]] = {
        **dict.fromkeys(("build", "list", "new", "init", "shots", "check", "preview"), "commands"),
        "send": "sending",
        "bounces": "bounces",
        "diff": "diff",
        "import": "feeds",
        "suppress": "suppress",
        "unsubscribe": "unsubscribe",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.where})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.where:
            importlib.import_module(f"digest.cli.{self.where[cmd_name]}")
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
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
    if ctx.invoked_subcommand in LONG_RUNNING:
        _collect_at_pythons_pace()


# Commands that may run for minutes or hours, allocating as they go. digest/__main__.py starts the command
# line with the cyclic collector's young collection every 100,000 allocations (a build is over before it
# would run); these go back to CPython's pace, so that garbage held in cycles never waits long.
LONG_RUNNING = frozenset({"send", "preview", "bounces", "import", "unsubscribe"})
PYTHONS_YOUNG_COLLECTION = 700  # CPython's default threshold for the young generation


def _collect_at_pythons_pace() -> None:
    young, older, oldest = gc.get_threshold()
    if young > PYTHONS_YOUNG_COLLECTION:
        gc.set_threshold(PYTHONS_YOUNG_COLLECTION, older, oldest)
