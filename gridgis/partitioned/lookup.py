"""Partitioned batch address lookup: each worker holds the address index of its shards.

The addresses are cut into shards of whole districts (:func:`shard_rows`), each kept in
its rows' order. A shard's index (:class:`~gridgis.address.AddressIndex` of its rows, and
the grids around them) is built once by a task on a worker and stays there as that task's
result: a worker holds the indexes of its shards only, so memory per worker falls as
workers are added. Every query then goes to every shard:

1. :func:`gridgis.address.match.probe` over the cheap first stages (exact key, door
   plate; :data:`FIRST_STAGES`) on each shard: where the first answer came from, the
   shard's answer, and the rows its look-ups returned;
2. the client takes the first position over the shards: one shard there, its answer is
   the answer; several, the query is matched again on an index of the rows those shards
   returned (a task of its own);
3. the queries no shard answered there are probed over every stage, and decided alike;
4. those no shard answered at all: the best fuzzy score by name over all shards, else by
   key.

:func:`~gridgis.address.match.probe` says why each step gives the single-process answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely

from gridgis.standards import CLUSTER, DEFAULT, ClusterRules, Settings

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd
    from distributed import Client

    from gridgis.partitioned.source import SharedRun

from gridgis.partitioned.runner import Runner, _attempt, balanced_cuts, hilbert_order

log = logging.getLogger(__name__)

#: Stages of :data:`gridgis.address.match.CASCADE` every shard tries first for every
#: query (the exact key, the door plate): cheap look-ups that answer most queries; the
#: other stages (road corrections, names) run only for the queries no shard answered there.
FIRST_STAGES = 2

#: Bytes of index per address, to tell Dask a shard's size (measured: about 2.5 KB).
INDEX_BYTES_PER_ADDRESS = 2_500


# ======================================================================================
# Shards: whole districts, rows in order
# ======================================================================================


def _districts(records: pd.DataFrame, layers: dict[str, Any]) -> np.ndarray | None:
    """The district of every address: its ``district`` field, else the county code (the
    first 6 digits of the code) of the community holding its point; ``None`` when
    neither is known."""
    if "district" in records.columns and records["district"].notna().any():
        return records["district"].astype("string").fillna("").to_numpy(dtype=object)
    communities = layers.get("communities")
    if communities is None or not len(communities) or "community_code" not in communities:
        return None
    from gridgis.lookup import Lookup

    # the codes and shapes only (the lookup's one point-in-polygon rule)
    shapes = communities[["community_code", communities.geometry.name]].assign(
        name=None, street_code=None
    )
    where = Lookup(communities=shapes).points(records["lon"], records["lat"])
    codes = where["community_code"].astype("string").fillna("")
    return codes.str.slice(0, 6).to_numpy(dtype=object)


def _spatial_blocks(xy: np.ndarray, parts: int) -> list[np.ndarray]:
    """``parts`` blocks of about equal rows of the points ``xy`` (lon, lat; rows without
    a point last), contiguous in Hilbert order; each block's positions ascending."""
    n = len(xy)
    ok = np.isfinite(xy).all(axis=1)
    h = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    if ok.any():
        good = xy[ok]
        bounds = (*good.min(axis=0), *good.max(axis=0))
        h[ok] = hilbert_order(good, bounds)
    order = np.argsort(h, kind="stable")
    return [np.sort(order[a:b]) for a, b in balanced_cuts(np.ones(n), parts)]


def shard_rows(records: pd.DataFrame, layers: dict[str, Any], shards: int) -> list[np.ndarray]:
    """Row positions of each shard, ascending: whole districts (:func:`_districts`) packed
    into ``shards`` shards of about equal rows (largest district first into the smallest
    shard), or, without districts, ``shards`` contiguous spatial blocks (Hilbert order).
    A district holding more than a shard's share of the rows (one value in a ``district``
    field, or most rows blank) is first cut into spatial blocks of at most that share, so
    that no worker holds most of the index. Empty shards are dropped."""
    n = len(records)
    shards = max(1, min(int(shards), n))
    xy = records[["lon", "lat"]].to_numpy(dtype=float)
    keys = _districts(records, layers)
    if keys is None:
        return _spatial_blocks(xy, shards)
    codes, _ = pd.factorize(keys)
    share = -(-n // shards)
    for g in np.flatnonzero(np.bincount(codes) > share):
        rows = np.flatnonzero(codes == g)
        pieces = _spatial_blocks(xy[rows], -(-len(rows) // share))
        for piece in pieces[1:]:
            codes[rows[piece]] = codes.max() + 1
    sizes = np.bincount(codes)
    load = np.zeros(shards, dtype=np.int64)
    home = np.empty(len(sizes), dtype=np.int64)
    for g in np.argsort(-sizes, kind="stable"):
        s = int(np.argmin(load))
        home[g] = s
        load[s] += sizes[g]
    of_row = home[codes]
    return [np.flatnonzero(of_row == s) for s in range(shards) if load[s]]


def _grids_around(grids: gpd.GeoDataFrame | None, lon: np.ndarray, lat: np.ndarray):
    """The grids meeting the box of these points (every grid that may hold one of them),
    in their order; ``None`` without grids."""
    if grids is None or not len(grids):
        return None
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return grids.iloc[:0]
    box = shapely.box(lon[ok].min(), lat[ok].min(), lon[ok].max(), lat[ok].max())
    hit = np.unique(grids.sindex.query(box, predicate="intersects"))
    return grids.iloc[hit]


# ======================================================================================
# On the workers
# ======================================================================================


class _Shard:
    """One shard on a worker: its :class:`~gridgis.lookup.Lookup` (index of its rows, the
    grids around them) and the global position of each of its rows."""

    def __init__(self, records: pd.DataFrame, rows: np.ndarray, grids, settings: Settings):
        from gridgis.address import AddressIndex
        from gridgis.lookup import Lookup

        self.rows = np.asarray(rows, dtype=np.int64)
        self.lookup = Lookup(grids=grids, settings=settings)
        self.lookup.index = AddressIndex(records, settings)

    def __sizeof__(self) -> int:  # what Dask weighs before moving it: keep it in place
        return INDEX_BYTES_PER_ADDRESS * len(self.rows)


def _build_shard(records, rows: np.ndarray, grids, settings: Settings, shared=None) -> _Shard:
    """A shard's index, from its rows sent (a frame of :func:`layer_records`) or read from
    the shared store (:class:`~gridgis.partitioned.source.Rows`: the same rows, in stored
    order); grids likewise (read: every grid whose box meets the shard's)."""
    from gridgis.address.index import layer_records
    from gridgis.partitioned.source import Rows

    if isinstance(records, Rows):
        records = layer_records(records.read(shared)).reset_index(drop=True)
    if isinstance(grids, Rows):
        grids = grids.read(shared)
    return _Shard(records, rows, grids, settings)


def _probe_chunk(shard: _Shard, texts: Sequence[str], stages: int) -> dict[str, Any]:
    """The queries probed on one shard over the first ``stages`` stages: position of each
    (stage, at), the shard's answers (a batch table of the queries answered there, in
    order) and the global rows each one's look-ups returned (packed, :func:`_packed`)."""
    from gridgis.address.match import probe

    index = shard.lookup.index
    probes = [probe(index, t, stages) for t in texts]
    answered = [k for k, p in enumerate(probes) if p.match is not None]
    return {
        "stage": np.array([p.stage for p in probes], dtype=np.int16),
        "at": np.array([p.at for p in probes], dtype=np.int32),
        "answered": np.array(answered, dtype=np.int64),
        "table": shard.lookup.table([probes[k].match for k in answered]),
        "touched": _packed([p.touched for p in probes], shard.rows),
    }


def _packed(lists: list[list[int]], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lists of shard rows as (global rows of all of them, where each list starts)."""
    sizes = np.fromiter((len(t) for t in lists), dtype=np.int64, count=len(lists))
    flat = np.fromiter((r for t in lists for r in t), dtype=np.int64, count=int(sizes.sum()))
    return rows[flat], np.concatenate([[0], np.cumsum(sizes)])


def _joined(packed: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_packed` chunks joined in order (one flat array, where each list starts)."""
    flats = [flat for flat, _ in packed]
    base = np.cumsum([0, *(len(f) for f in flats)])
    starts = [at[:-1] + base[k] for k, (_, at) in enumerate(packed)]
    return np.concatenate([np.zeros(0, np.int64), *flats]), np.concatenate(
        [*starts, [base[-1]]]
    ).astype(np.int64)


def _fuzzy_chunk(shard: _Shard, texts: Sequence[str], by: str) -> np.ndarray:
    """The best fuzzy score of each query on one shard (NaN: none)."""
    from gridgis.address.match import fuzzy_best

    index = shard.lookup.index
    best = [fuzzy_best(index, t, by) for t in texts]
    return np.array([np.nan if b is None else b for b in best], dtype=float)


def _union_chunk(records: pd.DataFrame, grids, settings: Settings, texts: list[str]):
    """Queries answered by several shards: matched on an index of the rows they returned
    (global order), by the single-process code."""
    return _Shard(records, np.arange(len(records)), grids, settings).lookup.addresses(texts)


# ======================================================================================
# The client
# ======================================================================================


def _chunks(texts: Sequence[str], size: int) -> list[np.ndarray]:
    """Texts in chunks of ``size``, each an object array (Dask does not walk an array for
    futures as it walks a list: that walk cost the client seconds per million texts)."""
    return [np.array(texts[i : i + size], dtype=object) for i in range(0, len(texts), size)]


class _Rounds:
    """The client's side of one run: the shards on the cluster and the rounds on them."""

    def __init__(self, client, records, layers, settings, rules, shards, shared=None):
        self.run = Runner(client, "lookup", rules)
        self.client, self.records, self.settings, self.rules = client, records, settings, rules
        self.grids = layers.get("grids")
        self.size = max(1, int(rules.chunk_rows) // 4)
        self.parts = shard_rows(records, layers, shards or self.run.report.workers or 1)
        self.futures = [
            client.submit(
                _attempt,
                self.run.topic,
                f"shard-{s}",
                _build_shard,
                *self._inputs(rows, shared),
                settings,
                shared,
                key=f"{self.run.topic}-shard-{s}",
                retries=rules.retries,
                pure=False,
            )
            for s, rows in enumerate(self.parts)
        ]
        self.run.report.partitions += len(self.futures)
        self.run.report.notes.append(f"{len(self.parts)} shards of {len(records):,} addresses")
        self.counts = {"one shard": 0, "several shards": 0, "fuzzy": 0, "empty": 0}

    def _inputs(self, rows: np.ndarray, shared) -> tuple:
        """A shard's addresses, row positions and grids: sent with its task, or (on a
        shared store) which rows the worker reads itself."""
        from gridgis.partitioned.source import Rows, rows_box

        lon = self.records["lon"].to_numpy(float)[rows]
        lat = self.records["lat"].to_numpy(float)[rows]
        if shared is None:
            mine = self.records.iloc[rows].reset_index(drop=True)
            return mine, rows, _grids_around(self.grids, lon, lat)
        box = rows_box(np.column_stack([lon, lat, lon, lat]))
        addresses = (
            Rows("addresses", bbox=box, rows=rows)
            if shared.reads("addresses")
            else self.records.iloc[rows].reset_index(drop=True)
        )
        if self.grids is None or not shared.reads("grids") or box is None:
            return addresses, rows, _grids_around(self.grids, lon, lat)
        return addresses, rows, Rows("grids", bbox=box)

    def release(self) -> None:
        for f in self.futures:
            f.release()

    def _on_every_shard(self, label: str, fn, texts: list[str], arg) -> list[list]:
        """``fn(shard, chunk, arg)`` for every chunk of queries on every shard; per shard,
        the chunks' results in order."""
        chunks = _chunks(texts, self.size)
        items = [
            (f"{label}-{s}-{c}", (f, chunk, arg))
            for s, f in enumerate(self.futures)
            for c, chunk in enumerate(chunks)
        ]
        got = self.run.run(fn, items)
        n = len(chunks)
        return [got[s * n : (s + 1) * n] for s in range(len(self.futures))]

    def probe(self, texts: list[str], stages: int) -> list[dict]:
        """Every chunk of queries probed on every shard over the first ``stages`` stages;
        per shard, the chunks joined."""
        return [
            {
                "stage": np.concatenate([p["stage"] for p in parts]),
                "at": np.concatenate([p["at"] for p in parts]),
                "answered": np.concatenate(
                    [p["answered"] + k * self.size for k, p in enumerate(parts)]
                ),
                "table": pd.concat([p["table"] for p in parts], ignore_index=True),
                "touched": _joined([p["touched"] for p in parts]),
            }
            for parts in self._on_every_shard(f"probe{stages}", _probe_chunk, texts, stages)
        ]

    def fuzzy(self, texts: list[str], by: str) -> np.ndarray:
        """The best fuzzy score of each query over every shard (NaN: none)."""
        per_shard = [
            np.concatenate(parts)
            for parts in self._on_every_shard(f"fuzzy-{by}", _fuzzy_chunk, texts, by)
        ]
        stacked = np.vstack(per_shard)
        best = np.full(len(texts), np.nan)
        has = ~np.isnan(stacked).all(axis=0)
        best[has] = np.nanmax(stacked[:, has], axis=0)
        return best

    def union(self, texts: list[str], rows: list[np.ndarray], label: str) -> list[pd.DataFrame]:
        """Queries answered by several shards, in chunks of at most ``chunk_rows / 4``
        queries and about ``chunk_rows`` rows, each matched on an index of the rows its
        shards returned (:func:`_union_chunk`)."""
        lon = self.records["lon"].to_numpy(float)
        lat = self.records["lat"].to_numpy(float)
        sizes = np.array([len(r) for r in rows], dtype=np.int64)
        starts, held = [0], 0
        for k, n in enumerate(sizes.tolist()):
            if k > starts[-1] and (k - starts[-1] >= self.size or held + n > self.rules.chunk_rows):
                starts.append(k)
                held = 0
            held += n
        items = []
        for c, (a, b) in enumerate(zip(starts, [*starts[1:], len(texts)], strict=True)):
            mine = np.unique(np.concatenate(rows[a:b]))
            items.append(
                (
                    f"union-{label}-{c}",
                    (
                        self.records.iloc[mine].reset_index(drop=True),
                        _grids_around(self.grids, lon[mine], lat[mine]),
                        self.settings,
                        texts[a:b],
                    ),
                )
            )
        return self.run.run(_union_chunk, items)


def _decide(
    rounds: _Rounds, keys: list[str], got: list[dict], stages: int
) -> tuple[list[pd.DataFrame], np.ndarray, np.ndarray]:
    """Answers of the queries some shard answered within its first ``stages`` stages:
    ``(frames, where, rest)``, ``where[i] = (frame, row)`` of query ``i`` (-1: none),
    ``rest`` the queries no shard answered there."""
    from gridgis.address.match import EMPTY_QUERY

    n = len(keys)
    stage = np.vstack([g["stage"] for g in got]).astype(np.int64)
    pos = stage * (1 << 32) + np.vstack([g["at"] for g in got])
    winners = pos == pos.min(axis=0)
    n_win = winners.sum(axis=0)
    top = stage.min(axis=0)
    frames = [g["table"] for g in got]
    where = np.full((n, 2), -1, dtype=np.int64)
    slot = np.full((len(got), n), -1, dtype=np.int64)  # row of each answer in its table
    for s, g in enumerate(got):
        slot[s, g["answered"]] = np.arange(len(g["answered"]))
    alone = (top == EMPTY_QUERY) | ((n_win == 1) & (top < stages))
    by = np.argmax(winners, axis=0)  # the first shard at the first position
    one = np.flatnonzero(alone)
    where[one, 0] = by[one]
    where[one, 1] = slot[by[one], one]
    several = np.flatnonzero(~alone & (top < stages))
    if len(several):
        rows = []
        for i in several:
            mine = []
            for s in np.flatnonzero(winners[:, i]):
                flat, at = got[s]["touched"]
                mine.append(flat[at[i] : at[i + 1]])
            rows.append(np.concatenate(mine))
        tables = rounds.union([keys[i] for i in several], rows, str(stages))
        frames.append(pd.concat(tables, ignore_index=True))
        where[several, 0] = len(frames) - 1
        where[several, 1] = np.arange(len(several))
    counts = rounds.counts
    counts["one shard"] += int((alone & (top != EMPTY_QUERY)).sum())
    counts["several shards"] += len(several)
    counts["empty"] += int((top == EMPTY_QUERY).sum())
    return frames, where, np.flatnonzero(top == stages)


def _not_found(rounds: _Rounds, texts: list[str]) -> pd.DataFrame:
    """Queries no shard answered before the fuzzy search: not found, scored by the best
    fuzzy candidate by name over all shards, else by key."""
    from gridgis.address.policy import Rule
    from gridgis.lookup import batch_frame

    best = rounds.fuzzy(texts, "name")
    none = np.flatnonzero(np.isnan(best))
    if len(none):
        best[none] = rounds.fuzzy([texts[k] for k in none], "key")
    best = np.where(np.isnan(best), 0.0, best)
    m = len(texts)
    rounds.counts["fuzzy"] += m
    return batch_frame(
        np.full(m, None, dtype=object),
        np.full(m, np.nan),
        np.full(m, np.nan),
        np.full(m, None, dtype=object),
        ["none"] * m,
        [round(float(b), 1) for b in best],
        [False] * m,
        [Rule.NOT_FOUND.value] * m,
    )


def _answers(rounds: _Rounds, keys: list[str]) -> tuple[list[pd.DataFrame], np.ndarray]:
    """Every query's answer ``(frames, where)``: first the cheap stages on every shard
    (:data:`FIRST_STAGES`), then every stage for the queries none answered there, then
    the fuzzy round for those none answered at all."""
    from gridgis.address.match import FUZZY

    frames: list[pd.DataFrame] = []
    where = np.full((len(keys), 2), -1, dtype=np.int64)
    todo = np.arange(len(keys))
    for stages in (FIRST_STAGES, FUZZY):
        sub = [keys[i] for i in todo]
        got, w, rest = _decide(rounds, sub, rounds.probe(sub, stages), stages)
        done = np.flatnonzero(w[:, 0] >= 0)
        where[todo[done], 0] = w[done, 0] + len(frames)
        where[todo[done], 1] = w[done, 1]
        frames += got
        todo = todo[rest]
        if not len(todo):
            return frames, where
    frames.append(_not_found(rounds, [keys[i] for i in todo]))
    where[todo, 0] = len(frames) - 1
    where[todo, 1] = np.arange(len(todo))
    return frames, where


def _assemble(frames: list[pd.DataFrame], where: np.ndarray, inverse: np.ndarray):
    """The batch table: each query's row taken from its frame (built as
    :meth:`gridgis.lookup.Lookup.addresses` builds it)."""
    from gridgis.lookup import batch_frame

    sizes = [len(f) for f in frames]
    offset = np.cumsum([0, *sizes])[:-1]
    both = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(sizes) else None
    take = (offset[where[:, 0]] + where[:, 1])[inverse] if len(where) else np.zeros(0, int)

    def col(name: str):
        return both[name].to_numpy()[take] if both is not None else np.zeros(0, dtype=object)

    return batch_frame(
        col("address_id"),
        col("lon").astype(float),
        col("lat").astype(float),
        col("grid_code"),
        col("match_level").tolist(),
        col("match_score").tolist(),
        [bool(v) for v in col("confident")],
        col("rule").tolist(),
    )


def lookup_addresses_partitioned(
    client: Client,
    layers: dict[str, Any],
    texts: Sequence[str],
    settings: Settings = DEFAULT,
    rules: ClusterRules = CLUSTER,
    shards: int | None = None,
    shared: SharedRun | None = None,
) -> pd.DataFrame:
    """:meth:`gridgis.lookup.Lookup.addresses` on the cluster, each worker holding the
    index of its shards only (see the module notes): the same table, row for row.

    Parameters
    ----------
    client
        A connected Dask client.
    layers
        ``addresses`` (required) and ``grids`` (for grid codes; absent: ``None``); also
        ``communities``, whose county codes make the districts when the addresses have no
        ``district`` field. Other layers are not needed by the batch table.
    texts
        The address texts (a non-text entry is read as an empty text).
    rules
        ``chunk_rows / 4`` queries per task.
    shards
        Number of shards (default: one per worker).
    shared
        A run on a shared store (:func:`gridgis.partitioned.source.shared_run`): each
        worker reads its shard's addresses (by stored row) and the grids around them
        itself, instead of receiving them with its task.

    Returns
    -------
    DataFrame
        As :meth:`~gridgis.lookup.Lookup.addresses`; ``attrs["cluster"]`` the run report
        (its notes count the queries answered by one shard, by several and by the fuzzy
        round).
    """
    from gridgis.address.index import layer_records
    from gridgis.lookup import Lookup

    addresses = layers.get("addresses")
    if addresses is None or not len(addresses):
        return Lookup(settings=settings).addresses(texts)  # raises: nothing to match
    keys_all = [t if isinstance(t, str) else "" for t in texts]
    seen: dict[str, int] = {}  # each distinct text once, in first-seen order
    inverse = np.array([seen.setdefault(t, len(seen)) for t in keys_all], dtype=np.int64)
    keys = list(seen)
    if not keys:  # nothing to look up: the empty table, no shard built
        out = _assemble([], np.zeros((0, 2), dtype=np.int64), inverse)
        out.attrs["cluster"] = Runner(client, "lookup", rules).finish().as_dict()
        return out
    records = layer_records(addresses).reset_index(drop=True)
    rounds = _Rounds(client, records, layers, settings, rules, shards, shared)
    try:
        frames, where = _answers(rounds, keys)
    finally:
        rounds.release()
    out = _assemble(frames, where, inverse)
    report = rounds.run.finish()
    report.notes.append(
        "queries answered by " + ", ".join(f"{k}: {v:,}" for k, v in rounds.counts.items())
    )
    out.attrs["cluster"] = report.as_dict()
    out.attrs["cluster"]["answered_by"] = dict(rounds.counts)
    return out
