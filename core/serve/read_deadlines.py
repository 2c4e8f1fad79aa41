"""Deadlines for reading a request: a client that trickles its headers is cut off.

uvicorn waits for a request's headers as long as bytes keep coming, and its keep-alive timer
restarts on every byte, so 300 connections sending a header byte every few seconds stayed
open for as long as their clients liked (slowloris). This protocol gives each request's
headers HEADER_READ_SECONDS from the moment the connection can carry a request (it opened,
or the previous answer ended); the body has its own deadline where it is read
(`core.serve.request_body.BODY_READ_SECONDS`).
"""
from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_READ_SECONDS = 10.0


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's headers."""

    header_read_seconds = HEADER_READ_SECONDS

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        if not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(self.header_read_seconds, self._headers_overdue)

    def _disarm_header_deadline(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
        self._header_deadline = None

    def _headers_overdue(self) -> None:
        self._header_deadline = None
        # Until a request's headers are whole, h11 leaves the client's side IDLE.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def with_header_deadline(seconds: float | None) -> type[DeadlineH11Protocol]:
    """The protocol class for uvicorn's `http=`, with `seconds` for the headers (None: the default)."""
    if seconds is None:
        return DeadlineH11Protocol
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"header_read_seconds": seconds})
