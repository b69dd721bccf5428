"""A TCP proxy on loopback that delays every chunk by N ms each way: a realistic relay's round trip.

    python bench/latency_proxy.py --listen 2526 --to 127.0.0.1:2525 --latency-ms 10

Each direction keeps its order and its pace: a chunk read at t is written at t + latency, whatever came
before it, so a client that pipelines pays the delay once per turn, not once per command. `turns` counts
the client's turns (a client write after the server has answered): the round trips the client waited for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
from collections.abc import Callable


class Proxy:
    """listen on 127.0.0.1:<port>, forward to target, delay each chunk `latency` seconds each way."""

    def __init__(self, target: tuple[str, int], latency: float, port: int = 0) -> None:
        self.target, self.latency, self.port = target, latency, port
        self.turns = 0  # client writes that followed a reply from the server, over all connections
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Start listening; self.port is then the port in use."""
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, and end the connections still open."""
        if self._server is not None:
            self._server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        answered = [True]  # the server's greeting comes first: the client's first write is a turn

        def from_client() -> None:
            if answered[0]:
                self.turns += 1
                answered[0] = False

        def from_server() -> None:
            answered[0] = True

        await asyncio.gather(
            self._pipe(reader, up_writer, from_client), self._pipe(up_reader, writer, from_server)
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Callable[[], None]
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    break
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(65536):
                seen()
                queue.put_nowait((loop.time() + self.latency, chunk))
        except OSError:
            pass
        queue.put_nowait((0.0, b""))
        try:
            await sender
            writer.close()
        except OSError:
            pass


class Running:
    """A Proxy in a thread of its own (for tests and the bench): `with Running(...) as p: p.port`."""

    def __init__(self, target: tuple[str, int], latency: float) -> None:
        self.proxy = Proxy(target, latency)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        return self.proxy.port

    def __enter__(self) -> Running:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def main() -> None:
    """Run a proxy until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--to", required=True, help="host:port to forward to")
    parser.add_argument("--latency-ms", type=float, default=10.0, help="delay each way, in ms")
    args = parser.parse_args()
    host, _, port = args.to.rpartition(":")
    proxy = Proxy((host, int(port)), args.latency_ms / 1000, args.listen)

    async def serve() -> None:
        await proxy.start()
        print(f"127.0.0.1:{proxy.port} -> {args.to}, +{args.latency_ms:g} ms each way", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
