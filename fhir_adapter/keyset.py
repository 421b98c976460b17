"""A compact set of string keys, each with a small int (e.g. the row that first gave it), for
the checks a streamed file needs (a key given twice, subjects seen) without per-row Python
objects: a key costs 16-32 bytes (a 96-bit BLAKE2b digest and a 32-bit int in an
open-addressing table at most half full) instead of ~150 in a dict, so a million-row load
stays flat.

Two different keys share a digest with probability ~n^2 / 2^97 (6e-18 at a million keys).
"""

from __future__ import annotations

from array import array
from hashlib import blake2b

_WIDTH = 12  # bytes of digest per slot; an all-zero slot is empty
_EMPTY = bytes(_WIDTH)


class KeySet:
    """Insert-only set of str keys with an int value each (0 to 2^32-1; 0 when not given)."""

    def __init__(self, capacity: int = 1024) -> None:
        size = 1
        while size < capacity:
            size *= 2
        self._slots = bytearray(size * _WIDTH)
        self._values = array("I", bytes(4 * size))
        self._mask = size - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._find(_digest(key))[1]

    def get(self, key: str) -> int | None:
        """The value stored with `key`, or None when it was never added."""
        slot, found = self._find(_digest(key))
        return self._values[slot] if found else None

    def add(self, key: str, value: int = 0) -> bool:
        """Add `key` (keeping the first value when present); True when it was new."""
        digest = _digest(key)
        slot, found = self._find(digest)
        if found:
            return False
        self._put(slot, digest, value)
        if 2 * self._count > self._mask + 1:
            self._grow()
        return True

    def _find(self, digest: bytes) -> tuple[int, bool]:
        slots, mask = self._slots, self._mask
        slot = int.from_bytes(digest[:8], "little") & mask
        while True:
            start = slot * _WIDTH
            stored = slots[start:start + _WIDTH]
            if stored == digest:
                return slot, True
            if stored == _EMPTY:
                return slot, False
            slot = (slot + 1) & mask

    def _put(self, slot: int, digest: bytes, value: int) -> None:
        self._slots[slot * _WIDTH:(slot + 1) * _WIDTH] = digest
        self._values[slot] = value
        self._count += 1

    def _grow(self) -> None:
        old_slots, old_values = self._slots, self._values
        size = 2 * (self._mask + 1)
        self._slots = bytearray(size * _WIDTH)
        self._values = array("I", bytes(4 * size))
        self._mask, self._count = size - 1, 0
        for n in range(len(old_values)):
            digest = bytes(old_slots[n * _WIDTH:(n + 1) * _WIDTH])
            if digest != _EMPTY:
                self._put(self._find(digest)[0], digest, old_values[n])


def _digest(key: str) -> bytes:
    digest = blake2b(key.encode(), digest_size=_WIDTH).digest()
    return digest if digest != _EMPTY else b"\x01" + digest[1:]  # keep zero = empty
