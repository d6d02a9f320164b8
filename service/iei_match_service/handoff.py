"""Several worker processes on one port, each connection handed to the worker that holds the
fewest.

When worker processes share a listening socket, each one's event loop accepts every
connection that waits when it wakes. Keep-alive clients that connect at about the same time
(a load balancer's pool, a page's parallel requests, a benchmark's clients) then stay with
whichever worker woke first: four clients were held 3 and 1, or 4 and 0, by two workers
(``benchmarks/README.md``), and one worker answered everything while the other was idle.

Here the supervisor process accepts the connections itself and hands each one (its file
descriptor, over a Unix socket with ``SCM_RIGHTS``) to the ready worker that holds the
fewest open connections, the one handed a connection longest ago on a tie. Each worker says
when it is ready and when one of its connections closes. A worker that stops (SIGTERM)
first tells the dealer, which hands it nothing more, and gives back any connection handed
to it meanwhile; it is then replaced. A worker that dies is replaced too; its connections
die with it. The supervisor does nothing else with a connection: it never
reads from it.

- :class:`Dealer`: the supervisor's accepting thread.
- :class:`HandedServer`: a worker's uvicorn server, which takes its connections from its
  end of the channel instead of a listening socket.
- :class:`Supervisor`: starts the workers, replaces those that die or stop answering, and on
  SIGINT, SIGTERM or SIGHUP stops accepting and lets each worker finish the requests in
  flight.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import selectors
import signal
import socket
import threading
from collections import deque
from dataclasses import dataclass

import uvicorn
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Process

logger = logging.getLogger("uvicorn.error")

# What a worker tells the dealer, one byte per message: ready for connections, one of its
# connections closed, leaving (no more connections: the dealer answers ``LEFT``), and
# connections given back (handed after it began to leave; the message carries them).
READY, CLOSED, LEAVING, BACK = b"r", b"-", b"q", b"b"
HANDED, LEFT = b"c", b"k"  # the dealer's: a connection; the last message to a leaver
ACCEPTS_PER_WAKE = 64  # connections accepted at most before the channels are read again
# Connections accepted and not yet handed at most (while the workers' channels are full):
# beyond, new ones wait in the kernel's queue of the listening socket.
WAITING_MAX = 256


@dataclass(eq=False)
class _Seat:
    """The dealer's end of one worker's channel and what it knows of the worker."""

    channel: socket.socket
    ready: bool = False
    open: int = 0  # connections handed and not yet reported closed
    last: int = 0  # when it was last handed one (a counter)


def _receive(channel: socket.socket, max_fds: int) -> tuple[bytes, list[int]] | None:
    """One message of ``channel`` (a non-blocking end of a channel) and the descriptors it
    carries; None when none is waiting, ``(b"", [])`` when the other end has closed."""
    try:
        message, fds, _, _ = socket.recv_fds(channel, 16, max_fds)
    except BlockingIOError:
        return None
    except OSError:
        return b"", []
    return message, fds


class Dealer:
    """Accepts the connections of ``listener`` (a listening socket) and hands each to the
    ready worker that holds the fewest open ones, in a thread of its own (:meth:`run`).

    While no worker is ready (all starting, or all gone), nothing is accepted: connections
    wait in the kernel's queue of the listening socket, as they would for a single server
    that is busy, and are accepted and handed out once a worker is ready. A worker whose
    channel is full (its event loop busy) is passed over until it has read it; at most
    :data:`WAITING_MAX` accepted connections wait for a channel, the rest in the kernel.
    """

    def __init__(self, listener: socket.socket):
        self.listener = listener
        listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._joining: deque[socket.socket] = deque()
        self._seats: dict[socket.socket, _Seat] = {}
        self._waiting: deque[socket.socket] = deque()
        self._clock = itertools.count(1)
        self._stopping = threading.Event()

    def seat(self) -> socket.socket:
        """A channel for a new worker: its end is returned (give it to the worker process
        and close it here once the process has started); the dealer keeps the other."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        self._joining.append(ours)
        self._wake()
        return theirs

    def stop(self) -> None:
        """Stop accepting (the listening socket is closed when :meth:`run` returns)."""
        self._stopping.set()
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # its buffer is full: it will wake anyway
            pass

    def held(self) -> list[int]:
        """The open connections each ready worker holds (for logs and tests)."""
        return [s.open for s in self._seats.values() if s.ready]

    def run(self) -> None:
        sel = self._selector
        sel.register(self._wake_r, selectors.EVENT_READ)
        listening = False
        try:
            while not self._stopping.is_set():
                # Accept only while a worker is ready to take what is accepted: otherwise
                # connections wait in the kernel's queue of the listening socket (bounded
                # by its backlog), not in this process.
                ready = (any(s.ready for s in self._seats.values())
                         and len(self._waiting) < WAITING_MAX)
                if ready and not listening:
                    sel.register(self.listener, selectors.EVENT_READ)
                elif listening and not ready:
                    sel.unregister(self.listener)
                listening = ready
                # Connections left waiting (full channels) are offered again soon.
                for key, _ in sel.select(timeout=0.01 if self._waiting else 1.0):
                    if key.fileobj is self.listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        self._wake_r.recv(4096)
                        while self._joining:
                            channel = self._joining.popleft()
                            self._seats[channel] = _Seat(channel)
                            sel.register(channel, selectors.EVENT_READ)
                    else:
                        self._heard(self._seats[key.fileobj])  # type: ignore[index]
                self._deal()
        finally:
            self.listener.close()
            for conn in self._waiting:
                conn.close()
            for channel in self._seats:
                channel.close()
            sel.close()

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as e:  # out of file descriptors, or the client already gone
                logger.warning("could not accept a connection: %s", e)
                return
            self._waiting.append(conn)

    def _heard(self, seat: _Seat) -> None:
        while (received := _receive(seat.channel, 16)) is not None:
            message, fds = received
            if not message and not fds:  # the worker has ended: its connections with it
                self._selector.unregister(seat.channel)
                del self._seats[seat.channel]
                seat.channel.close()
                return
            if message == READY:
                seat.ready = True
            elif message == CLOSED:
                seat.open = max(0, seat.open - 1)
            elif message == LEAVING:
                seat.ready = False
                try:
                    seat.channel.send(LEFT)
                except OSError:
                    pass
            elif message == BACK:  # handed before it left: to another worker, first
                self._waiting.extendleft(socket.socket(fileno=fd) for fd in reversed(fds))
                seat.open = max(0, seat.open - len(fds))

    def _deal(self) -> None:
        full: set[_Seat] = set()
        while self._waiting:
            ready = [s for s in self._seats.values() if s.ready and s not in full]
            if not ready:
                return
            seat = min(ready, key=lambda s: (s.open, s.last))
            conn = self._waiting[0]
            try:
                socket.send_fds(seat.channel, [HANDED], [conn.fileno()])
            except BlockingIOError:  # its channel is full (its loop is busy): another, or later
                full.add(seat)
                continue
            except OSError:  # it is gone: its end of the channel is read next
                seat.ready = False
                continue
            self._waiting.popleft()
            conn.close()  # the worker holds its own descriptor of it now
            seat.open += 1
            seat.last = next(self._clock)


class HandedServer(uvicorn.Server):
    """A worker's uvicorn server whose connections come over its channel from the
    :class:`Dealer` (the one socket it is given) instead of from a listening socket."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        assert sockets is not None and len(sockets) == 1
        await super().startup(sockets=[])  # the app's lifespan; no listener
        self._channel = channel = sockets[0]
        channel.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._taking: set[asyncio.Task] = set()
        self._loop.add_reader(channel.fileno(), self._take)
        channel.send(READY)

    def _protocol(self) -> asyncio.Protocol:
        config = self.config
        protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=self.server_state, app_state=self.lifespan.state)
        lost = protocol.connection_lost

        def connection_lost(exc) -> None:
            lost(exc)
            try:
                self._channel.send(CLOSED)
            except OSError:  # the supervisor is gone or stopping
                pass

        protocol.connection_lost = connection_lost  # type: ignore[method-assign]
        return protocol

    def _take(self) -> None:
        while (received := _receive(self._channel, 4)) is not None:
            message, fds = received
            if not message and not fds:  # the supervisor has ended: so does this worker
                self._loop.remove_reader(self._channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                conn = socket.socket(fileno=fd)
                task = self._loop.create_task(
                    self._loop.connect_accepted_socket(self._protocol, conn))
                self._taking.add(task)
                task.add_done_callback(self._taking.discard)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if hasattr(self, "_channel"):
            self._loop.remove_reader(self._channel.fileno())
            await self._leave()
        await super().shutdown()
        if hasattr(self, "_channel"):
            self._channel.close()

    async def _leave(self, timeout: float = 2.0) -> None:
        """Tell the dealer that this worker takes no more connections, and give back those
        it handed before it heard that (until its ``LEFT``, or ``timeout`` seconds when it
        does not answer: it has stopped)."""
        try:
            self._channel.send(LEAVING)
        except OSError:
            return
        deadline = self._loop.time() + timeout
        while self._loop.time() < deadline:
            received = _receive(self._channel, 4)
            if received is None:
                await asyncio.sleep(0.01)
                continue
            message, fds = received
            if fds:
                try:
                    socket.send_fds(self._channel, [BACK], fds)
                except OSError:
                    pass
                for fd in fds:
                    socket.close(fd)  # the dealer holds its own descriptor of each
            if message in (LEFT, b""):
                return


class _Worker(Process):
    """uvicorn's worker process (its health checks included), given a channel of the
    dealer instead of the listening socket."""

    def __init__(self, config: Config, dealer: Dealer):
        self._theirs = dealer.seat()
        super().__init__(config, [self._theirs])

    def start(self) -> None:
        super().start()
        self._theirs.close()  # the worker holds its end now; ours would hide its exit

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = HandedServer(config=self.config)
        return self._server


class Supervisor:
    """Serves ``config`` (whose ``workers`` is the number of worker processes) on its host
    and port, each connection handed to a worker by a :class:`Dealer`."""

    def __init__(self, config: Config):
        self.config = config
        self._exit = threading.Event()

    def run(self) -> None:
        listener = self.config.bind_socket()
        listener.listen(self.config.backlog)
        dealer = Dealer(listener)
        dealing = threading.Thread(target=dealer.run, name="dealer", daemon=True)
        dealing.start()
        # A stop, finished gracefully, for each (uvicorn's supervisor restarted its workers
        # on SIGHUP; a model is followed live here, so there is nothing to restart for).
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: self._exit.set())
        workers = [_Worker(self.config, dealer) for _ in range(self.config.workers)]
        for w in workers:
            w.start()
        while not self._exit.wait(0.5):
            for i, w in enumerate(workers):
                if w.is_alive(timeout=self.config.timeout_worker_healthcheck):
                    continue
                w.kill()  # dead or hung
                w.join()
                if w.exitcode == STARTUP_FAILURE:  # the app cannot start: no use retrying
                    logger.error("worker [%s] failed to start; stopping", w.pid)
                    self._exit.set()
                    break
                logger.info("worker [%s] ended; starting another", w.pid)
                workers[i] = _Worker(self.config, dealer)
                workers[i].start()
        dealer.stop()  # no new connection; the workers finish those they hold
        dealing.join()
        for w in workers:
            w.terminate()
        for w in workers:
            w.join()


APP = "iei_match_service.app:create_app"  # built by each worker from the environment
PROTOCOL = "iei_match_service.http_timeouts:FromEnvironment"


def main(argv: list[str] | None = None) -> None:
    """The supervisor of ``iei-match serve`` with several workers, as its own light
    process: ``serve`` reads the settings, puts them in the environment for the workers
    and replaces itself with ``python -m iei_match_service.handoff`` (the same process id),
    so that the supervisor does not hold the engine's libraries it never uses."""
    ap = argparse.ArgumentParser(prog="python -m iei_match_service.handoff")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--healthcheck", type=float, required=True,
                    help="seconds a worker has to answer a health check")
    args = ap.parse_args(argv)
    Supervisor(uvicorn.Config(
        APP, factory=True, workers=args.workers, host=args.host, port=args.port,
        log_level="info", timeout_graceful_shutdown=30, http=PROTOCOL,
        timeout_worker_healthcheck=args.healthcheck)).run()


if __name__ == "__main__":
    main()
