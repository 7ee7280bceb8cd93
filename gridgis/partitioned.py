"""Partitioned runs of the analyses that scale with the city, on a Dask cluster.

Each function here takes a :class:`distributed.Client` (from :func:`gridgis.cluster.
open_client`) and returns exactly what the single-process analysis returns, row for row:
the single-process functions stay the reference, and every partition calls them (or
their public building blocks) on a part of the city.

* :func:`delineate_partitioned` — blocks of whole communities, each delineated by
  :func:`gridgis.delineate.delineate` on a worker (buildings go to the block of the
  community that holds them by the one point-in-polygon rule, :mod:`gridgis.spatial`).
* :func:`assign_partitioned` — buildings, institutions and addresses in spatial chunks
  (Hilbert order), each assigned by :func:`gridgis.assign.assign_all` against the grids
  broadcast to every worker; facilities, staff and the grid summaries are assigned once.
* :func:`coverage_partitioned` — residential buildings in blocks of whole communities
  (spatially ordered), each block searched on the walking network and facilities within a
  halo as wide as the largest walking radius (see :func:`coverage_partitioned` for why the
  distances are exact), then rates, gaps and norms once over the whole table.
* :func:`lookup_addresses_partitioned` — chunks of address queries, matched by
  :meth:`gridgis.lookup.Lookup.addresses` on workers that build the index once each.

A partition that raises or whose worker dies is retried (``ClusterRules.retries``); if it
still fails the run raises :class:`PartitionError` and nothing has been written: these
functions never write, the caller writes the collected result in one atomic store write.
Attempts per partition are reported in :class:`RunReport` (``params["cluster"]``).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import metric_crs_for
from gridgis.errors import GridgisError
from gridgis.spatial import points_in_polygons, rank_of
from gridgis.standards import CLUSTER, DEFAULT, ClusterRules, Settings

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

    from gridgis.assign import AssignResult
    from gridgis.coverage import CoverageResult
    from gridgis.delineate import DelineationResult

log = logging.getLogger(__name__)


class PartitionError(GridgisError):
    """A partition failed on every attempt: the run stopped and nothing was written."""

    exit_code = 4
    http_status = 503


# ======================================================================================
# Running partitions
# ======================================================================================


@dataclass
class RunReport:
    """What a partitioned run did: partitions, attempts of each, time.

    Attributes
    ----------
    analysis
        ``delineate``, ``assign``, ``coverage`` or ``lookup``.
    partitions
        Tasks run (for coverage: over every halo round).
    attempts
        Partition key -> attempts started (more than 1: retried after an error or a
        lost worker).
    lost
        Partition key -> workers that died while running it (it then ran elsewhere).
    seconds
        Wall time of the run, s.
    workers
        Workers connected when the run started.
    notes
        Anything else worth recording (halo rounds of coverage…).
    """

    analysis: str
    partitions: int = 0
    attempts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 0
    notes: list[str] = field(default_factory=list)
    lost: dict[str, int] = field(default_factory=dict)

    @property
    def retried(self) -> list[str]:
        """Partitions that needed more than one attempt."""
        return sorted(k for k, n in self.attempts.items() if n > 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": "dask.distributed",
            "analysis": self.analysis,
            "workers": self.workers,
            "partitions": self.partitions,
            "retried": {k: self.attempts[k] for k in self.retried},
            "workers_lost": dict(self.lost),
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }


@contextmanager
def _single_process() -> Iterator[None]:
    """Inside a worker: analyses must not fork pools of their own (worker processes are
    daemonic and the cluster already spreads the work)."""
    old = os.environ.get("GRIDGIS_WORKERS")
    os.environ["GRIDGIS_WORKERS"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("GRIDGIS_WORKERS", None)
        else:
            os.environ["GRIDGIS_WORKERS"] = old


def _suspicious(keys: list[str], dask_scheduler=None) -> dict[str, int]:
    """On the scheduler: how many workers died while running each task."""
    tasks = dask_scheduler.tasks
    return {k: int(tasks[k].suspicious) for k in keys if k in tasks}


def _attempt(topic: str, key: str, fn: Callable, *args: Any) -> Any:
    """Run one partition on a worker, recording the attempt (for the run report)."""
    try:
        from distributed import get_worker

        get_worker().log_event(topic, {"partition": key, "pid": os.getpid()})
    except (ImportError, ValueError):  # pragma: no cover - not on a worker
        pass
    with _single_process():
        return fn(*args)


class _Runner:
    """Submits partitions with retries, gathers them in order, fills the report."""

    def __init__(self, client: Client, analysis: str, rules: ClusterRules) -> None:
        from gridgis.cluster import n_workers

        self.client = client
        self.rules = rules
        self.topic = f"gridgis-{analysis}-{uuid.uuid4().hex[:8]}"
        self.report = RunReport(analysis, workers=n_workers(client))
        self.start = time.perf_counter()

    def broadcast(self, value: Any) -> Any:
        """Send ``value`` (sent whole) to every worker once; a future. Each worker holds a
        copy, so a worker lost mid-run does not lose it. (Inputs of one partition travel
        with its task instead, so a retry can resend them.)"""
        return self.client.scatter([value], broadcast=True, hash=False)[0]

    def run(self, fn: Callable, items: Sequence[tuple[str, tuple]]) -> list[Any]:
        """``fn(*args)`` for every ``(key, args)`` on the cluster; results in order.

        Raises
        ------
        PartitionError
            When a partition fails after ``rules.retries`` retries (or its worker keeps
            dying): the message names it and the cause.
        """
        futures = [
            self.client.submit(
                _attempt,
                self.topic,
                key,
                fn,
                *args,
                key=f"{self.topic}-{key}",
                retries=self.rules.retries,
                pure=False,
            )
            for key, args in items
        ]
        self.report.partitions += len(items)
        try:
            return self.client.gather(futures)
        except Exception as exc:
            failed = [f.key for f in futures if f.status == "error"] or ["?"]
            self._lost([f.key for f in futures])
            self._count()
            raise PartitionError(
                f"{self.report.analysis}: partition {failed[0].removeprefix(self.topic + '-')}"
                f" failed after {self.rules.retries} retries ({type(exc).__name__}: {exc}); "
                "nothing was written"
            ) from exc
        finally:
            self._lost([f.key for f in futures])
            for f in futures:
                f.release()

    def _lost(self, keys: list[str]) -> None:
        """Record partitions whose worker died while running them (the scheduler's
        ``suspicious`` count of the task): they ran again elsewhere."""
        got = self.client.run_on_scheduler(_suspicious, keys)
        for key, n in got.items():
            if n:
                name = key.removeprefix(self.topic + "-")
                self.report.lost[name] = max(self.report.lost.get(name, 0), int(n))

    def _count(self) -> None:
        counts: dict[str, int] = {}
        for _, msg in self.client.get_events(self.topic):
            counts[msg["partition"]] = counts.get(msg["partition"], 0) + 1
        for name, n in self.report.lost.items():
            counts[name] = max(counts.get(name, 0), n + 1)
        self.report.attempts = counts

    def finish(self) -> RunReport:
        self._count()
        self.report.seconds = time.perf_counter() - self.start
        if self.report.retried:
            log.warning(
                "%s: partitions retried: %s", self.report.analysis, ", ".join(self.report.retried)
            )
        return self.report


def _balanced_cuts(weights: np.ndarray, parts: int, breaks: np.ndarray | None = None) -> list:
    """Split positions 0..n-1 (already in the wanted order) into at most ``parts``
    contiguous ranges of about equal total weight, cutting only where ``breaks`` is True
    (default: anywhere). Returns a list of (start, stop)."""
    n = len(weights)
    if n == 0:
        return []
    ok = np.ones(n, bool) if breaks is None else np.asarray(breaks, bool)
    ok[0] = True
    cum = np.cumsum(np.asarray(weights, float))
    total = cum[-1] if cum[-1] > 0 else 1.0
    starts = [0]
    for k in range(1, max(1, parts)):
        goal = total * k / parts
        cand = np.flatnonzero(ok & (np.r_[0.0, cum[:-1]] >= goal))
        if len(cand) and cand[0] > starts[-1]:
            starts.append(int(cand[0]))
    return list(zip(starts, [*starts[1:], n], strict=True))


def n_workers_of(client: Client) -> int:
    from gridgis.cluster import n_workers

    return n_workers(client)


def _parts(client: Client, rules: ClusterRules, n_items: int) -> int:
    from gridgis.cluster import n_workers

    return max(1, min(n_items, n_workers(client) * rules.partitions_per_worker))


def _hilbert(xy: np.ndarray, bounds: Sequence[float]) -> np.ndarray:
    """Hilbert distance of points within ``bounds`` (geopandas' implementation)."""
    if len(xy) == 0:
        return np.empty(0, np.int64)
    pts = gpd.GeoSeries(shapely.points(xy))
    return np.asarray(pts.hilbert_distance(total_bounds=tuple(bounds), level=16), np.int64)


# ======================================================================================
# Delineation: blocks of whole communities
# ======================================================================================


def _delineate_block(shared: dict, block: tuple, settings: Settings, issued_at: str) -> tuple:
    from gridgis.delineate import delineate

    communities, buildings, previous, registry = block
    layers = {**shared["layers"], "communities": communities, "buildings": buildings}
    r = delineate(
        layers,
        settings,
        alignment=shared["alignment"],
        previous=previous,
        registry=registry,
        issued_at=issued_at,
    )
    codes = r.buildings[["grid_code", "community_code"]].reset_index(drop=True)
    return r.grids, codes, r.findings, r.params, r.registry


def _subset(frame, mask: np.ndarray):
    return frame.loc[mask].reset_index(drop=True) if frame is not None else None


def delineate_partitioned(
    client: Client,
    layers: dict[str, Any],
    settings: Settings = DEFAULT,
    alignment: dict[str, gpd.GeoDataFrame] | None = None,
    previous: gpd.GeoDataFrame | None = None,
    registry: pd.DataFrame | None = None,
    issued_at: str | None = None,
    rules: ClusterRules = CLUSTER,
) -> DelineationResult:
    """:func:`gridgis.delineate.delineate` on the cluster, one task per block of whole
    communities (consecutive in the layer's order, balanced by buildings).

    Each block gets its communities, the buildings they hold (the one point-in-polygon
    rule, ties to the smallest community code, as delineation itself locates them), and
    the previous grids and registry rows of its communities (block 0 also those of
    vanished communities, which the run retires). Roads, institutions and alignment
    layers go whole to every worker, once: delineation clips them per community through
    a spatial index whose order depends on the whole layer, so a cut-down copy could
    change the order of the atoms and with it the grids. Grids, findings, buildings and
    registry are put back together in the single-process order; ``params["cluster"]`` is
    the :class:`RunReport`.

    Parameters are those of :func:`gridgis.delineate.delineate` plus ``client`` and
    ``rules``. Equality with the single-process run holds when the whole city lies in one
    3-degree Gauss–Krüger zone (each block computes in the zone of its communities).
    """
    from datetime import UTC, datetime

    from gridgis.delineate import DelineationResult

    comm = layers.get("communities")
    buildings = layers.get("buildings")
    if comm is None or len(comm) == 0 or buildings is None or len(buildings) == 0:
        from gridgis.delineate import delineate

        return delineate(layers, settings, alignment, None, previous, registry, issued_at)
    issued_at = issued_at or datetime.now(UTC).isoformat(timespec="seconds")
    run = _Runner(client, "delineate", rules)
    crs = metric_crs_for(comm)
    cm = comm.to_crs(crs)
    pts = shapely.point_on_surface(buildings.to_crs(crs).geometry.to_numpy())
    b_area = points_in_polygons(
        pts, cm.geometry.to_numpy(), rank_of(cm["community_code"].astype(str).to_numpy())
    )
    per_comm = np.bincount(b_area[b_area >= 0], minlength=len(comm)) + 1
    blocks = _balanced_cuts(per_comm, _parts(client, rules, len(comm)))
    ccodes = comm["community_code"].astype(str).to_numpy()
    others = {k: v for k, v in layers.items() if k not in ("communities", "buildings")}
    shared = run.broadcast({"layers": others, "alignment": alignment})
    items = []
    for k, (a, b) in enumerate(blocks):
        block = _delineate_block_inputs(layers, previous, registry, ccodes, b_area, a, b, k == 0)
        items.append((f"block-{k}", (shared, block, settings, issued_at)))
    parts = run.run(_delineate_block, items)
    out = _merge_delineation(parts, buildings, b_area, blocks)
    out["params"]["cluster"] = run.finish().as_dict()
    return DelineationResult(**out)


def _delineate_block_inputs(
    layers, previous, registry, ccodes, b_area, a: int, b: int, first: bool
) -> tuple:
    """Communities ``a .. b-1``, their buildings, previous grids and registry rows."""
    block = layers["communities"].iloc[a:b].reset_index(drop=True)
    buildings = _subset(layers["buildings"], (b_area >= a) & (b_area < b))
    codes = set(ccodes[a:b])
    prev = reg = None
    if previous is not None and len(previous):
        pc = _community_of(previous)
        keep = pc.isin(codes) | (first & ~pc.isin(set(ccodes)))
        prev = _subset(previous, keep.to_numpy())
    if registry is not None and len(registry):
        rc = registry["grid_code"].astype(str).str[:12]
        keep = rc.isin(codes) | (first & ~rc.isin(set(ccodes)))
        reg = _subset(registry, keep.to_numpy())
    return block, buildings, prev, reg


def _community_of(grids: pd.DataFrame) -> pd.Series:
    if "community_code" in grids:
        return grids["community_code"].astype(str)
    return grids["grid_code"].astype(str).str[:12]


def _concat_like(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate pieces the way one frame built from all rows at once would come out:
    ``object`` columns (text mixed with missing values) are inferred again over all rows,
    as the DataFrame constructor does (``str`` when any text, else ``object``)."""
    out = pd.concat(frames, ignore_index=True)
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = pd.Series(out[col].tolist(), index=out.index)
    return out


def _merge_delineation(parts: list, buildings, b_area, blocks) -> dict[str, Any]:
    grids = _concat_like([p[0] for p in parts])
    grids = grids.sort_values("grid_code").reset_index(drop=True)
    findings = _concat_like([p[2] for p in parts])
    registry = pd.concat([p[4] for p in parts if p[4] is not None], ignore_index=True)
    registry = registry.sort_values("grid_code").reset_index(drop=True)
    n = len(buildings)
    gcode = np.full(n, None, dtype=object)
    ccode = np.full(n, None, dtype=object)
    for (a, b), p in zip(blocks, parts, strict=True):
        pos = np.flatnonzero((b_area >= a) & (b_area < b))
        gcode[pos] = p[1]["grid_code"].astype(object).to_numpy()
        ccode[pos] = p[1]["community_code"].astype(object).to_numpy()
    out_b = buildings.copy()
    out_b["grid_code"] = pd.array(gcode, dtype="string")
    out_b["community_code"] = pd.array(ccode, dtype="string")
    return {
        "grids": gpd.GeoDataFrame(grids, geometry="geometry", crs=parts[0][0].crs),
        "buildings": out_b,
        "findings": findings,
        "params": dict(parts[0][3]),
        "registry": registry,
    }


# ======================================================================================
# Assignment: spatial chunks of the big layers, grids broadcast
# ======================================================================================

_CHUNKED = ("buildings", "institutions", "addresses")


def _assign_chunk(name: str, frame: gpd.GeoDataFrame, grids, communities, settings) -> tuple:
    from gridgis.assign import assign_all

    layers = {name: frame}
    if communities is not None:
        layers["communities"] = communities
    r = assign_all(layers, grids, settings)
    return getattr(r, name)


def _spatial_order(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Row positions in Hilbert order of their representative points (empty last)."""
    geoms = frame.geometry.to_numpy()
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    xy = np.zeros((len(frame), 2))
    if ok.any():
        xy[ok] = shapely.get_coordinates(shapely.point_on_surface(geoms[ok]))
        bounds = (*xy[ok].min(axis=0), *xy[ok].max(axis=0))
        key = np.full(len(frame), np.iinfo(np.int64).max)
        key[ok] = _hilbert(xy[ok], bounds)
    else:
        key = np.zeros(len(frame), np.int64)
    return np.argsort(key, kind="stable")


def assign_partitioned(
    client: Client,
    layers: dict[str, Any],
    grids: gpd.GeoDataFrame,
    settings: Settings = DEFAULT,
    rules: ClusterRules = CLUSTER,
) -> AssignResult:
    """:func:`gridgis.assign.assign_all` on the cluster.

    Buildings, institutions and addresses are cut into chunks of about
    ``rules.chunk_rows`` rows in Hilbert order of their representative points and
    assigned on the workers against the grids (and communities) sent once to every
    worker: every row's answer depends only on the row and the grids (the one
    point-in-polygon and largest-overlap rules of :mod:`gridgis.spatial`), so chunks put
    back in row order equal the single-process layers. Facilities, staff and the grid
    summaries (facility counts, grid heads and workers) are assigned once, in this process.
    The result's ``notes`` are those of the single-process run.
    """
    from gridgis.assign import ASSIGNED_LAYERS, assign_all

    run = _Runner(client, "assign", rules)
    small = {k: v for k, v in layers.items() if k not in _CHUNKED}
    central = assign_all(small, grids, settings)
    grids_f = run.broadcast(grids)
    comm = layers.get("communities")
    comm_f = run.broadcast(comm) if comm is not None else None
    items, spans = [], []
    for name in _CHUNKED:
        frame = layers.get(name)
        if frame is None:
            continue
        order = _spatial_order(frame) if len(frame) else np.zeros(0, np.int64)
        size = max(1, int(rules.chunk_rows))
        chunks = [order[i : i + size] for i in range(0, len(order), size)] or [order]
        for k, pos in enumerate(chunks):
            part = frame.iloc[np.sort(pos)]
            items.append((f"{name}-{k}", (name, part, grids_f, comm_f, settings)))
            spans.append((name, np.sort(pos)))
    results = run.run(_assign_chunk, items)
    notes = [n for n in central.notes if not n.startswith("facilities:")]
    layer_notes = {n.split(":")[0]: n for n in central.notes if n.startswith("facilities:")}
    for name in _CHUNKED:
        frame = layers.get(name)
        if frame is None:
            continue
        got = [(pos, r) for (nm, pos), r in zip(spans, results, strict=True) if nm == name]
        merged = _put_back(frame, got)
        setattr(central, name, merged)
        missing = int(merged["grid_code"].isna().sum())
        if missing:
            layer_notes[name] = (
                f"{name}: {missing} of {len(frame)} rows lie in no grid (grid_code left empty)"
            )
    ordered = [layer_notes[n] for n in ASSIGNED_LAYERS if n in layer_notes]
    central.notes = ordered + notes
    central.params = {"cluster": run.finish().as_dict()}  # type: ignore[attr-defined]
    return central


def _put_back(frame: gpd.GeoDataFrame, got: list[tuple[np.ndarray, gpd.GeoDataFrame]]):
    """Chunks (row positions, assigned rows) back into one frame in the original order."""
    if not got:
        return frame
    merged = pd.concat([r for _, r in got], ignore_index=True)
    pos = np.concatenate([p for p, _ in got])
    merged = merged.iloc[np.argsort(pos, kind="stable")]
    merged.index = frame.index
    return gpd.GeoDataFrame(merged, geometry=frame.geometry.name, crs=frame.crs)


# ======================================================================================
# Batch address lookup: chunks of queries
# ======================================================================================

_LOOKUPS: dict[str, Any] = {}
"""Per worker process: the :class:`~gridgis.lookup.Lookup` of each run, built once."""


def _lookup_chunk(token: str, layers: dict, settings: Settings, texts: list[str]):
    from gridgis.lookup import Lookup

    finder = _LOOKUPS.get(token)
    if finder is None:
        _LOOKUPS.clear()  # one run at a time per worker: drop older indexes
        finder = _LOOKUPS[token] = Lookup(**layers, settings=settings)
    return finder.addresses(texts)


def lookup_addresses_partitioned(
    client: Client,
    layers: dict[str, Any],
    texts: Sequence[str],
    settings: Settings = DEFAULT,
    rules: ClusterRules = CLUSTER,
) -> pd.DataFrame:
    """:meth:`gridgis.lookup.Lookup.addresses` on the cluster, in chunks of
    ``rules.chunk_rows`` queries.

    ``layers`` holds what :meth:`Lookup.from_store` reads (addresses, buildings, grids,
    communities, streets, staff; absent ones ``None``); they go once to every worker,
    which builds its index once per run. Answers are per query, so the chunks put back in
    order equal the single-process table.
    """
    names = ("addresses", "buildings", "grids", "communities", "streets", "staff")
    run = _Runner(client, "lookup", rules)
    token = uuid.uuid4().hex
    layers_f = run.broadcast({n: layers.get(n) for n in names})
    texts = list(texts)
    size = max(1, int(rules.chunk_rows) // 4)
    items = [
        (f"queries-{i // size}", (token, layers_f, settings, texts[i : i + size]))
        for i in range(0, len(texts), size)
    ]
    parts = run.run(_lookup_chunk, items)
    client.run(_LOOKUPS.clear)
    report = run.finish()
    if not parts:
        from gridgis.lookup import Lookup

        return Lookup(**{n: layers.get(n) for n in names}, settings=settings).addresses([])
    out = pd.concat(parts, ignore_index=True)
    out.attrs["cluster"] = report.as_dict()
    return out


# ======================================================================================
# Coverage: blocks of communities, each with a halo
# ======================================================================================


@dataclass
class _CoveragePlan:
    """What the whole city's coverage needs once (this process) before partitioning:
    the walking network's main component, the residential buildings, the facilities of
    the categories asked, the green spaces, and where every point meets the network."""

    settings: Settings
    cats: list[str]
    lc: list[str]
    net: Any  # RoadNetwork
    res: gpd.GeoDataFrame
    fac: gpd.GeoDataFrame | None
    fac_pts: np.ndarray
    greens: gpd.GeoDataFrame | None  # raw green_spaces rows, metric
    green_near: np.ndarray  # (k, 2): the boundary point nearest the network, per green
    entries: list[np.ndarray]
    points: np.ndarray  # every point compute_access attaches, in its order
    snaps: Any  # Snaps of ``points`` on the whole network
    extent: tuple[float, float, float, float]
    empty: dict[str, bool]
    sources: dict[str, int] = field(default_factory=dict)
    fac_tree: Any = None
    green_tree: Any = None
    gates: Any = None  # the gates layer (parks are entered at their gates)


def _nearest_on_network(polygons: np.ndarray, net) -> np.ndarray:
    """(k, 2) the boundary point of each polygon nearest the network (the third kind of
    entry point of :func:`gridgis.coverage.entry_points`)."""
    out = np.full((len(polygons), 2), np.nan)
    if len(polygons) == 0 or len(net.edge_geom) == 0:
        return out
    boundary = shapely.boundary(polygons)
    pi, ej = net.tree.query_nearest(boundary, all_matches=False)
    pts = shapely.get_point(shapely.shortest_line(boundary[pi], net.edge_geom[ej]), 0)
    out[pi] = shapely.get_coordinates(pts)
    return out


def _zones(net, points: np.ndarray):
    """Compound of each point when the network has walls (as attach_points snaps them)."""
    walls = getattr(net, "walls", None)
    return walls.zone_of(points) if walls is not None else None


def _coverage_plan(layers: dict, settings: Settings, categories) -> _CoveragePlan:
    from gridgis.coverage import (
        GREEN_CATEGORIES,
        _points_of,
        entry_points,
        green_targets,
        residential_buildings,
    )
    from gridgis.network import build_network, snap_points

    cov = settings.coverage
    net = build_network(
        layers["roads"], settings, compounds=layers.get("compounds"), gates=layers.get("gates")
    )
    crs = net.crs
    cats = list(categories) if categories is not None else list(cov.radius_m)
    unknown = [c for c in cats if c not in cov.radius_m]
    if unknown:
        raise KeyError(f"categories {unknown}: no service radius in settings.coverage.radius_m")
    lc = list(cov.life_circle_categories)
    lc = lc if set(lc) <= set(cats) else []
    res = residential_buildings(layers["buildings"], crs)
    facilities = layers.get("facilities")
    fac = None
    fac_pts = np.array([], dtype=object)
    if facilities is not None and len(facilities):
        fac = facilities.to_crs(crs).reset_index(drop=True)
        fac = fac.loc[fac["category"].isin([c for c in cats if c not in GREEN_CATEGORIES])]
        fac = fac.reset_index(drop=True)
        fac_pts = shapely.point_on_surface(fac.geometry.values)
    gs = layers.get("green_spaces")
    raw = gs.to_crs(crs).reset_index(drop=True) if gs is not None and len(gs) else None
    targets = green_targets(gs, crs, settings)
    gate_pts = _points_of(layers.get("gates"), crs)
    entries = [
        entry_points(targets[c].geometry.values, net, settings, gate_pts)[0]
        for c in GREEN_CATEGORIES
        if c in cats
    ]
    points = np.concatenate([res["point"].to_numpy(), fac_pts, *entries])
    empty = {
        c: (len(targets[c]) == 0)
        if c in GREEN_CATEGORIES
        else (fac is None or not (fac["category"] == c).any())
        for c in cats
    }
    geoms = [net.edge_geom, points]
    if raw is not None:
        geoms.append(raw.geometry.to_numpy())
    if fac is not None:
        geoms.append(fac.geometry.to_numpy())
    extent = tuple(shapely.total_bounds(np.concatenate(geoms)).tolist())
    plan = _CoveragePlan(
        settings=settings,
        cats=cats,
        lc=lc,
        net=net,
        res=res,
        fac=fac,
        fac_pts=fac_pts,
        greens=raw,
        green_near=_nearest_on_network(
            raw.geometry.to_numpy() if raw is not None else np.array([], object), net
        ),
        entries=entries,
        points=points,
        snaps=snap_points(net, points, cov.max_snap_m, _zones(net, points)),
        extent=extent,  # type: ignore[arg-type]
        empty=empty,
        fac_tree=shapely.STRtree(fac.geometry.to_numpy()) if fac is not None else None,
        green_tree=shapely.STRtree(raw.geometry.to_numpy()) if raw is not None else None,
        gates=layers.get("gates"),
    )
    plan.sources = _source_counts(plan)
    no_data = [c for c in cats if plan.sources[c] == 0]
    plan.lc = [c for c in lc if c not in no_data]
    return plan


def _coverage_blocks(plan: _CoveragePlan, communities, parts: int) -> list[np.ndarray]:
    """Residential buildings (positions) in blocks of whole communities, communities in
    Hilbert order of their representative point (buildings in none: of their own)."""
    res = plan.res
    xy = shapely.get_coordinates(res["point"].to_numpy())
    ci = np.full(len(res), -1, np.int64)
    key_xy = xy.copy()
    if communities is not None and len(communities):
        cm = communities.to_crs(plan.res.crs)
        geoms = cm.geometry.to_numpy()
        ci = points_in_polygons(
            res["point"].to_numpy(), geoms, rank_of(cm["community_code"].astype(str).to_numpy())
        )
        rep = shapely.get_coordinates(shapely.point_on_surface(geoms))
        key_xy[ci >= 0] = rep[ci[ci >= 0]]
    ex = plan.extent
    h = _hilbert(key_xy, ex)
    order = np.lexsort((np.arange(len(res)), ci, h))
    c_sorted = ci[order]
    breaks = np.r_[True, (c_sorted[1:] != c_sorted[:-1]) | (c_sorted[1:] < 0)]
    cuts = _balanced_cuts(np.ones(len(res)), parts, breaks)
    return [np.sort(order[a:b]) for a, b in cuts]


def _wider(need: np.ndarray, h: float) -> float:
    """The halo that makes a block's leftover buildings exact: their own distances (an
    upper bound of the city's) when all are known and beyond ``h``, else twice ``h`` (the
    halo always grows, so a building left for another reason — a green whose nearest
    road lies outside the halo — is not retried as it was)."""
    finite = need[np.isfinite(need)]
    wider = float(finite.max()) + 1.0 if len(finite) == len(need) else 0.0
    return wider if wider > h else 2.0 * h


def _coverage_payload(plan: _CoveragePlan, pos: np.ndarray, halo: float) -> dict[str, Any]:
    """The inputs of one partition: its buildings, and the network, facilities and greens
    within the halo (``halo`` m around the buildings' bounding box)."""
    snap = plan.settings.coverage.max_snap_m
    xy = shapely.get_coordinates(plan.res["point"].to_numpy()[pos])
    core = (*xy.min(axis=0), *xy.max(axis=0))
    f = (core[0] - halo, core[1] - halo, core[2] + halo, core[3] + halo)
    pad = halo + 2.0 * snap
    n_box = shapely.box(core[0] - pad, core[1] - pad, core[2] + pad, core[3] + pad)
    f_box = shapely.box(*f)
    edges = np.sort(plan.net.tree.query(n_box, predicate="intersects"))
    crs = plan.res.crs
    fac = plan.fac
    if fac is not None:
        fac = fac.iloc[np.sort(plan.fac_tree.query(f_box, predicate="intersects"))]
    greens = plan.greens
    near = np.zeros((0, 2))
    if greens is not None:
        gi = np.sort(plan.green_tree.query(f_box, predicate="intersects"))
        greens, near = greens.iloc[gi], plan.green_near[gi]
    on_edges = np.isin(plan.snaps.edge, edges)
    return {
        "pos": pos,
        "buildings": plan.res.iloc[pos][["building_id", "households", "geometry"]],
        "network": _Wire(_subnetwork(plan.net, edges)),
        "facilities": fac,
        "greens": greens,
        "gates": plan.gates,
        "green_near": near,
        "extra": shapely.get_coordinates(plan.points[on_edges]),
        "settings": plan.settings,
        "cats": plan.cats,
        "crs": crs,
        "f": f,
        "extent": plan.extent,
        "empty": plan.empty,
        "has_sources": {c: n > 0 for c, n in plan.sources.items()},
    }


class _Wire:
    """A RoadNetwork that pickles its edge lines as one WKB array (pickling shapely
    geometries one by one costs more than the partition's search)."""

    def __init__(self, net) -> None:
        self.net = net

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.net.__dict__)
        state["_tree"] = None
        state["edge_geom"] = shapely.to_wkb(self.net.edge_geom)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from gridgis.network import RoadNetwork

        state = dict(state)
        state["edge_geom"] = shapely.from_wkb(state["edge_geom"])
        self.net = RoadNetwork(**state)


def _subnetwork(net, edges: np.ndarray):
    """The city's walking network restricted to ``edges`` (sorted indices): the same
    edges, nodes, lengths, compounds and gates, nothing re-noded, repaired or dropped,
    node order kept."""
    from dataclasses import replace

    nodes = np.unique(np.concatenate([net.edge_u[edges], net.edge_v[edges]]))
    zone = getattr(net, "edge_zone", None)
    gate = getattr(net, "edge_gate", None)
    extra = {}
    if zone is not None:
        extra["edge_zone"] = zone[edges]
    if gate is not None:
        extra["edge_gate"] = gate[edges]
    if hasattr(net, "warnings"):
        extra["warnings"] = []
    return replace(
        net,
        node_xy=net.node_xy[nodes],
        edge_u=np.searchsorted(nodes, net.edge_u[edges]).astype(np.int64),
        edge_v=np.searchsorted(nodes, net.edge_v[edges]).astype(np.int64),
        edge_m=net.edge_m[edges],
        edge_geom=net.edge_geom[edges],
        findings=net.findings.iloc[0:0],
        stats={"kept_edges": int(len(edges)), "kept_nodes": int(len(nodes))},
        _tree=None,
        **extra,
    )


def _halo_margin(xy: np.ndarray, f: Sequence[float], extent: Sequence[float]) -> np.ndarray:
    """Distance (m) from each point to the halo's edge, on the sides where the city goes
    on beyond it (infinite where the halo already holds everything)."""
    sides = []
    if f[0] > extent[0]:
        sides.append(xy[:, 0] - f[0])
    if f[1] > extent[1]:
        sides.append(xy[:, 1] - f[1])
    if f[2] < extent[2]:
        sides.append(f[2] - xy[:, 0])
    if f[3] < extent[3]:
        sides.append(f[3] - xy[:, 1])
    return np.min(sides, axis=0) if sides else np.full(len(xy), np.inf)


def _distance_to(points: np.ndarray, geoms: np.ndarray) -> np.ndarray:
    out = np.full(len(points), np.inf)
    if len(geoms) and len(points):
        (pi, _), d = shapely.STRtree(geoms).query_nearest(
            points, all_matches=False, return_distance=True
        )
        out[pi] = d
    return out


def _exact_rows(acc, p: dict[str, Any]) -> np.ndarray:
    """Which buildings' results are the whole city's.

    A walking path no longer than ``m`` from a building stays within ``m`` of it. With
    ``m`` the distance to the halo's edge, every road, facility and green on such a path
    is in the partition (the network is the city's own, cut at the halo, not rebuilt),
    attached where the whole city attaches it, so a distance ≤ ``m`` found here is the
    city's, and so is "off the network" (no edge within the snap distance). ``m`` shrinks
    near greens whose nearest network point differs from the city's (their fallback entry
    is then not the city's). A building is kept when every category's walk and
    straight-line distance is within its margin, or missing because it is off the network
    or the category has nothing anywhere.
    """
    res = acc.buildings
    pts = res["point"].to_numpy()
    xy = shapely.get_coordinates(pts)
    margin_f = _halo_margin(xy, p["f"], p["extent"])
    margin = margin_f.copy()
    greens = p["greens"]
    if greens is not None and len(greens):
        local = _nearest_on_network(greens.geometry.to_numpy(), acc.graph.net)
        differs = ~np.all(local == p["green_near"], axis=1)
        margin = np.minimum(margin, _distance_to(pts, greens.geometry.to_numpy()[differs]))
    n = len(res)
    ok = np.ones(n, bool)
    need = np.zeros(n)
    table = acc.table
    cat = table["category"].to_numpy()
    for c in p["cats"]:
        rows = np.flatnonzero(cat == c)
        walk = table["walk_m"].to_numpy()[rows]
        straight = table["straight_m"].to_numpy()[rows]
        empty = p["empty"][c]
        off = acc.node < 0
        walk_ok = (walk <= margin) | (np.isnan(walk) & (off | empty))
        row_ok = walk_ok & ((straight <= margin_f) | empty)
        if (len(acc.sources.get(c, ())) > 0) != p["has_sources"][c]:
            row_ok[:] = False  # "no data" here but not in the city (or the reverse)
        ok &= row_ok
        # the partition's network is part of the city's: its distance is an upper bound
        # of the city's, so a halo that wide makes the row exact next time
        bound = np.where(off, straight, np.fmax(walk, straight))
        need = np.where(row_ok, need, np.fmax(need, np.nan_to_num(bound, nan=np.inf)))
    ok |= np.isinf(margin)
    return ok, need


def _coverage_part(p: dict[str, Any]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One partition: compute_access on its part of the city; the rows of buildings whose
    result is exact, with their position in the city's residential buildings; which
    buildings those are; for the others, the halo (m) that will make them exact (an
    upper bound of their distances; infinite when unknown)."""
    from gridgis.coverage import compute_access

    acc = compute_access(
        p["buildings"],
        None,  # type: ignore[arg-type]  # the network is given
        p["facilities"],
        p["greens"],
        p["settings"],
        p["cats"],
        crs=p["crs"],
        extra_points=shapely.points(p["extra"]),
        network=p["network"].net,
        gates=p.get("gates"),
    )
    ok, need = _exact_rows(acc, p)
    n = len(acc.buildings)
    reps = len(acc.table) // n if n else 0
    keep = np.tile(ok, reps)
    table = acc.table.loc[keep].assign(_pos=np.tile(p["pos"], reps)[keep])
    return table, ok, need[~ok]


def _coverage_findings(plan: _CoveragePlan) -> gpd.GeoDataFrame:
    """The findings compute_access makes: dropped pieces, buildings and facilities too
    far from the network (from the whole network's snaps)."""
    from gridgis.network import Snaps, far_snap_findings

    cov = plan.settings.coverage
    crs = plan.net.crs
    s = plan.snaps

    def part(a: int, b: int) -> Snaps:
        return Snaps(s.edge[a:b], s.offset_m[a:b], s.snap_m[a:b])

    nres, nfac = len(plan.res), len(plan.fac_pts)
    findings = [
        plan.net.findings,
        far_snap_findings(
            part(0, nres),
            plan.res["building_id"],
            "buildings",
            cov.max_snap_m,
            plan.res["point"].to_numpy(),
            crs,
        ),
    ]
    if plan.fac is not None and len(plan.fac):
        findings.append(
            far_snap_findings(
                part(nres, nres + nfac),
                plan.fac["facility_id"],
                "facilities",
                cov.max_snap_m,
                plan.fac_pts,
                crs,
            )
        )
    found = (
        pd.concat([f for f in findings if len(f)], ignore_index=True)
        if any(len(f) for f in findings)
        else findings[0]
    )
    return gpd.GeoDataFrame(found, geometry="geometry", crs=crs)


def _source_counts(plan: _CoveragePlan) -> dict[str, int]:
    """Search sources per category in the whole city: its facilities (or green entry
    points) that meet the network."""
    from gridgis.coverage import GREEN_CATEGORIES

    matched = plan.snaps.edge >= 0
    nres, nfac = len(plan.res), len(plan.fac_pts)
    green_cats = [c for c in GREEN_CATEGORIES if c in plan.cats]
    bounds = np.cumsum([nres + nfac, *[len(e) for e in plan.entries]])
    fac_cat = plan.fac["category"].to_numpy() if plan.fac is not None else np.array([])
    out = {}
    for c in plan.cats:
        if c in green_cats:
            i = green_cats.index(c)
            out[c] = int(matched[bounds[i] : bounds[i + 1]].sum())
        else:
            out[c] = int(matched[nres : nres + nfac][fac_cat == c].sum())
    return out


def _access_params(plan: _CoveragePlan) -> dict[str, Any]:
    """The parameters compute_access records, for the whole city."""
    from gridgis.coverage import coverage_params

    nres = len(plan.res)
    no_data = [c for c in plan.cats if plan.sources[c] == 0]
    lc_all = list(plan.settings.coverage.life_circle_categories)
    lc_all = lc_all if set(lc_all) <= set(plan.cats) else []
    params = coverage_params(plan.settings, plan.net.crs)
    params.update(
        {
            "categories": plan.cats,
            "life_circle_categories": plan.lc,
            "life_circle_no_data": [c for c in lc_all if c in no_data],
            "no_data_categories": no_data,
            "network": plan.net.stats,
            "warnings": list(getattr(plan.net, "warnings", [])),
            "buildings_residential": int(nres),
            "buildings_off_network": int((plan.snaps.edge[:nres] < 0).sum()),
            "sources": dict(plan.sources),
        }
    )
    return params


def coverage_partitioned(
    client: Client,
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    settings: Settings = DEFAULT,
    categories: list[str] | None = None,
    rules: ClusterRules = CLUSTER,
) -> CoverageResult:
    """:func:`gridgis.coverage.run_coverage` on the cluster: the same layers, row for row.

    Residential buildings are cut into blocks of whole communities in spatial order. Each
    block runs :func:`gridgis.coverage.compute_access` on a worker with the walking
    network's main component, the facilities and the green spaces within a halo of
    ``H`` m around the block (``H`` = the largest walking radius of
    ``settings.coverage``, life circle included, plus ``rules.halo_extra_m``); the network
    pieces of the halo carry every point the whole city attaches to them, so edges are
    split where the city splits them. A building's result is kept when it is provably the
    city's (:func:`_exact_rows`: its distances are within its margin to the halo's edge);
    the others run again with the halo doubled (at most ``rules.max_halo_rounds`` times,
    then on the whole city). Rates, gaps, norms and findings are then computed once,
    here, over the whole access table.

    Returns
    -------
    CoverageResult
        As :func:`gridgis.coverage.run_coverage`; ``access.graph`` is ``None`` (there is
        no single graph); ``params["cluster"]`` is the :class:`RunReport`.
    """
    from gridgis.coverage import LIFE_CIRCLE, Access, coverage_from_access, run_coverage

    for need in ("buildings", "roads"):
        if layers.get(need) is None or len(layers[need]) == 0:
            raise ValueError(f"coverage needs the '{need}' layer (missing or empty)")
    plan = _coverage_plan(layers, settings, categories)
    if len(plan.res) == 0:
        return run_coverage(layers, settings, categories)
    run = _Runner(client, "coverage", rules)
    cov = settings.coverage
    halo = max([*cov.radius_m.values(), cov.life_circle_15min_m]) + rules.halo_extra_m
    parts = max(1, n_workers_of(client) * rules.coverage_partitions_per_worker)
    blocks = _coverage_blocks(plan, layers.get("communities"), min(parts, len(plan.res)))
    pending = [(f"p{k}", pos, halo) for k, pos in enumerate(blocks)]
    whole = max(plan.extent[2] - plan.extent[0], plan.extent[3] - plan.extent[1]) + 1.0
    tables = []
    for rnd in range(rules.max_halo_rounds + 1):
        if not pending:
            break
        last = rnd == rules.max_halo_rounds
        items = [
            (f"{key}-r{rnd}", (_coverage_payload(plan, pos, whole if last else min(h, whole)),))
            for key, pos, h in pending
        ]
        results = run.run(_coverage_part, items)
        nxt = []
        for (key, pos, h), (table, ok, need) in zip(pending, results, strict=True):
            tables.append(table)
            if not ok.all():
                nxt.append((key, pos[~ok], _wider(need, h)))
        left = sum(len(pos) for _, pos, _ in nxt)
        halos = sorted({round(min(h, whole)) for _, _, h in pending})
        run.report.notes.append(
            f"round {rnd + 1}: halo {'/'.join(map(str, halos))} m, {len(pending)} "
            f"partitions, {left} buildings left"
        )
        pending = nxt
    order = {c: i for i, c in enumerate([*plan.cats, LIFE_CIRCLE])}
    table = pd.concat(tables, ignore_index=True)
    idx = np.lexsort((table["_pos"].to_numpy(), table["category"].map(order).to_numpy()))
    table = table.iloc[idx].drop(columns="_pos").reset_index(drop=True)
    access = Access(
        table=table,
        buildings=plan.res,
        graph=None,  # type: ignore[arg-type]
        node=np.where(plan.snaps.edge[: len(plan.res)] >= 0, 0, -1).astype(np.int64),
        sources={},
        findings=_coverage_findings(plan),
        params=_access_params(plan),
    )
    result = coverage_from_access(access, layers, settings, plan.net)
    result.params["cluster"] = run.finish().as_dict()
    return result


# ======================================================================================
# Routing for the workflows: single process without a cluster, partitioned with one
# ======================================================================================


def cluster_client(cluster):
    """A context yielding a Client (or None) from a spec, or the Client given."""
    from contextlib import nullcontext

    from gridgis.cluster import open_client

    if cluster is None or isinstance(cluster, str):
        return open_client(cluster)
    return nullcontext(cluster)


def delineate_on(cluster, layers: dict[str, Any], settings: Settings = DEFAULT, **kw: Any):
    """:func:`gridgis.delineate.delineate` without a cluster (``None``), else
    :func:`delineate_partitioned` (``cluster``: a spec or a connected Client). ``progress``
    is used by the single-process run only."""
    with cluster_client(cluster) as client:
        if client is None:
            from gridgis.delineate import delineate

            return delineate(layers, settings, **kw)
        kw.pop("progress", None)
        return delineate_partitioned(client, layers, settings, **kw)


def assign_on(cluster, layers: dict[str, Any], grids, settings: Settings = DEFAULT, **kw: Any):
    """:func:`gridgis.assign.assign_all` without a cluster, else :func:`assign_partitioned`."""
    with cluster_client(cluster) as client:
        if client is None:
            from gridgis.assign import assign_all

            return assign_all(layers, grids, settings, **kw)
        return assign_partitioned(client, layers, grids, settings)


def coverage_on(cluster, layers: dict[str, Any], settings: Settings = DEFAULT, **kw: Any):
    """:func:`gridgis.coverage.run_coverage` without a cluster, else
    :func:`coverage_partitioned`."""
    with cluster_client(cluster) as client:
        if client is None:
            from gridgis.coverage import run_coverage

            return run_coverage(layers, settings, **kw)
        kw.pop("progress", None)
        return coverage_partitioned(client, layers, settings, **kw)
