"""Connection guards for the kiosk's HTTP server: a client gets ``header_timeout_s`` to send its request
headers (a socket that connects and says nothing, or trickles a byte at a time, is closed), and one address may
hold at most ``per_client`` connections. Idle half-open sockets therefore cannot use up the server's
connection limit, and ``/healthz`` keeps answering while someone tries."""

from __future__ import annotations

import asyncio
from typing import Any


def guarded_h11(header_timeout_s: float, per_client: int) -> type:
    """uvicorn's h11 protocol with the two guards (a class for ``uvicorn.Config(http=...)``, one per server)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    counts: dict[str, int] = {}

    class GuardedH11(H11Protocol):
        _guard_ip: str | None = None
        _guard_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            ip = self.client[0] if self.client else "?"
            self._guard_ip = ip
            counts[ip] = counts.get(ip, 0) + 1
            if counts[ip] > per_client:  # this address holds too many: refuse the new one at once
                transport.close()
                return
            self._guard_timer = self.loop.call_later(header_timeout_s, self._headers_too_slow)

        def _headers_too_slow(self) -> None:
            if self.cycle is None and not self.transport.is_closing():  # no complete request header yet
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and self._guard_timer is not None:  # the request began: guard done
                self._guard_timer.cancel()
                self._guard_timer = None

        def _release(self) -> None:
            if self._guard_timer is not None:
                self._guard_timer.cancel()
                self._guard_timer = None
            if self._guard_ip is not None:
                counts[self._guard_ip] -= 1
                if counts[self._guard_ip] <= 0:
                    del counts[self._guard_ip]
                self._guard_ip = None

        def handle_websocket_upgrade(self, event: Any) -> None:
            self._release()  # a WebSocket is the app's to limit (max_streams, idle timeout), not this guard's
            super().handle_websocket_upgrade(event)

        def connection_lost(self, exc: Exception | None) -> None:
            self._release()
            super().connection_lost(exc)

    return GuardedH11
