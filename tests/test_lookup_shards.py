"""Batch address lookup on shards: each worker holds the index of its districts only, and
the table equals :meth:`gridgis.lookup.Lookup.addresses` on the whole index, row for row.

* :func:`gridgis.address.match.probe` on a hand-made index of 10 addresses cut into two
  shards: the position each shard reports, the rows it touched, worked out by hand, and
  the lemma the partitioned lookup rests on (an index of the touched rows of the shards
  at the first position answers as the whole index).
* A demo province of 3 districts whose roads share names (the district field names the
  district; queries of every kind) on a LocalCluster of 2 workers: districts as shards,
  shards by the communities' county codes, spatial blocks, and rows dealt round-robin
  (the hardest cut: every place in several shards); the several-shard path must run.
* A shard task that fails once is retried; the table is still the same.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridgis.address import AddressIndex
from gridgis.address.match import EMPTY_QUERY, FUZZY, match, probe
from gridgis.lookup import Lookup

# -- the position logic on a hand-made index ---------------------------------------------

HAND = pd.DataFrame(
    [
        ("A1", "松南路23号", None, 118.800, 32.000),
        ("B1", "松南路23号", None, 118.900, 32.100),
        ("A2", "北民大街5号兰园家园1栋1单元", "兰园家园", 118.801, 32.001),
        ("A3", "北民大街5号兰园家园1栋2单元", "兰园家园", 118.8011, 32.001),
        ("B2", "桂兰大道7号", None, 118.901, 32.101),
        ("B3", "桂兰大道9号明辰苑3栋1单元", "明辰苑", 118.902, 32.102),
        ("A4", "林兰大街11号", "浦东竹园中学", 118.802, 32.002),
        ("B4", "松北路23号", None, 118.903, 32.103),
        ("A5", "星银巷2号", None, 118.803, 32.003),
        ("B5", "北民大街8号", "北民花园", 118.904, 32.104),
    ],
    columns=["address_id", "text", "name", "lon", "lat"],
)
SHARDS = {"A": [0, 2, 3, 6, 8], "B": [1, 4, 5, 7, 9]}

#: query -> (rule on the whole index, {shard: (position, touched global rows)}).
#: Positions are (stage, at): 0 exact key, 1 door plate, 2 door number near (another
#: road's name, or the road without the number), 3 name (at: the name tried), 4 partial
#: name, 5 road only, FUZZY nothing before the fuzzy search.
WORKED = {
    # the same key in both shards, 14 km apart: ambiguous, both shards needed
    "松南路23号": ("several_places", {"A": ((0, 0), [0]), "B": ((0, 0), [1])}),
    # only B holds it
    "桂兰大道7号": ("exact_key", {"A": ((FUZZY, 0), []), "B": ((0, 0), [4])}),
    # B knows the road but not the number (its first rows listed)
    "桂兰大道8号": ("no_door_number", {"A": ((FUZZY, 0), []), "B": ((2, 0), [4, 5])}),
    "明辰苑": ("place_name", {"A": ((FUZZY, 0), []), "B": ((3, 0), [5])}),
    "竹园中学": ("partial_place_name", {"A": ((4, 0), [6]), "B": ((FUZZY, 0), [])}),
    # a typo: both shards list 松南路 (ratio 66.7), 松北路 (33.3) is below the score
    "松南街23号": ("road_not_known", {"A": ((2, 0), [0]), "B": ((2, 0), [1])}),
    # A has the door plate itself, B only the road: A decides alone
    "北民大街5号": ("door_plate", {"A": ((1, 0), [2, 3]), "B": ((2, 0), [9])}),
    "北民大街9号": ("no_door_number", {"A": ((2, 0), [2, 3]), "B": ((2, 0), [9])}),
    "北民大街": ("road_only", {"A": ((5, 0), [2, 3]), "B": ((5, 0), [9])}),
    "星银巷": ("road_only", {"A": ((5, 0), [8]), "B": ((FUZZY, 0), [])}),
    # the name tried second (the first: the whole text as a name)
    "兰园家园1栋2单元": ("building_in_place", {"A": ((3, 1), [2, 3]), "B": ((FUZZY, 0), [])}),
    "": ("empty", {"A": ((EMPTY_QUERY, 0), []), "B": ((EMPTY_QUERY, 0), [])}),
    "火星基地": ("not_found", {"A": ((FUZZY, 0), []), "B": ((FUZZY, 0), [])}),
}


@pytest.mark.parametrize("text", list(WORKED))
def test_probe_positions_and_rows_worked_out(text):
    whole = AddressIndex(HAND)
    parts = {s: AddressIndex(HAND.iloc[r].reset_index(drop=True)) for s, r in SHARDS.items()}
    rule, want = WORKED[text]
    ref = match(whole, text)
    assert ref.rule.value == rule
    got = {}
    for s, index in parts.items():
        p = probe(index, text)
        got[s] = (p.position, [SHARDS[s][t] for t in p.touched])
        # the shard's answer is match() on the shard's own index
        if p.match is not None:
            own = match(index, text)
            assert (p.match.rule, p.match.row, p.match.level) == (own.rule, own.row, own.level)
    assert got == want
    # the lemma: an index of the rows touched by the shards at the first position answers
    # as the whole index (rows mapped back to whole-index rows)
    first = min(pos for pos, _ in want.values())
    if first[0] in (EMPTY_QUERY, FUZZY):
        return
    rows = sorted({r for pos, touched in want.values() if pos == first for r in touched})
    small = match(AddressIndex(HAND.iloc[rows].reset_index(drop=True)), text)
    back = {k: rows[k] for k in range(len(rows))}
    assert small.rule == ref.rule and small.level == ref.level and small.score == ref.score
    assert (back[small.row] if small.row is not None else None) == ref.row
    assert [back[r] for r in small.tied] == ref.tied
    assert [(back[r], s) for r, s in small.candidates] == ref.candidates


def test_probe_over_the_first_stages_only():
    """probe(..., 2) tries the exact key and the door plate only: (2, 0) says neither
    answered; an answer there is the full probe's."""
    parts = {s: AddressIndex(HAND.iloc[r].reset_index(drop=True)) for s, r in SHARDS.items()}
    for text, (_, want) in WORKED.items():
        for s, index in parts.items():
            p = probe(index, text, 2)
            full = want[s][0]
            assert p.position == (full if full[0] < 2 else (2, 0)), (text, s)


def test_match_is_unchanged_by_the_recording():
    """probe() and match() run one cascade: on the whole index, probe's answer is match's."""
    whole = AddressIndex(HAND)
    for text in WORKED:
        p, m = probe(whole, text), match(whole, text)
        if p.match is None:
            assert m.rule.value == "not_found"
            continue
        assert (p.match.rule, p.match.row, p.match.candidates, p.match.tied) == (
            m.rule,
            m.row,
            m.candidates,
            m.tied,
        )


# -- a province on a cluster ---------------------------------------------------------------

pytest.importorskip("distributed")

import cloudpickle  # noqa: E402

import gridgis.partitioned.lookup as PL  # noqa: E402
from gridgis.cluster import open_client  # noqa: E402
from gridgis.standards import ClusterRules  # noqa: E402

RULES = ClusterRules(retries=2, chunk_rows=800)
NAMES = ("addresses", "buildings", "grids", "communities", "streets", "staff")
DISTRICTS = {"D00": "玄武区", "D01": "秦淮区", "D02": "鼓楼区"}

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    with open_client("local:2") as c:
        yield c


@pytest.fixture(scope="module")
def province() -> dict:
    """3 demo districts (12,000 households, 728 addresses), delineated and assigned; the
    roads of districts 1 and 2 renamed after district 0's (so the same road and door
    number stand in several districts), the district named in a ``district`` field."""
    from gridgis.assign import assign_all
    from gridgis.delineate import delineate
    from gridgis.province import make_province

    layers, _ = make_province(12_000, 3, seed=7)
    grids = delineate(layers).grids
    layers = {**layers, **assign_all(layers, grids).layers()}
    a = layers["addresses"].copy()
    roads = [
        list(dict.fromkeys(a.loc[a.address_id.str[:3] == d, "road"].dropna())) for d in DISTRICTS
    ]
    rename = {r: roads[0][k % len(roads[0])] for other in roads[1:] for k, r in enumerate(other)}
    for old, new in rename.items():
        a["text"] = a["text"].str.replace(old, new, regex=False)
        a["road"] = a["road"].replace(old, new)
    a["district"] = a["address_id"].str[:3].map(DISTRICTS)
    layers["addresses"] = a
    return {n: layers.get(n) for n in NAMES}


def _queries(addresses: pd.DataFrame) -> list:
    """Every address as people type it, with the district, with a wrong one, road names
    with a typo, place names whole and in part, roads alone, garbage, empties, repeats."""
    rng = random.Random(1)
    a = addresses
    digits = str.maketrans("0123456789", "０１２３４５６７８９")
    texts = [t.replace("栋", "幢").translate(digits) for t in a.text]
    texts += [d + t for d, t in zip(a.district, a.text, strict=True)][::2]
    wrong = dict(zip(DISTRICTS.values(), list(DISTRICTS.values())[1:] + ["玄武区"], strict=True))
    texts += [wrong[d] + t for d, t in zip(a.district, a.text, strict=True)][::3]

    def typo(t: str, road) -> str:
        if not isinstance(road, str) or len(road) < 3:
            return t
        k = rng.randrange(len(road) - 1)
        return t.replace(road, road[:k] + "东南西北中"[rng.randrange(5)] + road[k + 1 :], 1)

    texts += [typo(t, r) for t, r in zip(a.text, a.road, strict=True)][::2]
    names = a["name"].dropna().unique().tolist()
    texts += names + [n[1:] for n in names if len(n) > 3] + [n[2:] for n in names if len(n) > 4]
    texts += a.road.dropna().unique().tolist()
    texts += ["完全不存在的路999号", "", "   ", "火星基地", "abc", None, "建设路", "松南路"]
    return texts + texts[:40]


def _same(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    for col in ref.columns:  # column by column first: the failing column is named
        pd.testing.assert_series_equal(got[col], ref[col], check_exact=True)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)


def _round_robin(records, layers, shards):
    """Rows dealt to shards in turn: every compound and road lies in every shard."""
    return [np.arange(s, len(records), shards) for s in range(shards)]


@pytest.mark.parametrize(
    "cut", ["districts", "county codes", "spatial blocks", "round robin"], ids=str
)
def test_sharded_lookup_equals_single_process(client, province, cut, monkeypatch):
    layers = dict(province)
    shards = 3
    if cut == "county codes":  # no district field: the communities' county codes
        layers["addresses"] = layers["addresses"].drop(columns="district")
        shards = 2
    elif cut == "spatial blocks":  # neither: Hilbert blocks
        layers["addresses"] = layers["addresses"].drop(columns="district")
        layers["communities"] = None
        shards = 4
    elif cut == "round robin":
        monkeypatch.setattr(PL, "shard_rows", _round_robin)
    texts = _queries(province["addresses"])
    ref = Lookup(**layers).addresses(texts)
    got = PL.lookup_addresses_partitioned(client, layers, texts, rules=RULES, shards=shards)
    _same(got, ref)
    report = got.attrs["cluster"]
    by = report["answered_by"]
    assert sum(by.values()) == len(dict.fromkeys(t if isinstance(t, str) else "" for t in texts))
    assert by["one shard"] > 0 and by["fuzzy"] > 0 and by["empty"] == 2  # "" and "   "
    assert by["several shards"] > 0, "the several-shard path never ran"
    rules = set(ref["rule"])
    for rule in ("exact_key", "several_places", "road_not_known", "place_name", "road_only"):
        assert rule in rules


def test_no_queries_the_empty_table(client, province):
    ref = Lookup(**province).addresses([])
    _same(PL.lookup_addresses_partitioned(client, province, [], rules=RULES), ref)


def test_shards_are_whole_districts_in_row_order(province):
    from gridgis.address.index import layer_records

    records = layer_records(province["addresses"]).reset_index(drop=True)
    for layers in (
        province,
        {**province, "addresses": province["addresses"].drop(columns="district")},
    ):
        recs = records if "district" in layers["addresses"] else records.drop(columns="district")
        parts = PL.shard_rows(recs, layers, 2)
        assert sorted(np.concatenate(parts).tolist()) == list(range(len(records)))
        districts = [set(records["address_id"].str[:3].to_numpy()[p]) for p in parts]
        assert len(parts) == 2 and not districts[0] & districts[1]
        assert all((np.diff(p) > 0).all() for p in parts)


def test_a_district_larger_than_a_share_is_cut_into_spatial_blocks(province):
    """A ``district`` field holding one value (or blank on most rows) would put the whole
    index on one worker: the district is cut into spatial blocks of at most a shard's
    share, so every worker holds about its share."""
    from gridgis.address.index import layer_records

    records = layer_records(province["addresses"]).reset_index(drop=True)
    n = len(records)
    for value in ("某区", None):
        recs = records.assign(district=value)
        recs.loc[recs.index[:5], "district"] = "小区"  # a small district beside it
        for shards in (2, 3):
            parts = PL.shard_rows(recs, province, shards)
            assert sorted(np.concatenate(parts).tolist()) == list(range(n))
            assert all((np.diff(p) > 0).all() for p in parts)
            assert len(parts) == shards
            assert max(map(len, parts)) <= -(-n // shards) + 5, [len(p) for p in parts]


def _fail_once(real, marker: str):
    """``real`` that raises on its first call anywhere in the cluster (claimed by creating
    the marker file atomically), then runs."""

    def part(*args):
        try:
            with open(marker, "x") as flag:
                flag.write("failed once")
        except FileExistsError:
            return real(*args)
        raise RuntimeError("first attempt fails")

    return part


@pytest.mark.parametrize("task", ["_build_shard", "_probe_chunk"])
def test_a_failed_shard_task_is_retried(client, province, task, tmp_path, monkeypatch):
    """A shard's build or one chunk of its queries fails once: retried, the same table."""
    texts = _queries(province["addresses"])[:300]
    ref = Lookup(**province).addresses(texts)
    monkeypatch.setattr(PL, task, _fail_once(getattr(PL, task), str(tmp_path / "m")))
    got = PL.lookup_addresses_partitioned(client, province, texts, rules=RULES, shards=2)
    _same(got, ref)
    assert len(got.attrs["cluster"]["retried"]) == 1
    assert (tmp_path / "m").exists()


# -- a shared store: workers read their shard's rows themselves ------------------------------


def _new_store(kind: str, folder):
    import os
    import uuid

    from gridgis.store import open_store

    if kind == "postgis":
        from gridgis.store.pgtemp import PostgresUnavailable, find_bindir, fresh_workspace_url

        if not os.environ.get("GRIDGIS_TEST_DATABASE_URL"):
            try:
                find_bindir()
            except PostgresUnavailable as exc:
                pytest.skip(f"PostgreSQL not installed: {exc}")
        return open_store(fresh_workspace_url())
    return open_store(folder / f"ws-{uuid.uuid4().hex[:8]}.parquet")


@pytest.mark.parametrize("kind", ["parquet", "postgis"])
def test_shards_read_from_a_shared_store(client, province, kind, tmp_path, monkeypatch):
    """Each shard task carries which rows to read, not the rows: the same table."""
    from gridgis.partitioned.source import shared_run

    store = _new_store(kind, tmp_path)
    store.write_many({n: f for n, f in province.items() if f is not None})
    layers = {n: store.read(n) if store.has(n) else None for n in NAMES}
    texts = _queries(province["addresses"])
    ref = Lookup(**layers).addresses(texts)
    sent = []
    real = PL._Rounds._inputs

    def spy(self, rows, shared):  # what the client puts in each shard's task
        out = real(self, rows, shared)
        sent.append((type(out[0]).__name__, type(out[2]).__name__))
        return out

    monkeypatch.setattr(PL._Rounds, "_inputs", spy)
    with shared_run(store, ("addresses", "grids")) as shared:
        assert shared is not None
        got = PL.lookup_addresses_partitioned(
            client, layers, texts, rules=RULES, shards=3, shared=shared
        )
    _same(got, ref)
    assert got.attrs["cluster"]["answered_by"]["several shards"] > 0
    assert sent == [("Rows", "Rows")] * 3
    store.close()


# -- real addresses: Shanghai POIs of 16 districts ------------------------------------------

POI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "shanghai-amap-poi"


@pytest.fixture(scope="module")
def shanghai():
    """5,000 real Shanghai POI addresses (district field) and 1,100 queries in the styles
    people type (no district, full-width digits, Chinese numerals, spaces, the POI's name,
    a wrong character; and addresses not in the index) from ``benchmarks/bench_lookup.py``."""
    if not POI.exists():
        pytest.skip("../shared/data/shanghai-amap-poi absent")
    import geopandas as gpd

    spec = importlib.util.spec_from_file_location(
        "bench_lookup", Path(__file__).parents[1] / "benchmarks" / "bench_lookup.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    frame, pos, neg = bench.make_index_and_queries(n_index=5000, n_queries=700, n_negative=400)
    addresses = gpd.GeoDataFrame(
        frame.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(frame["lon"], frame["lat"]),
        crs="EPSG:4326",
    )
    texts = [*pos["query"], *neg["query"], *frame["name"].dropna().unique()[:300]]
    return {"addresses": addresses}, texts


@pytest.mark.shared
@pytest.mark.parametrize("cut", ["districts", "round robin"], ids=str)
def test_sharded_lookup_on_real_addresses(client, shanghai, cut, monkeypatch):
    layers, texts = shanghai
    if cut == "round robin":
        monkeypatch.setattr(PL, "shard_rows", _round_robin)
    ref = Lookup(**layers).addresses(texts)
    got = PL.lookup_addresses_partitioned(client, layers, texts, rules=RULES, shards=3)
    _same(got, ref)
    by = got.attrs["cluster"]["answered_by"]
    assert by["one shard"] > 0 and by["fuzzy"] > 0 and by["several shards"] > 0, by


def _die_once(real, marker: str):
    """``real`` whose first call anywhere in the cluster kills its worker process (claimed
    by creating the marker file atomically): the shard that worker held is lost too."""

    def part(*args):
        import os

        try:
            with open(marker, "x") as flag:
                flag.write("killed once")
        except FileExistsError:
            return real(*args)
        os._exit(1)

    return part


def test_a_worker_killed_mid_run_loses_its_shard_which_is_built_again(
    province, tmp_path, monkeypatch
):
    """The worker holding a shard dies while probing: Dask builds the shard again from
    its task (the rows travel with it) and the run ends with the same table. (A cluster
    of its own: the nanny of a killed worker may retire it.)"""
    texts = _queries(province["addresses"])[:400]
    ref = Lookup(**province).addresses(texts)
    monkeypatch.setattr(PL, "_probe_chunk", _die_once(PL._probe_chunk, str(tmp_path / "m")))
    with open_client("local:2") as own:
        got = PL.lookup_addresses_partitioned(own, province, texts, rules=RULES, shards=2)
    _same(got, ref)
    assert (tmp_path / "m").exists()
    assert got.attrs["cluster"]["workers_lost"], got.attrs["cluster"]
