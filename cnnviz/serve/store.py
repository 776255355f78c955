"""A bounded, thread-safe store of sessions kept for a reload: token -> the session's state object.

The app keeps each browser session's state here under a random cookie token so that a reload (or a tab
reopened within the time limit) finds its model, history and settings again. The store is deliberately
small and forgetful: an entry not touched for ``ttl_s`` seconds is dropped, and there are never more than
``max_entries`` nor more than ``max_bytes`` by the caller's ``weigh(obj)`` estimate (the least recently used
go first; the newest entry always stays). Dropping an entry only stops a *later reload* from
finding it; an open tab keeps its own reference. Nothing is written to disk: a server restart forgets all.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class SessionStore:
    """``put(token, obj)``, ``get(token)``, ``touch(token)``; entries expire after ``ttl_s`` idle seconds."""

    def __init__(self, ttl_s: float = 2700.0, max_entries: int = 60, max_bytes: float = float("inf"),
                 weigh: Callable[[object], int] | None = None, clock: Callable[[], float] = time.monotonic):
        if ttl_s <= 0 or max_entries < 1:
            raise ValueError("ttl_s must be > 0 and max_entries >= 1")
        self.ttl_s = float(ttl_s)
        self.max_entries = int(max_entries)
        self.max_bytes = float(max_bytes)
        self._weigh = weigh or (lambda obj: 0)
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, object]] = OrderedDict()  # least recently used first
        self._bytes: dict[str, int] = {}

    def _drop(self, key: str) -> None:
        del self._items[key]
        self._bytes.pop(key, None)

    def _expire(self, now: float) -> None:
        while self._items:
            key, (seen, _) = next(iter(self._items.items()))
            if now - seen <= self.ttl_s:
                break
            self._drop(key)

    def put(self, token: str, obj: object) -> None:
        """Keep ``obj`` under ``token`` (or refresh it); then drop the expired and, while over a bound, the
        least recently used others."""
        size = int(self._weigh(obj))
        with self._lock:
            now = self._clock()
            self._items[token] = (now, obj)
            self._bytes[token] = size
            self._items.move_to_end(token)
            self._expire(now)
            while len(self._items) > 1 and (len(self._items) > self.max_entries
                                            or sum(self._bytes.values()) > self.max_bytes):
                self._drop(next(iter(self._items)))

    def total_bytes(self) -> int:
        with self._lock:
            return sum(self._bytes.values())

    def get(self, token: str) -> object | None:
        """The object kept under ``token`` (and marks it used), or None if unknown or expired."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            item = self._items.get(token)
            if item is None:
                return None
            self._items[token] = (now, item[1])
            self._items.move_to_end(token)
            return item[1]

    def touch(self, token: str) -> None:
        with self._lock:
            item = self._items.get(token)
            if item is not None:
                self._items[token] = (self._clock(), item[1])
                self._items.move_to_end(token)

    def forget(self, token: str) -> None:
        with self._lock:
            if token in self._items:
                self._drop(token)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, token: object) -> bool:
        with self._lock:
            return token in self._items
