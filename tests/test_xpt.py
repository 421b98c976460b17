"""SAS XPORT v5 reader: real CDISC pilot files checked against their CSV twins, the IBM float
decoder, edge cases on small files written here, and clear errors on broken input."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_adapter.sources.xpt import XptError, ibm_to_float, read_xpt, xpt_columns, xpt_dataset

SLICE = "fixtures/sdtm/cdiscpilot01-slice"


@pytest.fixture
def pilot(shared_dir: Path) -> Path:
    """The CDISC pilot slice under tests/fixtures (shared_dir comes from conftest.py)."""
    path = shared_dir / SLICE
    if not path.is_dir():
        pytest.skip(f"fixtures not present: {path}")
    return path


# -- a minimal XPORT writer, so edge cases can be built byte by byte ---------------------------

def float_to_ibm(value: float) -> bytes:
    """Encode a double as an IBM 370 double; exact, since IBM keeps at least 53 fraction bits."""
    if value == 0:
        return bytes(8)
    mantissa, exp2 = math.frexp(abs(value))  # abs(value) = mantissa * 2**exp2, 0.5 <= m < 1
    exp16 = -(-exp2 // 4)
    fraction = int(math.ldexp(mantissa, exp2 - 4 * exp16 + 56))
    return bytes([(0x80 if value < 0 else 0) | (exp16 + 64)]) + fraction.to_bytes(7, "big")


def header(kind: bytes, numbers: bytes = b"0" * 30) -> bytes:
    return b"HEADER RECORD*******" + kind.ljust(8) + b"HEADER RECORD!!!!!!!" + numbers + b"  "


def padded(data: bytes, fill: bytes = b" ") -> bytes:
    return data + fill * (-len(data) % 80)


def member(name: bytes, variables: list[tuple[bytes, int, int]], rows: list[list[object]],
           namestr_size: int = 140, label: bytes = b"") -> bytes:
    """variables: (name, ntype 1=num 2=char, length); row values: str, float, None or raw bytes."""
    out = header(b"MEMBER", b"0" * 17 + b"16" + b"0" * 7 + b"%04d" % namestr_size)
    out += header(b"DSCRPTR")
    out += b"SAS     " + name.ljust(8) + b"SASDATA 9.4     X64_10PR".ljust(48) + b"01JAN24:00:00:00"
    out += b"01JAN24:00:00:00" + b" " * 16 + label.ljust(40) + b" " * 8
    out += header(b"NAMESTR", b"000000" + b"%04d" % len(variables) + b"0" * 20)
    namestrs, position = b"", 0
    for number, (var, ntype, length) in enumerate(variables, start=1):
        fields = ntype.to_bytes(2, "big") + bytes(2) + length.to_bytes(2, "big")
        fields += number.to_bytes(2, "big") + var.ljust(8) + b"label".ljust(40) + bytes(28)
        fields += position.to_bytes(4, "big")
        namestrs += fields.ljust(namestr_size, b"\x00")
        position += length
    out += padded(namestrs, b"\x00") + header(b"OBS")
    data = b""
    for row in rows:
        for (_, ntype, length), value in zip(variables, row, strict=True):
            if isinstance(value, bytes):
                data += value
            elif ntype == 1:
                data += (b"." + bytes(7) if value is None else float_to_ibm(value))[:length]
            else:
                data += str(value).encode().ljust(length)
    return out + padded(data)


def write_xpt(path: Path, *members: bytes) -> Path:
    library = header(b"LIBRARY") + b"SAS     SAS     SASLIB  9.4     X64_10PR".ljust(64)
    library += b"01JAN24:00:00:00" + b"01JAN24:00:00:00".ljust(80)
    path.write_bytes(library + b"".join(members))
    return path


def rows(path: Path) -> list[dict[str, object]]:
    return [values for _, values in read_xpt(path)]


# -- the CDISC pilot files ----------------------------------------------------------------------

@pytest.mark.parametrize(("domain", "count"), [("dm", 12), ("ae", 51), ("ds", 28)])
def test_pilot_matches_csv(pilot: Path, domain: str, count: int) -> None:
    with open(pilot / f"{domain}.csv", newline="", encoding="utf-8") as handle:
        expected = list(csv.DictReader(handle))
    xpt = pilot / f"{domain}.xpt"
    read = list(read_xpt(xpt))
    assert len(read) == len(expected) == count
    assert [number for number, _ in read] == list(range(1, count + 1))
    assert xpt_columns(xpt) == list(expected[0])
    assert xpt_dataset(xpt) == (domain.upper(), "")
    for (number, actual), want in zip(read, expected, strict=True):
        assert list(actual) == list(want)
        for name, value in actual.items():
            if isinstance(value, float):
                assert value == float(want[name]), (number, name)
            elif value is None:
                assert want[name] == "", (number, name)
            else:
                assert value == want[name].rstrip(), (number, name)


def test_pilot_numbers_and_blanks(pilot: Path) -> None:
    first = next(read_xpt(pilot / "dm.xpt"))[1]
    assert (first["AGE"], first["DMDY"], first["DTHFL"]) == (63.0, -7.0, "")
    codes = {values["AELLTCD"] for _, values in read_xpt(pilot / "ae.xpt")}
    assert codes == {None}  # a numeric column that is missing throughout


def test_pilot_trial_summary(pilot: Path) -> None:
    path = pilot / "ts.xpt"
    assert {"TSPARMCD", "TSVAL"} <= set(xpt_columns(path))
    assert xpt_dataset(path) == ("TS", "")
    parameters = {values["TSPARMCD"]: values["TSVAL"] for values in rows(path)}
    assert parameters and all(parameters)
    assert "" not in parameters


@pytest.mark.parametrize("domain", ["ta", "te", "ti", "ts"])
def test_pilot_trial_design_rows_are_not_padding(pilot: Path, domain: str) -> None:
    read = rows(pilot / f"{domain}.xpt")
    assert read and all(values["DOMAIN"] == domain.upper() for values in read)


# -- IBM floats ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("4110000000000000", 1.0),
        ("C276A00000000000", -118.625),
        ("4264000000000000", 100.0),
        ("401999999999999A", 0.1),
        ("0000000000000000", 0.0),
    ],
)
def test_ibm_known_values(raw: str, value: float) -> None:
    decoded = ibm_to_float(bytes.fromhex(raw))
    assert decoded == pytest.approx(value, rel=1e-15, abs=0)
    assert ibm_to_float(float_to_ibm(value)) == value


@pytest.mark.parametrize("tag", [b".", b"_", b"A", b"Z"])
def test_ibm_missing_values(tag: bytes) -> None:
    assert ibm_to_float(tag + bytes(7)) is None
    assert ibm_to_float(tag + bytes(2)) is None  # a numeric stored in 3 bytes


def test_ibm_short_field_is_truncated_double() -> None:
    assert ibm_to_float(float_to_ibm(-118.625)[:3]) == -118.625


@given(st.one_of(st.just(0.0), st.floats(1e-77, 1e75), st.floats(-1e75, -1e-77)))
def test_ibm_round_trip(value: float) -> None:
    assert ibm_to_float(float_to_ibm(value)) == value


# -- layout edge cases --------------------------------------------------------------------------

CODE = [(b"CODE", 2, 10)]


def test_short_records_padding_is_not_a_row(tmp_path: Path) -> None:
    path = write_xpt(tmp_path / "short.xpt", member(b"XX", CODE, [["a"], [""], ["b"]]))
    assert rows(path) == [{"CODE": "a"}, {"CODE": ""}, {"CODE": "b"}]


def test_trailing_blank_row_longer_than_a_card_is_kept(tmp_path: Path) -> None:
    path = write_xpt(tmp_path / "wide.xpt", member(b"XX", [(b"TEXT", 2, 100)], [["a"], [""]]))
    assert rows(path) == [{"TEXT": "a"}, {"TEXT": ""}]


def test_only_first_member_is_read(tmp_path: Path) -> None:
    first = member(b"AE", CODE, [["x"], ["y"]], label=b"Adverse Events")
    second = member(b"CM", [(b"OTHER", 2, 3)], [["zzz"]])
    path = write_xpt(tmp_path / "two.xpt", first, second)
    assert rows(path) == [{"CODE": "x"}, {"CODE": "y"}]
    assert xpt_dataset(path) == ("AE", "Adverse Events")
    assert xpt_columns(path) == ["CODE"]


def test_vax_namestr_short_numerics_and_encodings(tmp_path: Path) -> None:
    variables = [(b"N", 1, 8), (b"SHORT", 1, 4), (b"C", 2, 6)]
    data = [[2.5, 7.0, "café"], [None, b"Z\x00\x00\x00", b"caf\xe9  "]]
    path = write_xpt(tmp_path / "vax.xpt", member(b"XX", variables, data, namestr_size=136))
    assert rows(path) == [
        {"N": 2.5, "SHORT": 7.0, "C": "café"},
        {"N": None, "SHORT": None, "C": "café"},  # Latin-1 when not UTF-8
    ]


def test_no_rows(tmp_path: Path) -> None:
    path = write_xpt(tmp_path / "empty.xpt", member(b"XX", CODE, []))
    assert rows(path) == []
    assert xpt_columns(path) == ["CODE"]


# -- errors -------------------------------------------------------------------------------------

def test_text_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "notes.xpt"
    path.write_text("STUDYID,DOMAIN\nCDISCPILOT01,DM\n")
    for reader in (rows, xpt_columns, xpt_dataset):
        with pytest.raises(XptError, match=r"notes\.xpt.*not a SAS XPORT file"):
            reader(path)


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.xpt"
    path.write_bytes(b"")
    with pytest.raises(XptError, match=r"empty\.xpt.*not a SAS XPORT file"):
        rows(path)


def test_version_8_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "v8.xpt"
    path.write_bytes(header(b"LIBV8") + bytes(160))
    with pytest.raises(XptError, match=r"v8\.xpt.*version 8"):
        rows(path)


@pytest.mark.parametrize(
    ("keep", "fault"),
    [(50, "truncated header"), (400, "truncated header"), (2000, "truncated header"),
     (5000, "truncated record"), (-100, "truncated record"), (-1, "truncated file")],
)
def test_truncated_file_is_rejected(pilot: Path, tmp_path: Path, keep: int, fault: str) -> None:
    path = tmp_path / "cut.xpt"
    path.write_bytes((pilot / "dm.xpt").read_bytes()[:keep])
    with pytest.raises(XptError, match=rf"cut\.xpt: {fault}"):
        rows(path)


@pytest.mark.parametrize(
    ("variables", "fault"),
    [([(b"N", 1, 12)], "variable 'N' has invalid length 12"),
     ([(b"N", 3, 8)], "variable 1 \\('N'\\) has unknown type 3"),
     ([(b"N", 1, 8), (b"N", 2, 4)], "variable 'N' is defined twice")],
)
def test_corrupt_namestr_is_rejected(tmp_path: Path, variables: list, fault: str) -> None:
    path = write_xpt(tmp_path / "bad.xpt", member(b"XX", variables, []))
    with pytest.raises(XptError, match=rf"bad\.xpt: {fault}"):
        xpt_columns(path)
