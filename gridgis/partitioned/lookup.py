"""Partitioned batch address lookup: chunks of queries."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from gridgis.standards import CLUSTER, DEFAULT, ClusterRules, Settings

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

from gridgis.partitioned.runner import Runner

log = logging.getLogger(__name__)


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
    run = Runner(client, "lookup", rules)
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
