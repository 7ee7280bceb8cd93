"""``gridgis export``: the ledger (xlsx, csv), GIS layers (shp, gpkg with QGIS styles,
geojson) and PDF boards and atlas, read back with independent readers (openpyxl, pyogrio,
sqlite3, poppler) and compared with hand-worked figures of a small hand-made workspace;
the boards' 四至 and effective date on the same workspace."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from gridgis.export import export_workspace, ledger
from gridgis.export.vector import SHP_FIELDS, shp_field
from gridgis.maps.boards import effective_date, four_sides
from gridgis.standards import DEFAULT

CHROMIUM = Path("/usr/bin/chromium")

ST = "320102001"
CA, CB = ST + "001", ST + "002"
A1, A2, B1 = CA + "001", CA + "002", CB + "001"
Y0, Y1 = 32.040, 32.043


def _gdf(rows: dict, geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")


@pytest.fixture(scope="module")
def layers() -> dict:
    """One street, two communities, three grids (A1 residential 300 households with two
    kindergartens, A2 a unit grid, B1 flagged with 420 households, a park and a
    kindergarten — community B's only grid); 中山路 along the north edge, 汉中路 along the
    west edge; a grid head with a phone in A1, a police officer in A only."""
    streets = _gdf({"street_code": [ST], "name": ["新街口街道"]}, [box(118.800, Y0, 118.806, Y1)])
    comms = _gdf(
        {
            "community_code": [CA, CB],
            "name": ["甲社区", "乙社区"],
            "street_code": [ST, ST],
            "urban_rural_class": ["111", "111"],
        },
        [box(118.800, Y0, 118.804, Y1), box(118.804, Y0, 118.806, Y1)],
    )
    grids = _gdf(
        {
            "grid_code": [A1, A2, B1],
            "community_code": [CA, CA, CB],
            "street_code": [ST] * 3,
            "kind": ["residential", "unit", "residential"],
            "name": [None, "第一中学", None],
            "households": [300, 0, 420],
            "building_count": [3, 1, 4],
            "area_m2": [62_900.0, 62_900.0, 62_800.0],
            "flags": ["", "", "above_max: 420 households"],
        },
        [
            box(118.800, Y0, 118.802, Y1),
            box(118.802, Y0, 118.804, Y1),
            box(118.804, Y0, 118.806, Y1),
        ],
    )
    roads = _gdf(
        {
            "road_id": ["r1", "r2", "r3"],
            "name": ["中山路", "汉中路", None],
            "road_class": ["arterial", "secondary", "branch"],
        },
        [
            LineString([(118.799, Y1), (118.807, Y1)]),
            LineString([(118.800, 32.039), (118.800, 32.044)]),
            LineString([(118.803, Y0), (118.803, 32.0415)]),
        ],
    )
    facilities = _gdf(
        {
            "facility_id": ["f1", "f2", "f3", "f4"],
            "name": ["幼儿园一", "幼儿园二", "小游园", "幼儿园三"],
            "category": ["kindergarten", "kindergarten", "park", "kindergarten"],
        },
        [
            Point(118.8005, 32.041),
            Point(118.8015, 32.042),
            Point(118.805, 32.041),
            Point(118.8055, 32.042),
        ],
    )
    staff = pd.DataFrame(
        {
            "staff_id": ["S1", "S2"],
            "name": ["张三", "李四"],
            "role": ["grid_head", "police"],
            "community_code": [CA, CA],
            "grid_code": [A1, None],
            "phone": ["13800000001", "13900000002"],
        }
    )
    coverage = pd.DataFrame(
        {
            "level": ["grid", "grid", "community", "community", "street"],
            "code": [A1, B1, CA, CB, ST],
            "category": ["kindergarten"] * 5,
            "households": [300, 420, 300, 420, 720],
            "households_covered": [300, 210, 300, 210, 510],
            "rate": [1.0, 0.5, 1.0, 0.5, 510 / 720],
            "households_covered_straight": [300, 420, 300, 420, 720],
            "rate_straight": [1.0] * 5,
        }
    )
    # B1 redrawn on 2025-03-01 (its open version); A1 and A2 have no versions
    versions = _gdf(
        {
            "grid_code": [B1, B1],
            "version": [1, 2],
            "valid_from": ["2024-01-01", "2025-03-01"],
            "valid_to": ["2025-03-01", None],
        },
        [box(118.804, Y0, 118.806, 32.042), box(118.804, Y0, 118.806, Y1)],
    )
    return {
        "grid_versions": versions,
        "streets": streets,
        "communities": comms,
        "grids": grids,
        "roads": roads,
        "facilities": facilities,
        "staff": staff,
        "coverage": coverage,
    }


# --------------------------------------------------------------------------------------
# The ledger's figures
# --------------------------------------------------------------------------------------


def test_ledger_figures_by_hand(layers):
    book = ledger(layers)
    g = book.plain("grids").set_index("grid_code")
    assert list(g.index) == [A1, A2, B1]
    assert g.loc[A1, "households"] == 300 and g.loc[A1, "facilities_kindergarten"] == 2
    assert g.loc[B1, "facilities_park"] == 1 and g.loc[B1, "facilities_total"] == 2
    assert g.loc[A1, "grid_head"] == "张三" and pd.isna(g.loc[B1, "grid_head"])
    assert bool(g.loc[B1, "flagged"]) and not bool(g.loc[A1, "flagged"])
    assert g.loc[A2, "kind_label"] == "单位网格"
    assert g.loc[B1, "coverage_kindergarten"] == 0.5
    assert g.loc[B1, "valid_from"] == "2025-03-01" and pd.isna(g.loc[A1, "valid_from"])
    assert g.loc[A1, "community_name"] == "甲社区" and g.loc[A1, "street_name"] == "新街口街道"
    assert not any("phone" in c for c in g.columns)  # personal data only when asked
    c = book.plain("communities").set_index("community_code")
    assert c.loc[
        CA, ["grid_count", "residential_grids", "unit_grids", "flagged_grids"]
    ].tolist() == [2, 1, 1, 0]
    assert c.loc[CB, ["grid_count", "flagged_grids", "households", "building_count"]].tolist() == [
        1,
        1,
        420,
        4,
    ]
    assert c.loc[CA, "households"] == 300 and c.loc[CA, "building_count"] == 4
    assert c.loc[CA, "police"] == "李四" and pd.isna(c.loc[CB, "police"])
    assert c.loc[CA, "facilities_kindergarten"] == 2 and c.loc[CB, "facilities_total"] == 2
    # the community area measured in metres: 0.004° × 0.003° at 32° N ≈ 378 m × 333 m
    assert c.loc[CA, "area_m2"] == pytest.approx(0.004 * 94_430 * 0.003 * 110_860, rel=0.01)
    s = book.plain("streets").set_index("street_code")
    assert s.loc[ST, ["community_count", "grid_count", "flagged_grids", "households"]].tolist() == [
        2,
        3,
        1,
        720,
    ]
    assert s.loc[ST, "facilities_kindergarten"] == 3 and s.loc[ST, "facilities_total"] == 4
    assert s.loc[ST, "coverage_kindergarten"] == pytest.approx(510 / 720)
    personal = ledger(layers, with_personal=True)
    assert (
        personal.plain("grids").set_index("grid_code").loc[A1, "grid_head_phone"] == "13800000001"
    )
    assert (
        personal.plain("communities").set_index("community_code").loc[CA, "police_phone"]
        == "13900000002"
    )


def test_ledger_needs_communities(layers):
    from gridgis.errors import NotFoundError

    with pytest.raises(NotFoundError, match="communities"):
        ledger({"grids": layers["grids"]})


# --------------------------------------------------------------------------------------
# Excel
# --------------------------------------------------------------------------------------


def test_xlsx_ledger_read_back_with_openpyxl(layers, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    res = export_workspace(layers, "xlsx", tmp_path / "台账.xlsx", city="示范区")
    assert res.files == [tmp_path / "台账.xlsx"]
    wb = openpyxl.load_workbook(res.files[0])
    assert wb.sheetnames == ["网格", "社区", "街道"]
    ws = wb["网格"]
    head = [c.value for c in ws[1]]
    assert head[:6] == ["街道代码", "街道名称", "社区代码", "社区名称", "网格代码", "名称"]
    assert "设施:幼儿园" in head and "覆盖率:幼儿园" in head and "网格长" in head
    assert not any("电话" in str(h) for h in head)
    assert (
        ws.freeze_panes == "A2"
        and ws.auto_filter.ref == f"A1:{ws.cell(1, len(head)).column_letter}4"
    )
    rows = {
        r[4]: dict(zip(head, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)
    }
    assert set(rows) == {A1, A2, B1}
    code_cell = ws.cell(row=2, column=5)
    assert code_cell.data_type == "s" and code_cell.number_format == "@"
    assert rows[A1]["户数"] == 300 and rows[A1]["设施:幼儿园"] == 2 and rows[A1]["网格长"] == "张三"
    assert rows[B1]["问题网格"] == "是" and rows[A1]["问题网格"] == "否"
    assert rows[B1]["覆盖率:幼儿园"] == 0.5
    assert ws.cell(row=2, column=head.index("覆盖率:幼儿园") + 1).number_format == "0.0%"
    assert ws.column_dimensions["E"].width >= 15  # a 15-digit code fits
    c = wb["社区"]
    chead = [x.value for x in c[1]]
    crow = dict(zip(chead, [x.value for x in c[2]], strict=True))
    assert crow["社区代码"] == CA and crow["户数"] == 300 and crow["网格数"] == 2
    st = dict(zip([x.value for x in wb["街道"][1]], [x.value for x in wb["街道"][2]], strict=True))
    assert st["户数"] == 720 and st["网格数"] == 3 and st["社区数"] == 2
    # personal data only on request
    res = export_workspace(layers, "xlsx", tmp_path / "p", with_personal=True)
    ws = openpyxl.load_workbook(res.files[0])["网格"]
    head = [c.value for c in ws[1]]
    assert "网格长电话" in head
    assert "13800000001" in [c.value for c in ws[2]]


# --------------------------------------------------------------------------------------
# Shapefile, GeoPackage, GeoJSON, CSV
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding,cpg", [("utf-8", "UTF-8"), ("gbk", "GBK")])
def test_shapefile_zip_per_layer(layers, tmp_path, encoding, cpg):
    import pyogrio

    res = export_workspace(layers, "shp", tmp_path, shp_encoding=encoding)
    assert sorted(p.name for p in res.files) == ["communities.zip", "grids.zip", "streets.zip"]
    with zipfile.ZipFile(tmp_path / "grids.zip") as z:
        names = set(z.namelist())
        assert {"grids.shp", "grids.shx", "grids.dbf", "grids.prj", "grids.cpg"} <= names
        assert z.read("grids.cpg").decode() == cpg
        aliases = pd.read_csv(z.open("grids.aliases.csv"), encoding="utf-8-sig")
        dbf = z.read("grids.dbf")
    # the Chinese text really is in the declared encoding inside the .dbf
    assert "甲社区".encode("utf-8" if encoding == "utf-8" else "gbk") in dbf
    g = pyogrio.read_dataframe(f"zip://{tmp_path / 'grids.zip'}!grids.shp").set_index("grid_code")
    assert all(len(c.encode()) <= 10 for c in g.columns)
    assert g.loc[A1, "cm_name"] == "甲社区" and g.loc[A1, "households"] == 300
    assert g.loc[B1, "flagged"] == 1 and g.loc[A1, "n_kinder"] == 2
    assert g.loc[B1, "c_kinder"] == pytest.approx(0.5)
    row = aliases.set_index("field").loc["households"]
    assert row["name"] == "households" and row["alias"] == "户数"
    assert aliases.set_index("field").loc["n_kinder", "alias"] == "设施:幼儿园"
    assert set(aliases["field"]) == set(g.columns) - {"geometry"} | {"grid_code"}


def test_shapefile_field_table_is_unique_and_short():
    from gridgis.layers import FACILITY_CATEGORIES

    names = list(SHP_FIELDS.values())
    cols = [f"{p}{c}" for p in ("facilities_", "coverage_") for c in FACILITY_CATEGORIES]
    names += [shp_field(c) for c in cols]
    assert all(len(n.encode()) <= 10 for n in names)
    assert len(set(shp_field(c) for c in cols)) == len(cols)
    with pytest.raises(Exception, match="utf-8 or gbk"):
        export_workspace({"communities": None}, "shp", "/tmp/x", shp_encoding="latin-1")


def test_gpkg_layers_and_qgis_styles_read_back(layers, tmp_path):
    import pyogrio

    res = export_workspace(layers, "gpkg", tmp_path / "ws.gpkg")
    path = res.files[0]
    names = {n for n, _ in pyogrio.list_layers(path)}
    assert {"grids", "communities", "streets", "layer_styles"} <= names
    g = pyogrio.read_dataframe(path, layer="grids").set_index("grid_code")
    assert g.loc[B1, "households"] == 420 and g.loc[A1, "facilities_kindergarten"] == 2
    con = sqlite3.connect(path)
    cols = [r[1] for r in con.execute("PRAGMA table_info(layer_styles)")]
    assert cols == [
        "id",
        "f_table_catalog",
        "f_table_schema",
        "f_table_name",
        "f_geometry_column",
        "styleName",
        "styleQML",
        "styleSLD",
        "useAsDefault",
        "description",
        "owner",
        "ui",
        "update_time",
    ]
    rows = con.execute(
        "SELECT f_table_name, f_geometry_column, useAsDefault, styleQML, styleSLD FROM layer_styles"
    ).fetchall()
    by = {r[0]: r for r in rows}
    assert set(by) == {"grids", "communities", "streets"}
    geom_col = con.execute(
        "SELECT column_name FROM gpkg_geometry_columns WHERE table_name='grids'"
    ).fetchone()[0]
    assert by["grids"][1] == geom_col and by["grids"][2] == 1
    assert con.execute(
        "SELECT data_type FROM gpkg_contents WHERE table_name='layer_styles'"
    ).fetchone() == ("attributes",)
    qml = ET.fromstring(by["grids"][3].split("\n", 1)[1])
    assert qml.find("renderer-v2").get("type") == "RuleRenderer"
    rules = {r.get("label"): r.get("filter") for r in qml.iter("rule")}
    assert rules["单位网格"] == "\"kind\" = 'unit'" and rules["⚠ 问题网格"] == '"flagged"'
    # one household class per residential value (300, 420), none for zero
    classes = [k for k in rules if k.endswith("户")]
    assert classes == ["300 户", "420 户"]
    brushes = {
        s.get("name"): {o.get("name"): o.get("value") for o in s.iter("Option") if o.get("name")}
        for s in qml.iter("symbol")
    }
    unit_sym = next(r.get("symbol") for r in qml.iter("rule") if r.get("label") == "单位网格")
    assert brushes[unit_sym]["style"] == "b_diagonal"
    flag_sym = next(r.get("symbol") for r in qml.iter("rule") if r.get("label") == "⚠ 问题网格")
    assert brushes[flag_sym]["outline_style"] == "dash" and brushes[flag_sym]["style"] == "no"
    # fills at the web maps' opacity
    first = brushes[next(r.get("symbol") for r in qml.iter("rule") if r.get("label") == "300 户")]
    assert first["color"].endswith(f",{round(DEFAULT.maps.fill_opacity * 255)}")
    label = qml.find("labeling/settings/text-style").get("fieldName")
    assert "grid_code" in label and "households" in label
    ET.fromstring(by["grids"][4])  # the SLD is well-formed XML


def test_write_layer_styles_on_a_workspace(layers, tmp_path):
    """The map/delineate workflows can style an existing workspace GeoPackage."""
    from gridgis.maps.qgis import write_layer_styles
    from gridgis.store import GeoPackageStore

    ws = tmp_path / "ws.gpkg"
    GeoPackageStore(ws).write_many({k: layers[k] for k in ("streets", "communities", "grids")})
    assert sorted(write_layer_styles(ws)) == ["communities", "grids", "streets"]
    assert sorted(write_layer_styles(ws)) == ["communities", "grids", "streets"]  # replaces
    n = sqlite3.connect(ws).execute("SELECT count(*) FROM layer_styles").fetchone()[0]
    assert n == 3


def test_geojson_and_csv(layers, tmp_path):
    res = export_workspace(layers, "geojson", tmp_path / "gj")
    data = json.loads((tmp_path / "gj" / "grids.geojson").read_text(encoding="utf-8"))
    props = {f["properties"]["grid_code"]: f["properties"] for f in data["features"]}
    assert props[B1]["households"] == 420 and props[B1]["flagged"] is True
    assert len(res.files) == 3
    export_workspace(layers, "csv", tmp_path / "csv")
    c = pd.read_csv(
        tmp_path / "csv" / "communities.csv", encoding="utf-8-sig", dtype={"社区代码": str}
    )
    assert c.set_index("社区代码").loc[CB, "户数"] == 420
    assert (tmp_path / "csv" / "grids.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    export_workspace(layers, "csv", tmp_path / "en", chinese_headers=False)
    e = pd.read_csv(
        tmp_path / "en" / "streets.csv", encoding="utf-8-sig", dtype={"street_code": str}
    )
    assert e.loc[0, "street_code"] == ST and e.loc[0, "households"] == 720


# --------------------------------------------------------------------------------------
# Boards: 四至, effective date
# --------------------------------------------------------------------------------------


def test_four_sides_by_hand(layers):
    g = layers["grids"].set_index("grid_code")
    others = layers["grids"]
    sides = four_sides(g.loc[A1, "geometry"], layers["roads"], others[others["grid_code"] != A1])
    assert sides == {
        "east": "网格 001-002",
        "south": "社区边界",
        "west": "汉中路",
        "north": "中山路",
    }
    # B1: 中山路 on the north; A2 (community A) on the west; nothing east or south
    sides = four_sides(g.loc[B1, "geometry"], layers["roads"], others[others["grid_code"] != B1])
    assert sides == {
        "east": "社区边界",
        "south": "社区边界",
        "west": "网格 001-002",
        "north": "中山路",
    }
    # the unnamed branch road inside A2 names nothing
    sides = four_sides(g.loc[A2, "geometry"], layers["roads"], None)
    assert sides["south"] == "社区边界" and sides["north"] == "中山路"


def test_effective_date():
    assert (
        effective_date(pd.Series({"valid_from": "2025-03-01T00:00:00"}), "2026-01-02")
        == "2025-03-01"
    )
    assert (
        effective_date(pd.Series({"valid_from": None}), "2026-01-02T10:00:00+00:00") == "2026-01-02"
    )
    assert effective_date(pd.Series({}), None) == ""


# --------------------------------------------------------------------------------------
# PDF (Chromium) and the CLI and API
# --------------------------------------------------------------------------------------


def pdf_pages(path: Path) -> tuple[int, list[tuple[float, float]]]:
    """Page count and sizes (points) by poppler's pdfinfo, an independent reader."""
    out = subprocess.run(
        ["pdfinfo", "-f", "1", "-l", "999", str(path)], capture_output=True, text=True, check=True
    ).stdout
    n = int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))
    sizes = []
    for line in out.splitlines():
        if line.startswith("Page") and " size:" in line:
            w, _, h = line.split("size:")[1].split()[:3]
            sizes.append((float(w), float(h)))
    return n, sizes


@pytest.fixture(scope="module")
def pdfs(layers, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed")
    if not shutil.which("pdfinfo"):
        pytest.skip("poppler-utils (pdfinfo) not installed")
    pytest.importorskip("playwright.sync_api")
    out = tmp_path_factory.mktemp("pdf")
    res = export_workspace(
        layers, "pdf", out, city="示范区", board_date="2026-01-02T08:00:00+00:00"
    )
    return out, res


def test_pdf_boards_one_a4_page_each(pdfs):
    out, res = pdfs
    n, sizes = pdf_pages(out / "boards.pdf")
    assert n == 3 == res.pages["boards"]
    assert all(abs(w - 595.3) < 2 and abs(h - 841.9) < 2 for w, h in sizes)  # A4 portrait
    text = subprocess.run(
        ["pdftotext", "-layout", str(out / "boards.pdf"), "-"], capture_output=True, text=True
    ).stdout
    pages = text.split("\f")
    assert A1 in pages[0] and A2 in pages[1] and B1 in pages[2]
    assert "张三" in pages[0] and "13800000001" not in text  # names, never phones
    assert "待配备" in pages[0] and "<NA>" not in text and "nan" not in text
    assert "中山路" in pages[0] and "汉中路" in pages[0] and "生效日期: 2026-01-02" in pages[0]
    assert "生效日期: 2025-03-01" in pages[2]  # B1's open version in grid_versions


def test_pdf_atlas_pages_in_order(pdfs):
    out, res = pdfs
    n, sizes = pdf_pages(out / "atlas.pdf")
    # cover, index, street, community A, its 2 boards, community B, its board
    assert n == 8 == res.pages["atlas"]
    portrait = [abs(w - 595.3) < 2 and abs(h - 841.9) < 2 for w, h in sizes]
    landscape = [abs(w - 841.9) < 2 and abs(h - 595.3) < 2 for w, h in sizes]
    assert portrait == [True, False, False, False, True, True, False, True]
    assert landscape == [not p for p in portrait]
    text = subprocess.run(
        ["pdftotext", str(out / "atlas.pdf"), "-"], capture_output=True, text=True
    ).stdout
    pages = text.split("\f")
    assert "示范区 网格地图集" in pages[0] and "甲社区" in pages[0]
    # contents: street on page 3, community A on 4, B on 7 (after A's two boards)
    toc = " ".join(pages[0].split())
    assert "新街口街道 (320102001) · 第 3 页" in toc and "乙社区 (320102001002) · 第 7 页" in toc
    assert A2 in pages[5] and B1 in pages[7]


def test_cli_export(layers, tmp_path):
    from typer.testing import CliRunner

    from gridgis.cli import app
    from gridgis.store import GeoPackageStore

    ws = tmp_path / "ws.gpkg"
    GeoPackageStore(ws).write_many({k: v for k, v in layers.items()})
    runner = CliRunner()
    args = ["export", "-w", str(ws), "--format", "xlsx", "--out", str(tmp_path / "o")]
    res = runner.invoke(app, ["--lang", "en", *args])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "ledger.xlsx").exists() and "personal" in res.output
    res = runner.invoke(app, ["--lang", "zh", *args])
    assert res.exit_code == 0 and "已写出" in res.output and "个人信息" in res.output
    res = runner.invoke(app, ["export", "-w", str(ws), "--format", "docx"])
    assert res.exit_code != 0 and "--format" in res.output
    res = runner.invoke(app, ["export", "-w", str(ws), "-f", "shp", "--encoding", "latin1"])
    assert res.exit_code != 0 and "gbk" in res.output


def test_api_export(layers, tmp_path):
    import io

    import openpyxl
    from fastapi.testclient import TestClient

    from api.app import create_app
    from gridgis.store import open_store

    store = open_store(tmp_path / "ws.gpkg")
    store.write_many({k: v for k, v in layers.items()})
    with TestClient(create_app(store, token="tok")) as client:
        r = client.get("/export/xlsx")
        assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
        ws = openpyxl.load_workbook(io.BytesIO(r.content))["网格"]
        assert "网格长电话" not in [c.value for c in ws[1]]
        assert client.get("/export/xlsx?with_personal=true").status_code == 401
        r = client.get("/export/xlsx?with_personal=true", headers={"Authorization": "Bearer tok"})
        assert r.status_code == 200
        ws = openpyxl.load_workbook(io.BytesIO(r.content))["网格"]
        assert "网格长电话" in [c.value for c in ws[1]]
        r = client.get("/export/shp?encoding=gbk")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        inner = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
        assert sorted(inner) == ["communities.zip", "grids.zip", "streets.zip"]
        assert client.get("/export/docx").status_code in (404, 422)
        # PDF over HTTP: bounded to one street, community or grid
        assert client.get("/export/pdf").status_code == 400
        assert client.get("/export/pdf?code=999999999").status_code == 404
        if CHROMIUM.exists() and shutil.which("pdfinfo"):
            r = client.get(f"/export/pdf?code={CB}&pdf=boards")
            assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
            (tmp_path / "b.pdf").write_bytes(r.content)
            n, _ = pdf_pages(tmp_path / "b.pdf")
            assert n == 1  # community B has one grid
            text = subprocess.run(
                ["pdftotext", str(tmp_path / "b.pdf"), "-"], capture_output=True, text=True
            ).stdout
            assert B1 in text and "网格 001-002" in text  # its neighbour in community A kept


def test_ledger_of_a_delineated_city_adds_up():
    """The demo city through delineation and assignment: every level's households,
    buildings and facilities add up to the grids' own figures and the layers'."""
    from gridgis.assign import assign_all
    from gridgis.delineate import delineate
    from gridgis.synth import make_city

    city = make_city(households=6_000, seed=3)
    lay = dict(city.layers)
    d = delineate(lay, DEFAULT)
    lay["grids"], lay["buildings"] = d.grids, d.buildings
    lay.update(
        {
            k: v
            for k, v in assign_all(lay, d.grids, DEFAULT).layers().items()
            if k != "assign_rejects"
        }
    )
    book = ledger(lay)
    g, c, s = (book.plain(k) for k in ("grids", "communities", "streets"))
    assert g["households"].sum() == c["households"].sum() == s["households"].sum()
    assert g["households"].sum() == pd.to_numeric(lay["grids"]["households"]).sum()
    assert g["building_count"].sum() == c["building_count"].sum() == s["building_count"].sum()
    assert g["facilities_total"].sum() == c["facilities_total"].sum() == s["facilities_total"].sum()
    assert s["facilities_total"].sum() == len(lay["facilities"])
    assert len(g) == len(lay["grids"]) and c["grid_count"].sum() == len(g)
    # the grids' own per-category counts (written by assignment) agree with the ledger's
    own = lay["grids"].set_index("grid_code")
    for col in [x for x in g.columns if x.startswith("facilities_") and x in own.columns]:
        assert (g.set_index("grid_code")[col] == own.loc[g["grid_code"], col].to_numpy()).all(), col


def test_export_unknown_format(layers, tmp_path):
    from gridgis.errors import InputError

    with pytest.raises(InputError, match="xlsx"):
        export_workspace(layers, "docx", tmp_path)
    with pytest.raises(InputError, match="boards"):
        export_workspace(layers, "pdf", tmp_path, pdf="posters")


def test_geometry_is_lonlat(layers, tmp_path):
    book = ledger({**layers, "grids": layers["grids"].to_crs("EPSG:4547")})
    g = book.tables["grids"]
    assert g.crs.to_epsg() == 4326
    assert shapely.equals_exact(
        g.set_index("grid_code").loc[A1, "geometry"], box(118.800, Y0, 118.802, Y1), tolerance=1e-6
    )
