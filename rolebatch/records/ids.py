"""Record ids by their hashes, in flat arrays: a million ids in about 16-24 MB
where a dict of them takes ~120 MB.

A table keyed by 64-bit hashes cannot tell two ids with the same hash apart,
so it never decides identity on its own: whoever finds a hash in it confirms
the id exactly (from the file the id came from) before acting on it.  Hashes
come from Python's ``hash``, which is salted per process: they are never
stored, only used within one run.
"""

from __future__ import annotations

from array import array

EMPTY = 0
MISSING = None
_MAX_LOAD = 0.7


def id_hash(record_id: str | int) -> int:
    """A non-zero 64-bit key for ``record_id`` (``hash`` never returns -1)."""
    return hash(record_id) or -1


class HashIndex:
    """Open addressing with linear probing over ``array('q')`` keys, with an
    optional signed 32-bit value per key: 12 bytes a slot, a slot per 0.7 keys."""

    def __init__(self, values: bool = True, capacity: int = 1 << 12):
        self._values_too = values
        self._allocate(max(16, int(max(capacity, 1) / _MAX_LOAD) + 1))
        self.count = 0

    def _allocate(self, size: int) -> None:
        self._size = size
        self._keys = array("q", bytes(8 * size))
        self._values = array("i", bytes(4 * size)) if self._values_too else None

    def __len__(self) -> int:
        return self.count

    def _slot(self, key: int) -> int:
        keys, size = self._keys, self._size
        slot = key % size
        while True:
            found = keys[slot]
            if found in (key, EMPTY):
                return slot
            slot += 1
            if slot == size:
                slot = 0

    def __contains__(self, key: int) -> bool:
        return self._keys[self._slot(key)] == key

    def get(self, key: int) -> int | None:
        slot = self._slot(key)
        if self._keys[slot] != key:
            return MISSING
        return self._values[slot] if self._values is not None else 0

    def put(self, key: int, value: int = 0) -> int | None:
        """Set ``key`` to ``value``; return the value it had (None: it was new)."""
        slot = self._slot(key)
        if self._keys[slot] == key:
            if self._values is None:
                return 0
            previous = self._values[slot]
            self._values[slot] = value
            return previous
        self._insert(slot, key, value)
        return MISSING

    def add(self, key: int, value: int = 0) -> int | None:
        """Insert ``key`` unless present; return the value already there (None: added)."""
        slot = self._slot(key)
        if self._keys[slot] == key:
            return self._values[slot] if self._values is not None else 0
        self._insert(slot, key, value)
        return MISSING

    def _insert(self, slot: int, key: int, value: int) -> None:
        self._keys[slot] = key
        if self._values is not None:
            self._values[slot] = value
        self.count += 1
        if self.count > _MAX_LOAD * self._size:
            self._grow()

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        self._allocate(2 * self._size)
        keys, values, size = self._keys, self._values, self._size
        for index, key in enumerate(old_keys):
            if key == EMPTY:
                continue
            slot = key % size
            while keys[slot] != EMPTY:
                slot = slot + 1 if slot + 1 < size else 0
            keys[slot] = key
            if values is not None:
                values[slot] = old_values[index]  # type: ignore[index]
