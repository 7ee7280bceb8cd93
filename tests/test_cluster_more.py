"""Partitioned siting, audit, export and batch lookup on a real Dask LocalCluster (2 worker
processes) equal the single-process reference row for row; a partition that fails once is
retried and the result is still the same.

One cluster serves the module (processes, no dashboard, loopback), as in
``tests/test_cluster.py``. The city is the session's 10,000-household demo city
(``tests/conftest.py``), delineated once.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

pytest.importorskip("distributed")

import cloudpickle  # noqa: E402

from gridgis import partitioned as P  # noqa: E402
from gridgis.audit import audit_grids  # noqa: E402
from gridgis.cluster import open_client  # noqa: E402
from gridgis.siting import site_from_layers  # noqa: E402
from gridgis.standards import DEFAULT, ClusterRules  # noqa: E402
from gridgis.store import open_store  # noqa: E402

#: Small partitions so that even the test city is cut into several.
RULES = ClusterRules(retries=2, chunk_rows=200, partitions_per_worker=4)

# the fault-injecting wrappers below travel to the workers by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    with open_client("local:2") as c:
        yield c


@pytest.fixture(scope="module")
def workspace(demo_delineated_gpkg) -> dict:
    """Every layer of the delineated demo city (grids assigned, staff placed)."""
    with open_store(demo_delineated_gpkg) as store:
        return {name: store.read(name) for name in store.layers()}


def same(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Same rows, same order, same values and dtypes, exactly."""
    pd.testing.assert_frame_equal(
        pd.DataFrame(got).reset_index(drop=True),
        pd.DataFrame(ref).reset_index(drop=True),
        check_exact=True,
    )


def _fail_once(real, marker: str):
    """``real`` that raises on the first call anywhere in the cluster (a marker file
    says it happened), then runs: the partition is retried by Dask."""

    def part(*args):
        try:  # created atomically: of two workers starting at once, only one fails
            with open(marker, "x") as flag:
                flag.write("failed once")
        except FileExistsError:
            return real(*args)
        raise RuntimeError("first attempt fails")

    return part


# -- siting -----------------------------------------------------------------------------


def _site_ref(layers, **kw):
    return site_from_layers(layers, "kindergarten", 5, DEFAULT, **kw)


def test_site_partitioned_equals_single(client, workspace):
    ref = _site_ref(workspace)
    got = P.site_partitioned(client, workspace, "kindergarten", 5, rules=RULES)
    assert len(ref.sites) == 5 and ref.sites["households_new"].min() > 0
    same(got.sites, ref.sites)
    report = got.params.pop("cluster")
    assert report["partitions"] >= 4
    assert got.params == ref.params
    assert got.households_uncovered_before == ref.households_uncovered_before


def test_site_partitioned_with_candidate_parcels_equals_single(client, workspace):
    """Supplied candidates (here the institutions' parcels) attach to the same graph."""
    cand = workspace["institutions"]
    ref = _site_ref(workspace, candidates=cand, candidate_id="unit_id")
    got = P.site_partitioned(
        client, workspace, "kindergarten", 5, candidates=cand, candidate_id="unit_id", rules=RULES
    )
    assert len(ref.sites) and ref.sites["candidate"].isin(cand["unit_id"]).all()
    same(got.sites, ref.sites)


def test_site_halo_pieces_hold_every_walk_within_the_radius(workspace):
    """The exactness argument itself: on the piece of the graph within the radius of a
    block, each source reaches exactly the nodes the whole graph reaches within it, at
    the same distances (bit for bit)."""
    from scipy.sparse.csgraph import dijkstra

    from gridgis.siting import halo_piece, node_xy, siting_access

    access, _, _, _ = siting_access(workspace, "kindergarten")
    graph = access.graph
    xy = node_xy(graph)
    r = 300.0
    nodes = access.node[access.node >= 0]
    near = np.argsort(np.hypot(*(xy[nodes] - xy[nodes[0]]).T))[:20]
    sources = nodes[near]  # a block: 20 buildings around the first one
    col_of = np.arange(graph.n_nodes)
    piece, src, cols = halo_piece(graph.matrix, xy, sources, col_of, r + 1.0)
    assert piece.shape[0] < graph.n_nodes * 0.8  # a real cut
    whole = dijkstra(graph.matrix, directed=False, indices=sources, limit=r)
    part = dijkstra(piece, directed=False, indices=src, limit=r)
    for k in range(len(sources)):
        reached = np.flatnonzero(whole[k] <= r)
        local = np.flatnonzero(part[k] <= r)
        assert cols[local].tolist() == reached.tolist()
        assert part[k][local].tolist() == whole[k][reached].tolist()


def test_site_partition_failing_once_is_retried_same_sites(
    client, workspace, tmp_path, monkeypatch
):
    import gridgis.partitioned.siting as S

    monkeypatch.setattr(S, "bounded_cover", _fail_once(S.bounded_cover, str(tmp_path / "m")))
    got = P.site_partitioned(client, workspace, "kindergarten", 5, rules=RULES)
    assert len(got.params["cluster"]["retried"]) == 1
    same(got.sites, _site_ref(workspace).sites)


# -- audit ------------------------------------------------------------------------------


def _faulty(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The delineated grids with faults of every kind: grids shifted 15 m (overlaps,
    gaps, community crossings, split buildings), grids deleted (buildings in no grid),
    two grids made one (households out of range) and two across an arterial made one
    (a crossing), a duplicate, a missing and an invalid code, a multipart grid and a
    self-intersecting one."""
    crs = grids.estimate_utm_crs()
    g = grids.to_crs(crs).reset_index(drop=True)
    geoms = g.geometry.to_numpy().copy()
    for k in range(0, len(g), 5):
        geoms[k] = shapely.affinity.translate(geoms[k], 15.0, 0.0)
    geoms[1] = shapely.union_all([geoms[1], shapely.box(*geoms[20].bounds).buffer(-30)])
    x0, y0, x1, y1 = geoms[2].bounds
    geoms[2] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # a bow tie
    geoms[10] = shapely.union_all([geoms[10], geoms[11]])  # two grids' households in one
    # two neighbours of different communities (across an arterial) made one grid
    comm = g["grid_code"].astype(str).str[:12].to_numpy()
    pair = next(
        (i, j)
        for i in range(21, len(g))
        for j in range(i + 1, len(g))
        if comm[i] != comm[j] and shapely.intersection(geoms[i], geoms[j]).length > 100
    )
    geoms[pair[0]] = shapely.union_all([geoms[pair[0]], geoms[pair[1]]])
    g["geometry"] = geoms
    g.loc[3, "grid_code"] = g.loc[9, "grid_code"]
    g.loc[4, "grid_code"] = None
    g.loc[6, "grid_code"] = str(g.loc[6, "grid_code"])[:12] + "000"
    g = g.drop(index=[7, 11, 13, pair[1]]).reset_index(drop=True)
    return g.to_crs("EPSG:4326")


def _audit_layers(workspace):
    return {k: workspace[k] for k in ("communities", "buildings", "roads")}


@pytest.mark.parametrize(
    "variant", ["delineated", "faulty", "faulty_by_field", "faulty_no_communities"]
)
def test_audit_partitioned_equals_single(client, workspace, variant):
    grids = workspace["grids"] if variant == "delineated" else _faulty(workspace["grids"])
    layers = _audit_layers(workspace)
    kw = {}
    if variant == "faulty_by_field":
        kw["community_field"] = "community_code"
    if variant == "faulty_no_communities":
        layers.pop("communities")
        layers["roads"] = layers["roads"].drop(columns="road_id")  # named by their row
    ref = audit_grids(grids, layers, DEFAULT, **kw)
    got = P.audit_partitioned(client, grids, layers, DEFAULT, rules=RULES, **kw)
    if variant != "delineated":
        found = set(ref.findings["check"])
        want = {"overlap", "duplicate_code", "missing_code", "invalid_code", "multipart"}
        want |= {"invalid_geometry", "building_no_grid", "households_out_of_range", "gap"}
        want |= {"arterial_crossing", "building_in_two_grids"}
        assert want <= found, want - found
    assert got.findings.attrs["cluster"]["partitions"] >= 3
    same(got.findings, ref.findings)
    same(got.grids, ref.grids)
    assert got.skipped == ref.skipped and got.crs == ref.crs


def test_audit_partition_failing_once_is_retried_same_findings(
    client, workspace, tmp_path, monkeypatch
):
    import gridgis.partitioned.audit as A

    grids = _faulty(workspace["grids"])
    layers = _audit_layers(workspace)
    monkeypatch.setattr(A, "_audit_part", _fail_once(A._audit_part, str(tmp_path / "m")))
    got = P.audit_partitioned(client, grids, layers, DEFAULT, rules=RULES)
    assert len(got.findings.attrs["cluster"]["retried"]) == 1
    same(got.findings, audit_grids(grids, layers, DEFAULT).findings)


def test_audit_and_site_workflows_with_a_cluster_write_the_same(
    client, demo_delineated_gpkg, tmp_path
):
    from gridgis import workflows

    stores = {}
    for kind, cl in (("single", None), ("cluster", client)):
        path = tmp_path / f"{kind}.gpkg"
        shutil.copy(demo_delineated_gpkg, path)
        store = open_store(path)
        workflows.audit(store, DEFAULT, cluster=cl)
        workflows.site(store, DEFAULT, "kindergarten", 3, cluster=cl)
        stores[kind] = store
    for name in ("grid_findings", "proposed_sites"):
        same(stores["cluster"].read(name), stores["single"].read(name))


# -- batch lookup on the command line ---------------------------------------------------


def test_cli_lookup_batch_on_a_cluster_writes_the_same_csv(demo_delineated_gpkg, tmp_path):
    from typer.testing import CliRunner

    from gridgis.cli import app

    with open_store(demo_delineated_gpkg) as store:
        texts = store.read("addresses")["text"].tolist()
    texts = [t.replace("栋", "幢") for t in texts] + ["完全不存在的路999号", "", "建设路"]
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": range(len(texts)), "address": texts}).to_csv(src, index=False)
    outs = {}
    for kind, extra in (("single", []), ("cluster", ["--cluster", "local:2"])):
        outs[kind] = tmp_path / f"{kind}.csv"
        args = ["lookup", "-w", str(demo_delineated_gpkg), "--batch", str(src)]
        res = CliRunner().invoke(app, [*args, "--out", str(outs[kind]), *extra])
        assert res.exit_code == 0, res.output
    assert outs["cluster"].read_bytes() == outs["single"].read_bytes()
    got = pd.read_csv(outs["single"], dtype=str)
    assert len(got) == len(texts) and got["grid_code"].notna().sum() > len(texts) // 2


# -- export -----------------------------------------------------------------------------


def _pdf_content(path: Path) -> list[tuple]:
    """Per page: the text, the decoded drawing instructions and the page box (what a
    reader shows; the file's creation dates differ between any two runs)."""
    from pypdf import PdfReader

    pages = PdfReader(str(path)).pages
    return [(p.extract_text(), p.get_contents().get_data(), tuple(p.mediabox)) for p in pages]


def test_pdf_pages_printed_on_the_cluster_same_pages_after_a_retry(
    client, workspace, tmp_path, monkeypatch
):
    """Pages of a written map site — one printed alone, then a run of boards printed
    as one book: two print calls — printed on the workers (one failing once) are the
    pages :func:`~gridgis.export.pdf.print_pages` prints here, in the same order."""
    from gridgis.export.pdf import CHROMIUM, print_pages
    from gridgis.maps import write_maps

    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed")
    pytest.importorskip("playwright.sync_api")
    import gridgis.partitioned.export as E

    site = tmp_path / "site"
    write_maps(workspace, site, city="示范区", board_date="2026-01-02")
    boards = sorted((site / "boards").glob("*.html"))[:3]
    pages = [(boards[0], "page")] + [(p, "board") for p in boards[1:]]
    n_ref = print_pages(pages, tmp_path / "single.pdf")
    monkeypatch.setattr(E, "_print_part", _fail_once(E._print_part, str(tmp_path / "m")))
    report: dict = {}
    n_got = E.cluster_printer(client, RULES, report)(pages, tmp_path / "cluster.pdf")
    run = report["runs"][0]
    assert run["partitions"] == 2 and len(run["retried"]) == 1
    assert n_got == n_ref == 3
    assert _pdf_content(tmp_path / "cluster.pdf") == _pdf_content(tmp_path / "single.pdf")


def test_export_on_a_cluster_writes_the_same_ledger(client, workspace, tmp_path):
    """Formats written here (one row per grid) go through the same function: the CSV
    ledger's bytes are the same."""
    from gridgis.export import export_workspace

    ref = export_workspace(workspace, "csv", tmp_path / "single")
    got = P.export_partitioned(client, workspace, "csv", tmp_path / "cluster")
    assert [p.name for p in got.files] == [p.name for p in ref.files] and ref.files
    for a, b in zip(got.files, ref.files, strict=True):
        assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    "args",
    [
        ["site", "-c", "kindergarten"],
        ["audit", "--grids", "communities", "--code-field", "community_code"],
        ["export", "--format", "csv", "--out", "{tmp}/x"],
        ["lookup", "--batch", "{tmp}/in.csv", "--out", "{tmp}/out.csv"],
    ],
)
def test_cli_cluster_option_of_the_new_commands(demo_city_gpkg, tmp_path, args):
    """Each takes --cluster, parsed as the other commands parse it: a bad spec stops
    before anything runs (exit 2, the accepted forms named)."""
    from typer.testing import CliRunner

    from gridgis.cli import app

    (tmp_path / "in.csv").write_text("address\n建设路1号\n", encoding="utf-8")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    res = CliRunner().invoke(app, [*args, "-w", str(demo_city_gpkg), "--cluster", "lokal"])
    assert res.exit_code == 2, res.output
    assert "local:N" in res.output
