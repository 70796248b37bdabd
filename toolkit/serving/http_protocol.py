"""uvicorn's httptools protocol with the timeouts it lacks: slow and idle connections are closed.

uvicorn times out a keep-alive connection only after a response; a connection that opens and sends nothing,
or sends its headers or body a byte at a time, is held forever. This subclass adds:
- a header timeout from the connection (or the previous response) until the request's headers are complete,
  and a cap on their size (431);
- a body timeout from the end of the headers until the body is complete;
both answered 408 and closed. The keep-alive (idle) timeout is uvicorn's `timeout_keep_alive`.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def guarded_protocol(header_timeout_s: float, body_timeout_s: float, max_header_bytes: int):
    """An `asyncio.Protocol` class for `uvicorn.Config(http=...)` with these limits."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _timer = None
        _head_bytes = 0
        _in_head = False
        _refused = False

        def _arm(self, seconds: float, what: str) -> None:
            self._disarm()
            if seconds and seconds > 0:
                self._timer = self.loop.call_later(seconds, self._expire, what)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expire(self, what: str) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            started = self.cycle is not None and not self.cycle.response_complete and self.cycle.response_started
            if not started:
                message = f"request {what} not received within the server's timeout".encode()
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                                     b"connection: close\r\ncontent-length: " + str(len(message)).encode() +
                                     b"\r\n\r\n" + message)
            if self.cycle is not None:
                self.cycle.disconnected = True
                self.cycle.message_event.set()
            self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._head_bytes, self._in_head, self._refused = 0, True, False  # until the first message begins
            self._arm(header_timeout_s, "headers")

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            if self._in_head and not self._refused:  # still no complete head after this data
                self._head_bytes += len(data)
                if self._head_bytes > max_header_bytes + 262144:  # a safety net; on_header counts exactly
                    self._too_large()

        def _too_large(self) -> None:
            self._refused = True
            self._disarm()
            if self.transport.is_closing():
                return
            message = f"request headers over the limit of {max_header_bytes} bytes".encode()
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
                                 b"connection: close\r\ncontent-length: " + str(len(message)).encode() +
                                 b"\r\n\r\n" + message)
            self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._header_total, self._head_bytes = True, 0, 0
            if self._timer is None:
                self._arm(header_timeout_s, "headers")

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_total = getattr(self, "_header_total", 0) + len(name) + len(value) + 4
            if self._header_total > max_header_bytes and not self._refused:
                self._too_large()
            if not self._refused:
                super().on_header(name, value)

        def on_headers_complete(self) -> None:
            if self._refused:
                return
            self._in_head, self._head_bytes = False, 0
            self._arm(body_timeout_s, "body")
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self._refused:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if self._refused:
                return
            self._disarm()
            super().on_message_complete()

    return GuardedHttpToolsProtocol
