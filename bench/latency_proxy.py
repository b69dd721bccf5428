"""A TCP proxy on loopback that delays every chunk by N ms each way: a realistic relay's round trip.

    python bench/latency_proxy.py --listen 2526 --to 127.0.0.1:2525 --latency-ms 10

Each direction keeps its order and its pace: a chunk read at t is written at t + latency, whatever came
before it, so a client that pipelines pays the delay once per turn, not once per command. `turns` counts
the client's turns (a client write after the server has answered): the round trips the client waited for.

One thread, `selectors` and a heap of due times, plain Python: the proxy shares the machine with the
sender and the sink it measures, so it does as little as it can per chunk (one `recv` of up to 256 KB,
one heap entry, one `send` when due; no task, queue or timer object per chunk). It waits with select(),
whose timeout is in microseconds; epoll's is in milliseconds, rounded up (100-byte pings through 10 ms
each way, on the loaded 2-core machine: 20.75 ms a round trip, against 21.1 ms through the asyncio
version). select() limits it to about 500 connections at once, plenty for a bench.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import selectors
import socket
import threading
import time
from collections import deque

READ_SIZE = 256 * 1024


class _Pipe:
    """One direction of one connection: what was read from `src`, each chunk with the time it is due."""

    def __init__(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        self.src, self.dst, self.from_client = src, dst, from_client
        self.queue: deque[tuple[float, bytes]] = deque()  # read, not due yet (b"": the end, due then)
        self.out = bytearray()  # due, not written yet (the destination's buffer was full)
        self.answered = from_client  # client side: the server spoke since the client's last write (greeting)
        self.ended = False  # the end is due and everything before it written: dst was shut for writing
        self.other: _Pipe  # the opposite direction


class Proxy:
    """listen on 127.0.0.1:<port>, forward to target, delay each chunk `latency` seconds each way."""

    def __init__(self, target: tuple[str, int], latency: float, port: int = 0) -> None:
        self.target, self.latency = target, latency
        self.turns = 0  # client writes that followed a reply from the server, over all connections
        self._sel = selectors.SelectSelector()  # not epoll: its timeout would round each delay up to a ms
        self._timers: list[tuple[float, int, _Pipe]] = []
        self._seq = itertools.count()
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._listener, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._pipes: dict[socket.socket, tuple[_Pipe | None, _Pipe | None]] = {}  # (reads from, writes to)
        self._mask: dict[socket.socket, int] = {}  # what the selector watches each socket for
        self._stopping = False

    def serve(self) -> None:
        """Forward until `stop()`; then close every connection."""
        try:
            while not self._stopping:
                timeout = None
                if self._timers:
                    timeout = max(0.0, self._timers[0][0] - time.monotonic())
                for key, events in self._sel.select(timeout):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._listener:
                        self._accept()
                    elif sock is self._wake_r:
                        with contextlib.suppress(OSError):
                            sock.recv(64)
                    else:
                        self._ready(sock, events)
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, pipe = heapq.heappop(self._timers)
                    self._due(pipe, now)
        finally:
            for sock in list(self._pipes):
                sock.close()
            self._sel.close()
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()

    def stop(self) -> None:
        """Ask `serve` to return (from any thread)."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up, down = _Pipe(client, upstream, True), _Pipe(upstream, client, False)
        up.other, down.other = down, up
        self._pipes[client], self._pipes[upstream] = (up, down), (down, up)
        self._events(client)
        self._events(upstream)

    def _ready(self, sock: socket.socket, events: int) -> None:
        reads, writes = self._pipes.get(sock, (None, None))
        if events & selectors.EVENT_WRITE and writes is not None:
            self._flush(writes)
        if events & selectors.EVENT_READ and reads is not None and sock in self._pipes:
            try:
                chunk = sock.recv(READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if reads.from_client:
                if chunk and reads.answered:
                    self.turns += 1
                    reads.answered = False
            else:
                reads.other.answered = True
            due = time.monotonic() + self.latency
            reads.queue.append((due, chunk))
            heapq.heappush(self._timers, (due, next(self._seq), reads))
            if not chunk:  # the end: read no more from this side
                self._pipes[sock] = (None, writes)
                self._events(sock)

    def _due(self, pipe: _Pipe, now: float) -> None:
        while pipe.queue and pipe.queue[0][0] <= now:
            _, chunk = pipe.queue.popleft()
            if not chunk:
                pipe.ended = True
                break
            pipe.out += chunk
        self._flush(pipe)

    def _flush(self, pipe: _Pipe) -> None:
        if pipe.dst not in self._pipes:
            return
        if pipe.out:
            try:
                sent = pipe.dst.send(pipe.out)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._drop(pipe)
                return
            del pipe.out[:sent]
        if pipe.ended and not pipe.out:
            with contextlib.suppress(OSError):
                pipe.dst.shutdown(socket.SHUT_WR)
            if pipe.other.ended and not pipe.other.out:
                self._drop(pipe)
                return
        self._events(pipe.dst)

    def _events(self, sock: socket.socket) -> None:
        """Watch `sock` for what its pipes wait on: reading until its end, writing while output is held."""
        reads, writes = self._pipes[sock]
        mask = (selectors.EVENT_READ if reads is not None else 0) | (
            selectors.EVENT_WRITE if writes is not None and writes.out else 0
        )
        now = self._mask.get(sock, 0)
        if mask == now:
            return
        if not mask:
            self._sel.unregister(sock)
        elif not now:
            self._sel.register(sock, mask, None)
        else:
            self._sel.modify(sock, mask, None)
        self._mask[sock] = mask

    def _drop(self, pipe: _Pipe) -> None:
        for sock in (pipe.src, pipe.dst):
            if sock in self._pipes:
                del self._pipes[sock]
                if self._mask.pop(sock, 0):
                    self._sel.unregister(sock)
                sock.close()
        pipe.queue.clear()
        pipe.other.queue.clear()


class Running:
    """A Proxy in a thread of its own (for tests and the bench): `with Running(...) as p: p.port`."""

    def __init__(self, target: tuple[str, int], latency: float) -> None:
        self.proxy = Proxy(target, latency)
        self._thread = threading.Thread(target=self.proxy.serve, daemon=True)

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        return self.proxy.port

    def __enter__(self) -> Running:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.proxy.stop()
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
    print(f"127.0.0.1:{proxy.port} -> {args.to}, +{args.latency_ms:g} ms each way", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        proxy.serve()


if __name__ == "__main__":
    main()
