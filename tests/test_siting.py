"""Siting: lazy greedy against spopt's exact MCLP on a small case, and the bookkeeping.
Speed against the exact MCLP is measured in benchmarks/bench_siting.py, not here."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from gridgis.coverage import compute_access
from gridgis.siting import propose_sites, site_from_layers
from gridgis.standards import Settings
from gridgis.synth import make_city

CATEGORY = "kindergarten"


@pytest.fixture(scope="module")
def city():
    return make_city(households=10_000, seed=7)


@pytest.fixture(scope="module")
def access(city):
    L = city.layers
    return compute_access(
        L["buildings"],
        L["roads"],
        L["facilities"],
        L["green_spaces"],
        Settings(),
        categories=[CATEGORY],
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_greedy_within_5_percent_of_exact_mclp(access):
    spopt = pytest.importorskip("spopt.locate")
    pulp = pytest.importorskip("pulp")
    settings = Settings()
    count = 3
    result = propose_sites(access, CATEGORY, count, settings)

    # exact MCLP on the same walking graph: columns = existing facilities + network nodes
    graph = access.graph
    existing = access.sources[CATEGORY]
    candidates = np.arange(graph.net.n_nodes)
    columns = np.concatenate([existing, candidates])
    ok = access.node >= 0
    dist = dijkstra(graph.matrix, directed=False, indices=columns)[:, access.node[ok]].T
    hh = access.buildings["households"].to_numpy()[ok]
    predefined = np.r_[np.ones(len(existing), int), np.zeros(len(candidates), int)]
    radius = settings.coverage.radius_m[CATEGORY]
    model = spopt.MCLP.from_cost_matrix(
        dist, hh, radius, p_facilities=len(existing) + count, predefined_facilities_arr=predefined
    )
    model = model.solve(pulp.PULP_CBC_CMD(msg=False))
    exact = int(round(pulp.value(model.problem.objective)))

    before = result.params["households_covered_before"]
    greedy = int(result.sites["households_covered_after"].iloc[-1])
    # independent check of the greedy's own claim, from the same distance matrix
    chosen = [int(c.split("-")[1]) for c in result.sites["candidate"]]
    cols = np.r_[np.arange(len(existing)), len(existing) + np.array(chosen)]
    assert int(hh[(dist[:, cols] <= radius).any(axis=1)].sum()) == greedy
    assert int(hh[(dist[:, : len(existing)] <= radius).any(axis=1)].sum()) == before
    assert greedy >= 0.95 * exact, (greedy, exact)
    assert greedy <= exact


def test_sites_ranked_and_gains_shrink(access):
    r = propose_sites(access, CATEGORY, 5, Settings())
    s = r.sites
    assert list(s["rank"]) == list(range(1, len(s) + 1))
    assert (np.diff(s["households_new"]) <= 0).all()  # greedy gains never grow
    assert (s["households_new"] > 0).all()
    assert s.crs.to_epsg() == 4326
    assert s["households_covered_after"].iloc[-1] <= r.households_total
    assert "greedy" in r.params["method"]


def test_supplied_candidates(city):
    L = city.layers
    parcels = L["institutions"][["unit_id", "geometry"]]
    r = site_from_layers(L, CATEGORY, 2, Settings(), candidates=parcels)
    assert set(r.sites["candidate"]) <= set(parcels["unit_id"])
    assert r.params["candidate_source"] == "supplied layer"


def test_unknown_category(city):
    with pytest.raises(KeyError, match="no service radius"):
        site_from_layers(city.layers, "restaurant", 1, Settings())


@pytest.mark.parametrize("block", [1, 7, 64, 100_000])
def test_cover_sets_in_blocks_equal_the_whole_graph_search(access, monkeypatch, block):
    """The coverage sets are searched in spatial blocks of ``SEARCH_BLOCK`` uncovered
    buildings, each on the piece of the graph within the radius: for any block size they
    equal an independent search of every uncovered building on the whole graph."""
    import gridgis.siting as S

    monkeypatch.setattr(S, "SEARCH_BLOCK", block)
    radius = float(Settings().coverage.radius_m[CATEGORY])
    graph = access.graph
    candidates = np.flatnonzero(np.arange(graph.n_nodes) % 3 == 0)  # every third node
    got = S.cover_sets(access, CATEGORY, candidates, radius)
    t = access.table[access.table["category"] == CATEGORY]
    demand = np.flatnonzero(~t["covered"].to_numpy() & (access.node >= 0))
    assert len(demand) > 50 and got.buildings.tolist() == demand.tolist()
    dist = dijkstra(graph.matrix, directed=False, indices=access.node[demand], limit=radius * 2)
    want = dist[:, candidates].T <= radius  # candidates × uncovered buildings
    assert want.sum() > 0
    assert (got.matrix.toarray() == want).all()
