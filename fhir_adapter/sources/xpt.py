"""Streaming reader for SAS XPORT version 5 transport files (.xpt, the FDA/CDISC format).

Layout (SAS TS-140): 80-byte header cards -- library header, two library cards, member header,
descriptor header, two member cards, NAMESTR header -- then one 140-byte (136 on VAX/VMS)
NAMESTR record per variable padded to 80 bytes, the OBS header, and fixed-length observations
padded with blanks to a multiple of 80 bytes. A further member may follow; only the first is
read. Numbers are IBM System/370 floating point, big-endian.

Rows are read in chunks, so memory stays flat however large the file.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["XptError", "ibm_to_float", "read_xpt", "xpt_columns", "xpt_dataset"]

Value = str | float | None

CARD = 80
_CHUNK = 1 << 16
_PREFIX = b"HEADER RECORD*******"
_SUFFIX = b"HEADER RECORD!!!!!!!"
_LIBRARY = _PREFIX + b"LIBRARY " + _SUFFIX + b"0" * 30
_LIBRARY_V8 = _PREFIX + b"LIBV8   " + _SUFFIX
_MEMBER = _PREFIX + b"MEMBER  " + _SUFFIX
_DSCRPTR = _PREFIX + b"DSCRPTR " + _SUFFIX
_NAMESTR = _PREFIX + b"NAMESTR " + _SUFFIX
_OBS = _PREFIX + b"OBS     " + _SUFFIX
# ntype, nhfun, nlng, nvar0, nname, nlabel, nform, nfl, nfd, nfj, nfill, niform, nifl, nifd,
# npos; the remaining 52 (or 48) bytes are unused in version 5.
_NAMESTR_FIELDS = struct.Struct(">hhhh8s40s8shhh2s8shhi")
# SAS missing values: '.', '._' and '.A'-'.Z' are stored as that byte followed by zeros.
_MISSING_TAGS = frozenset(b"._ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class XptError(ValueError):
    """The file is not a readable SAS XPORT v5 file; the message names the file and the fault."""


@dataclass(frozen=True)
class _Variable:
    name: str
    label: str
    numeric: bool
    length: int
    offset: int


@dataclass(frozen=True)
class _Member:
    name: str
    label: str
    variables: tuple[_Variable, ...]
    obs_length: int


def ibm_to_float(data: bytes) -> float | None:
    """Decode an IBM 370 float of 2-8 bytes (short ones are truncated doubles); missing -> None."""
    raw = bytes(data).ljust(8, b"\x00")
    if raw[0] in _MISSING_TAGS and not any(raw[1:]):
        return None
    (bits,) = struct.unpack(">Q", raw)
    fraction = bits & 0x00FF_FFFF_FFFF_FFFF
    if fraction == 0:
        return -0.0 if bits >> 63 else 0.0
    exponent = (bits >> 56) & 0x7F
    # value = 0.fraction (56 bits) * 16 ** (exponent - 64); every IBM value fits a normal double,
    # so the only rounding is the int -> float conversion of the 56-bit fraction.
    value = math.ldexp(float(fraction), 4 * (exponent - 64) - 56)
    return -value if bits >> 63 else value


def xpt_dataset(path: str | Path) -> tuple[str, str]:
    """Return (member name, dataset label) of the first member, e.g. ("AE", "Adverse Events")."""
    with open(path, "rb") as stream:
        member = _read_member_header(stream, str(path))
    return member.name, member.label


def xpt_columns(path: str | Path) -> list[str]:
    """Return the first member's variable names in file order, without reading any rows."""
    with open(path, "rb") as stream:
        member = _read_member_header(stream, str(path))
    return [variable.name for variable in member.variables]


def read_xpt(path: str | Path) -> Iterator[tuple[int, dict[str, Value]]]:
    """Stream the first member's rows as (row number from 1, {variable: value}).

    Character values are decoded as UTF-8 (Latin-1 when that fails) and right-stripped, so a
    blank value is "". Numbers become floats; SAS missing values (., ._, .A-.Z) become None.
    """
    name = str(path)
    with open(path, "rb") as stream:
        member = _read_member_header(stream, name)
        if member.obs_length == 0:
            return
        for number, record in enumerate(_records(stream, member.obs_length, name), start=1):
            yield number, _decode_row(record, member.variables)


def _decode_row(record: bytes, variables: tuple[_Variable, ...]) -> dict[str, Value]:
    row: dict[str, Value] = {}
    for variable in variables:
        field = record[variable.offset : variable.offset + variable.length]
        if variable.numeric:
            row[variable.name] = ibm_to_float(field)
        else:
            row[variable.name] = _text(field)
    return row


def _text(field: bytes) -> str:
    # SAS pads with blanks; some third-party writers pad with NULs instead.
    field = field.rstrip(b" \x00")
    try:
        return field.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # SAS on Windows writes cp1252 (the CDISC pilot's TITLE has 0x92, a right quote);
    # latin-1 only for the five bytes cp1252 leaves undefined.
    try:
        return field.decode("cp1252")
    except UnicodeDecodeError:
        return field.decode("latin-1")


def _card(stream: BinaryIO, name: str, what: str) -> bytes:
    card = stream.read(CARD)
    if len(card) < CARD:
        raise XptError(f"{name}: truncated header: file ends before the {what}")
    return card


def _expect(card: bytes, header: bytes, name: str, what: str) -> None:
    if not card.startswith(header):
        raise XptError(f"{name}: malformed header: expected the {what}, found {card[:48]!r}")


def _number(card: bytes, start: int, end: int, name: str, what: str) -> int:
    digits = card[start:end]
    if not digits.isdigit():
        raise XptError(f"{name}: malformed {what}: {digits!r} is not a number")
    return int(digits)


def _read_member_header(stream: BinaryIO, name: str) -> _Member:
    """Read from the library header through the OBS header; leaves the stream at the first row."""
    first = stream.read(CARD)
    if first.startswith(_LIBRARY_V8):
        raise XptError(f"{name}: SAS XPORT version 8/9 is not supported (only version 5)")
    if first and len(first) < CARD and (_LIBRARY.startswith(first) or first.startswith(_LIBRARY)):
        raise XptError(f"{name}: truncated header: library header record is incomplete")
    if not first.startswith(_LIBRARY):
        if first.startswith(b"**COMPRESSED**"):
            raise XptError(f"{name}: SAS CPORT file, not an XPORT transport file")
        found = "file is empty" if not first else "no library header record"
        raise XptError(f"{name}: not a SAS XPORT file ({found})")
    _card(stream, name, "library real header")
    _card(stream, name, "library modified header")
    member = _card(stream, name, "member header")
    _expect(member, _MEMBER, name, "member header")
    namestr_size = _number(member, 74, 78, name, "member header (NAMESTR size)")
    if namestr_size not in (136, 140):
        raise XptError(f"{name}: unsupported NAMESTR record size {namestr_size} (136 or 140)")
    _expect(_card(stream, name, "descriptor header"), _DSCRPTR, name, "descriptor header")
    descriptor = _card(stream, name, "member descriptor")
    if not descriptor.startswith(b"SAS     "):
        raise XptError(f"{name}: malformed member descriptor {descriptor[:24]!r}")
    labels = _card(stream, name, "member label record")
    header = _card(stream, name, "NAMESTR header")
    _expect(header, _NAMESTR, name, "NAMESTR header")
    count = _number(header, 54, 58, name, "NAMESTR header (variable count)")
    block = count * namestr_size
    block += -block % CARD
    data = stream.read(block)
    if len(data) < block:
        raise XptError(
            f"{name}: truncated header: {count} NAMESTR records need {block} bytes, "
            f"file has {len(data)}"
        )
    variables = _variables(data, count, namestr_size, name)
    _expect(_card(stream, name, "OBS header"), _OBS, name, "OBS header")
    return _Member(
        name=_text(descriptor[8:16]),
        label=_text(labels[32:72]),
        variables=variables,
        obs_length=sum(variable.length for variable in variables),
    )


def _variables(data: bytes, count: int, size: int, name: str) -> tuple[_Variable, ...]:
    variables: list[_Variable] = []
    offset = 0
    for index in range(count):
        fields = _NAMESTR_FIELDS.unpack_from(data, index * size)
        ntype, length, var_name, label = fields[0], fields[2], _text(fields[4]), fields[5]
        if ntype not in (1, 2):
            raise XptError(f"{name}: variable {index + 1} ({var_name!r}) has unknown type {ntype}")
        if length <= 0 or (ntype == 1 and not 2 <= length <= 8):
            raise XptError(f"{name}: variable {var_name!r} has invalid length {length}")
        if any(variable.name == var_name for variable in variables):
            raise XptError(f"{name}: variable {var_name!r} is defined twice")
        # Offsets are cumulative rather than taken from npos: some writers leave npos at zero.
        variables.append(_Variable(var_name, _text(label), ntype == 1, length, offset))
        offset += length
    return tuple(variables)


def _records(stream: BinaryIO, length: int, name: str) -> Iterator[bytes]:
    """Yield fixed-length observation records, stopping at EOF or the next member header.

    The data ends with blank padding of fewer than 80 bytes. When records are short, whole blank
    "records" fit in that padding; trailing blank records are held back and only the ones that
    cannot be padding are yielded.
    """
    buffer, start = b"", 0  # unread bytes are buffer[start:]
    position = 0  # offset of buffer[start] from the first observation
    blank = 0  # trailing all-blank records not yet yielded
    eof = False
    while True:
        if not eof and len(buffer) - start < length + 2 * CARD:
            chunk = stream.read(max(_CHUNK, length + 2 * CARD))
            eof = not chunk
            buffer, start = buffer[start:] + chunk, 0
            continue
        # A following member starts at the next card boundary, after blank padding. (A record
        # that itself begins with a member header at a card boundary is indistinguishable.)
        gap = -position % CARD
        boundary = start + gap
        if buffer.startswith(_MEMBER, boundary) and not buffer[start:boundary].strip(b" "):
            tail = gap
            break
        remaining = len(buffer) - start
        if remaining < length:  # only reachable at EOF
            if buffer[start:].strip(b" "):
                raise XptError(
                    f"{name}: truncated record: observation {position // length + 1} "
                    f"has {remaining} of {length} bytes"
                )
            if (position + remaining) % CARD:
                raise XptError(
                    f"{name}: truncated file: data section is {position + remaining} bytes, "
                    f"not a multiple of {CARD}"
                )
            tail = remaining
            break
        record = buffer[start : start + length]
        start += length
        position += length
        if record.strip(b" "):
            yield from (b" " * length for _ in range(blank))
            blank = 0
            yield record
        else:
            blank += 1
    padding = blank * length + tail
    # Padding is shorter than one card, so blank records beyond that are real observations.
    real = max(0, -(-(padding - CARD + 1) // length))
    yield from (b" " * length for _ in range(real))
