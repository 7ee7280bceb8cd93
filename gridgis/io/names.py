"""Street and community names checked against the national division table on import.

A streets or communities layer whose code the table (:mod:`gridgis.divisions`) knows:

* a missing name is filled with the table's name (with a note);
* a name that is not the table's name for that code (:func:`gridgis.divisions.names_agree`,
  which tolerates suffixes such as 社区居委会 and bracketed parts) is a reject naming both.

Codes the table does not hold (new or local divisions) pass unchecked, counted in a note.
Without the table installed nothing is checked, and a note says so.
"""

from __future__ import annotations

import pandas as pd

from gridgis import divisions
from gridgis import layers as L

#: Layers whose code field the division table knows, and that field.
CODE_FIELDS = {"streets": "street_code", "communities": "community_code"}


def _codes(col: pd.Series) -> pd.Series:
    return col.astype("string").str.strip().str.replace(r"\.0$", "", regex=True)


def fill_division_names(
    frame: pd.DataFrame, layer: str, where: str, notes: list[str]
) -> pd.DataFrame:
    """Fill blank names of streets/communities from the table (before validation)."""
    code_field = CODE_FIELDS.get(layer)
    if code_field is None or code_field not in frame.columns:
        return frame
    if not divisions.available():
        notes.append(
            f"{where}: the national division table is not installed; {layer} names are "
            f"neither filled nor checked"
        )
        return frame
    names = frame["name"] if "name" in frame.columns else pd.Series(pd.NA, index=frame.index)
    blank = names.isna() | (names.astype("string").str.strip() == "")
    if not blank.any():
        return frame
    codes = _codes(frame[code_field])
    found = codes[blank].map(lambda c: divisions.name_of(c) if isinstance(c, str) else None)
    filled = found.notna()
    if filled.any():
        frame = frame.copy()
        frame.loc[found.index[filled], "name"] = found[filled].to_numpy()
        notes.append(
            f"{where}: {int(filled.sum())} {layer} without a name named from the national "
            f"division table (统计用区划代码 2023), e.g. {codes[found.index[filled][0]]} "
            f"{found[filled].iloc[0]}"
        )
    return frame


def check_division_names(v: L.Validated, layer: str, where: str) -> L.Validated:
    """Move rows whose name is not the table's name for their code to the rejects."""
    code_field = CODE_FIELDS.get(layer)
    if code_field is None or not len(v.data) or not divisions.available():
        return v
    data = v.data
    rows = data[L.SOURCE_ROW] if L.SOURCE_ROW in data else pd.Series(range(1, len(data) + 1))
    bad, unknown = [], 0
    for i, (code, name) in enumerate(zip(data[code_field], data["name"], strict=True)):
        official = divisions.name_of(code) if isinstance(code, str) else None
        if official is None:
            unknown += 1
        elif isinstance(name, str) and not divisions.names_agree(name, official):
            bad.append((i, code, name, official))
    if unknown:
        v.notes.append(
            f"{where}: {unknown} {layer} codes are not in the national division table "
            f"(2023); their names are not checked"
        )
    if not bad:
        return v
    rejects = pd.DataFrame(
        {
            "source": where,
            "layer": layer,
            "row": [int(rows.iloc[i]) for i, *_ in bad],
            "field": "name",
            "value": [name for _, _, name, _ in bad],
            "reason": [
                f"name '{name}' is not the national table's name for {code_field} {code} "
                f"('{official}')"
                for _, code, name, official in bad
            ],
        }
    )
    keep = pd.Series(True, index=data.index)
    keep.iloc[[i for i, *_ in bad]] = False
    v.data = data.loc[keep.to_numpy()].reset_index(drop=True)
    both = [r for r in (v.rejects, rejects) if len(r)]
    v.rejects = pd.concat(both, ignore_index=True)[L.REJECT_COLUMNS]
    return v
