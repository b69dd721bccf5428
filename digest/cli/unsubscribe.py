"""`digest unsubscribe serve`: the unsubscribe endpoint (digest.unsubscribe) on this machine, with wsgiref."""

from __future__ import annotations

import click

from digest.cli.base import State, fail_cleanly, main


@main.group()
def unsubscribe() -> None:
    """The one-click unsubscribe endpoint (deploy `digest.unsubscribe:app` behind any WSGI server)."""


@unsubscribe.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="The port.")
@click.pass_obj
@fail_cleanly
def serve(state: State, host: str, port: int) -> None:
    """Answer the unsubscribe links locally until Ctrl-C (any path: the query or path carries the token)."""
    from digest.unsubscribe import serve as run

    config = state.config()
    run(
        config,
        host=host,
        port=port,
        ready=lambda url: state.say(f"Unsubscribe endpoint on {url} (Ctrl-C stops)"),
    )
