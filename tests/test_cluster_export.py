"""The ledger formats exported on a real Dask LocalCluster (2 worker processes) are the
single-process files: CSV and GeoJSON byte for byte; every sheet of the workbook cell by
cell (value, type, number format, bold; its column widths, filter and frozen row); every
Shapefile and GeoPackage layer read back column by column with the same geometries (WKB)
— the Shapefile's sidecars (.cpg, .prj, aliases) byte for byte, the GeoPackage's QGIS
style table without its ``update_time`` (a write timestamp, the one thing stripped). A
block that fails once is retried and the files are still the same.

The city is the session's 10,000-household demo city after delineation (3 streets, 5
communities: 2 blocks of whole streets, one per worker), with a coverage layer and
coverage gaps made up here (rates for three categories, one of them only in the first
community, some rates missing; the gaps stored in a metric CRS), so that blocks miss
categories the whole city has and the extra layer is reprojected row range by row range.
The cluster and the fault wrapper are those of ``tests/test_cluster_more.py``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from test_cluster_more import RULES, _fail_once, client  # noqa: E402,F401  (fixture)

from gridgis import partitioned as P  # noqa: E402
from gridgis.export import export_workspace  # noqa: E402
from gridgis.store import open_store  # noqa: E402


@pytest.fixture(scope="module")
def workspace(demo_delineated_gpkg) -> dict:
    """The delineated demo city with a made-up coverage layer and coverage gaps."""
    with open_store(demo_delineated_gpkg) as store:
        layers = {name: store.read(name) for name in store.layers()}
    grids, comms, streets = layers["grids"], layers["communities"], layers["streets"]
    first = str(comms["community_code"].min())
    rows = []
    for level, codes in (
        ("grid", grids["grid_code"]),
        ("community", comms["community_code"]),
        ("street", streets["street_code"]),
    ):
        for i, code in enumerate(sorted(map(str, codes))):
            rows.append((level, code, "kindergarten", (i * 37 % 100) / 100))
            rows.append((level, code, "park", np.nan if i % 4 == 0 else (i * 13 % 100) / 100))
            if code.startswith(first) and level != "street":
                rows.append((level, code, "zz_custom", 0.5 + (i % 7) / 20))
    layers["coverage"] = pd.DataFrame(rows, columns=["level", "code", "category", "rate"])
    b = layers["buildings"].iloc[::3]
    gaps = gpd.GeoDataFrame(
        {
            "community_code": b["community_code"].astype(str).to_numpy(),
            "category": np.where(np.arange(len(b)) % 2, "park", "kindergarten"),
            "households": b["households"].to_numpy(),
            "buildings": 1,
        },
        geometry=b.geometry.to_numpy(),
        crs=b.crs,
    )
    layers["coverage_gaps"] = gaps.to_crs("EPSG:4549")
    return layers


def _xlsx(path: Path) -> dict:
    from openpyxl import load_workbook

    wb = load_workbook(path)
    return {
        ws.title: (
            [
                [(c.value, c.data_type, c.number_format, c.font.b) for c in r]
                for r in ws.iter_rows()
            ],
            {k: d.width for k, d in ws.column_dimensions.items()},
            ws.auto_filter.ref,
            ws.freeze_panes,
        )
        for ws in wb
    }


def _layers(path: str) -> dict[str, pd.DataFrame]:
    """Every layer read back: attribute columns, and geometry as WKB."""
    import pyogrio

    out = {}
    for name, _ in pyogrio.list_layers(path):
        frame = pyogrio.read_dataframe(path, layer=name)
        if name == "layer_styles":  # the QGIS styles table stamps its write time
            frame = frame.drop(columns="update_time")
        if isinstance(frame, gpd.GeoDataFrame):
            frame = pd.DataFrame(frame).assign(geometry=frame.geometry.to_wkb())
        out[name] = frame
    return out


def _same_files(got: list[Path], ref: list[Path], fmt: str) -> None:
    assert [p.name for p in got] == [p.name for p in ref] and ref
    for a, b in zip(got, ref, strict=True):
        if fmt in ("csv", "geojson"):
            assert a.read_bytes() == b.read_bytes(), a.name
        elif fmt == "xlsx":
            assert _xlsx(a) == _xlsx(b)
        elif fmt == "gpkg":
            la, lb = _layers(str(a)), _layers(str(b))
            assert list(la) == list(lb)
            for name in la:
                pd.testing.assert_frame_equal(la[name], lb[name], check_exact=True)
        else:  # shp: the layer read back, and the sidecars byte for byte
            za, zb = zipfile.ZipFile(a), zipfile.ZipFile(b)
            assert za.namelist() == zb.namelist()
            for member in za.namelist():
                if member.endswith((".cpg", ".csv", ".prj")):
                    assert za.read(member) == zb.read(member), member
            shp = a.stem + ".shp"
            pd.testing.assert_frame_equal(
                _layers(f"/vsizip/{a}/{shp}")[a.stem],
                _layers(f"/vsizip/{b}/{shp}")[b.stem],
                check_exact=True,
            )


CASES = [
    ("csv", {}),
    ("csv", {"chinese_headers": False, "with_personal": True}),
    ("geojson", {}),
    ("xlsx", {"with_personal": True, "city": "示范区"}),
    ("shp", {"shp_encoding": "gbk"}),
    ("gpkg", {}),
]


@pytest.mark.parametrize(("fmt", "kw"), CASES, ids=[f"{f}-{len(k)}" for f, k in CASES])
def test_partitioned_export_equals_single(client, workspace, tmp_path, fmt, kw):  # noqa: F811
    ref = export_workspace(workspace, fmt, tmp_path / "single", **kw)
    got = P.export_partitioned(client, workspace, fmt, tmp_path / "cluster", rules=RULES, **kw)
    run = got.cluster["runs"][0]
    assert run["analysis"] == "export" and run["partitions"] >= 2 and not run["retried"]
    assert got.notes == ref.notes
    _same_files(got.files, ref.files, fmt)


def test_the_made_up_layers_reach_the_files(workspace, tmp_path):
    """The fixture does what it says: coverage columns (the first community's category
    too) and the gaps layer are in the export, gaps back in lon/lat."""
    ref = export_workspace(workspace, "geojson", tmp_path)
    names = [p.name for p in ref.files]
    assert names == ["grids.geojson", "communities.geojson", "streets.geojson"] + [
        "coverage_gaps.geojson"
    ]
    grids = gpd.read_file(tmp_path / "grids.geojson")
    assert {"coverage_kindergarten", "coverage_park", "coverage_zz_custom"} <= set(grids)
    assert grids["coverage_zz_custom"].notna().sum() and grids["coverage_zz_custom"].isna().sum()
    gaps = gpd.read_file(tmp_path / "coverage_gaps.geojson")
    assert len(gaps) == len(workspace["coverage_gaps"])
    assert gaps.total_bounds[0] > 100  # longitude, not metres


def test_a_block_failing_once_is_retried_same_file(client, workspace, tmp_path, monkeypatch):  # noqa: F811
    import gridgis.export.blocks as B

    ref = export_workspace(workspace, "xlsx", tmp_path / "single")
    monkeypatch.setattr(B, "export_block", _fail_once(B.export_block, str(tmp_path / "m")))
    got = P.export_partitioned(client, workspace, "xlsx", tmp_path / "cluster", rules=RULES)
    run = got.cluster["runs"][0]
    assert len(run["retried"]) == 1 and run["partitions"] >= 2
    assert (tmp_path / "m").exists()
    _same_files(got.files, ref.files, "xlsx")


def test_codes_not_nested_one_block_same_file(client, workspace, tmp_path):  # noqa: F811
    """A street whose grids' codes sort among another street's: its rows would not come
    out consecutive, so the ledger is made in one block — and is still the same."""
    from gridgis.export.blocks import street_blocks
    from gridgis.export.ledger import ledger_parts

    layers = dict(workspace)
    g = layers["grids"].copy()
    last = g["grid_code"].astype(str).str[:9] == g["grid_code"].astype(str).str[:9].max()
    g.loc[last, "grid_code"] = "000000000" + g.loc[last, "grid_code"].astype(str).str[9:]
    layers["grids"] = g
    assert len(street_blocks(ledger_parts(workspace), 8)[0]) == 3
    blocks, nested = street_blocks(ledger_parts(layers), 8)
    assert len(blocks) == 1 and not nested
    ref = export_workspace(layers, "csv", tmp_path / "single")
    got = P.export_partitioned(client, layers, "csv", tmp_path / "cluster", rules=RULES)
    assert got.cluster["runs"][0]["partitions"] == 1
    _same_files(got.files, ref.files, "csv")


def test_export_on_and_the_cli_use_the_cluster(client, demo_delineated_gpkg, tmp_path):  # noqa: F811
    """``export_on`` with a Client, and ``gridgis export --cluster tcp://…`` (the running
    cluster's scheduler), write the single-process files."""
    from typer.testing import CliRunner

    from gridgis.cli import app

    with open_store(demo_delineated_gpkg) as store:
        layers = {name: store.read(name) for name in store.layers()}
    ref = export_workspace(layers, "geojson", tmp_path / "single")
    got = P.export_on(client, layers, "geojson", tmp_path / "on")
    assert got.cluster["runs"][0]["partitions"] >= 2
    _same_files(got.files, ref.files, "geojson")
    address = client.scheduler.address
    for where, extra in (("cli-single", []), ("cli-cluster", ["--cluster", address])):
        args = ["export", "-w", str(demo_delineated_gpkg), "-f", "csv", "-o", str(tmp_path / where)]
        res = CliRunner().invoke(app, [*args, *extra])
        assert res.exit_code == 0, res.output
    single = sorted((tmp_path / "cli-single").glob("*.csv"))
    _same_files(sorted((tmp_path / "cli-cluster").glob("*.csv")), single, "csv")


@pytest.mark.parametrize("fmt", ["xlsx", "gpkg"])
def test_without_grids_or_streets_same_files(client, workspace, tmp_path, fmt):  # noqa: F811
    """Communities only: households counted from the buildings (by the one
    point-in-polygon rule where a building has no community code), streets the union of
    their communities, the notes in the workbook's 说明 sheet — the same files."""
    layers = {k: v for k, v in workspace.items() if k not in ("grids", "streets")}
    b = layers["buildings"].copy()
    b.loc[b.index[::2], "community_code"] = None
    layers["buildings"] = b
    from gridgis.export import ledger

    hh = ledger(layers).tables["communities"]["households"]
    assert hh.sum() == int(workspace["buildings"]["households"].sum()) and (hh > 0).all()
    ref = export_workspace(layers, fmt, tmp_path / "single")
    got = P.export_partitioned(client, layers, fmt, tmp_path / "cluster", rules=RULES)
    assert got.cluster["runs"][0]["partitions"] >= 2
    assert len(ref.notes) == 2 and got.notes == ref.notes
    _same_files(got.files, ref.files, fmt)


def test_blocks_cut_nearest_their_share():
    """Two streets of 40 and 60 rows make two blocks (a cut may come before its share)."""
    from gridgis.partitioned.runner import nearest_cuts

    assert nearest_cuts(np.array([40.0, 60.0]), 2) == [(0, 1), (1, 2)]
    assert nearest_cuts(np.array([1.0, 1.0, 1.0, 97.0]), 2) == [(0, 3), (3, 4)]
    assert nearest_cuts(np.array([5.0]), 4) == [(0, 1)]


def test_communities_without_street_code_stay_with_their_grids(client, workspace, tmp_path):  # noqa: F811
    """Communities of two streets without a street code (as a delineated or API-written
    layer may have): each goes with its grids into the block of its code's street, on
    three blocks as on two, and the files are the single process's."""
    from gridgis.export.blocks import street_blocks
    from gridgis.export.ledger import ledger_parts

    layers = dict(workspace)
    c = layers["communities"].copy()
    streets = sorted(c["street_code"].astype(str).unique())
    c.loc[c["street_code"].astype(str).isin(streets[:2]), "street_code"] = None
    layers["communities"] = c
    parts = ledger_parts(layers)
    blocks, nested = street_blocks(parts, 3)
    assert nested and len(blocks) == 3
    whole = ledger_parts(layers)
    for streets_of_block in blocks:
        piece = parts.block(streets_of_block)
        codes = set(piece.communities["community_code"].astype(str))
        grid_comms = set(piece.grids["community_code"].astype(str))
        assert grid_comms <= codes, (streets_of_block, grid_comms - codes)
    assert sum(len(parts.block(b).grids) for b in blocks) == len(whole.grids)
    for fmt in ("csv", "xlsx"):
        ref = export_workspace(layers, fmt, tmp_path / f"single-{fmt}")
        got = P.export_partitioned(client, layers, fmt, tmp_path / f"cluster-{fmt}", rules=RULES)
        assert got.cluster["runs"][0]["partitions"] == 2
        _same_files(got.files, ref.files, fmt)


def _fail_always(real):
    def part(*args):
        raise RuntimeError("every attempt fails")

    return part


@pytest.mark.parametrize("fmt", ["xlsx", "gpkg", "csv"])
def test_a_block_failing_every_time_leaves_the_files_as_they_were(
    client,  # noqa: F811
    workspace,
    tmp_path,
    monkeypatch,
    fmt,
):
    import gridgis.export.blocks as B
    from gridgis.partitioned.runner import PartitionError

    out = tmp_path / "out"
    before = export_workspace(workspace, fmt, out)
    digest = {p: p.read_bytes() for p in sorted(out.rglob("*"))}
    monkeypatch.setattr(B, "export_block", _fail_always(B.export_block))
    with pytest.raises(PartitionError):
        P.export_partitioned(client, workspace, fmt, out, rules=RULES)
    assert {p: p.read_bytes() for p in sorted(out.rglob("*"))} == digest
    assert before.files and all(p.exists() for p in before.files)
