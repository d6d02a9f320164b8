"""A deadline for a request's headers (against clients that open connections and send
their headers a byte at a time, holding the server's connections: "slowloris").

uvicorn times out idle keep-alive connections but not a request whose headers never end.
The protocol class here closes a connection whose request headers are not complete within
``header_timeout_s`` of its first byte (or of the connection's opening).
"""

from __future__ import annotations

from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import Settings

try:  # uvicorn's faster parser, when installed (what its "auto" would choose)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover
    _Base = H11Protocol


def _waiting(protocol) -> bool:
    """No request in progress: the next request's headers are not complete yet."""
    cycle = getattr(protocol, "cycle", None)
    return cycle is None or cycle.response_complete


class HeaderDeadline(_Base):
    """uvicorn's HTTP protocol with a deadline for each request's headers."""

    header_timeout_s = 10.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def data_received(self, data: bytes) -> None:
        if getattr(self, "_deadline", None) is None and _waiting(self):
            self._deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)
        super().data_received(data)
        if self._deadline is not None and not _waiting(self):
            self._deadline.cancel()  # the headers are in: the app has the request
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if _waiting(self) and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)


class FromEnvironment(HeaderDeadline):
    """:class:`HeaderDeadline` with the deadline of the environment's settings: the protocol
    of ``serve``'s worker processes, which build their settings from the environment."""

    header_timeout_s = Settings.from_env().header_timeout_s


def protocol(header_timeout_s: float) -> type[HeaderDeadline]:
    """The protocol class for ``uvicorn.run(http=...)`` with this deadline."""
    return type("HeaderDeadline", (HeaderDeadline,), {"header_timeout_s": header_timeout_s})
