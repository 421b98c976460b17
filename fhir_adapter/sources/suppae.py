"""SDTM SUPPAE (supplemental qualifiers of AE), read into memory keyed like the parent rows.

SDTMIG: each SUPPAE row names its parent by USUBJID, IDVAR (usually AESEQ) and IDVARVAL, and
carries one qualifier QNAM = QVAL. Supplemental files are small next to the parent domain.
"""

from __future__ import annotations

from pathlib import Path

from .tabular import read_rows


def read_suppae(path: Path, warnings: list[str]) -> dict[tuple[str, str, str], dict[str, str]]:
    """SUPPAE as {(USUBJID, IDVAR, IDVARVAL): {QNAM: QVAL}}; IDVARVAL numbers normalised."""
    found: dict[tuple[str, str, str], dict[str, str]] = {}
    other = 0
    for row in read_rows(path, upper_columns=True):
        if (row.get("RDOMAIN") or "AE").upper() != "AE":
            other += 1
            continue
        missing = [c for c in ("USUBJID", "IDVAR", "IDVARVAL", "QNAM") if not row.get(c)]
        if missing:
            raise row.error(missing[0], "required SUPPAE value is missing")
        key = (row.values["USUBJID"], row.values["IDVAR"].upper(),
               id_value(row.values["IDVARVAL"]))
        qnam = row.values["QNAM"].upper()
        if qnam in found.setdefault(key, {}):
            raise row.error("QNAM", f"{qnam} given twice for {key[0]} {key[1]}={key[2]}")
        if row.get("QVAL") is not None:
            found[key][qnam] = row.values["QVAL"]
    if other:
        warnings.append(f"{path}: {other} SUPPAE row(s) of another domain (RDOMAIN) ignored")
    return found


def id_value(text: str) -> str:
    """'1.0' and '1' are the same AESEQ (CSV writes SAS numbers with '.0')."""
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text
