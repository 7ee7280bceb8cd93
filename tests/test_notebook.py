"""The walkthrough notebook runs end to end (nbclient, a real kernel) within a time bound:
the Nanjing OSM extract when ../shared/data is present, the demo city otherwise."""

from __future__ import annotations

import html
import time
from pathlib import Path

import pytest

from gridgis.maps import external_urls

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "walkthrough.ipynb"
TIME_LIMIT_S = 300


def test_walkthrough_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("GRIDGIS_NOTEBOOK_OUT", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(
        nb,
        timeout=TIME_LIMIT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - t0
    assert elapsed < TIME_LIMIT_S
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "grids (" in text and "households per residential grid" in text
    iframes = [
        o
        for o in outputs
        if "text/html" in o.get("data", {}) and "<iframe srcdoc=" in o["data"]["text/html"]
    ]
    assert len(iframes) == 5  # index, street, community, coverage, board shown inline
    # the maps were written where the notebook was told, offline
    assert (tmp_path / "maps" / "index.html").exists()
    assert (tmp_path / "maps" / "static" / "leaflet" / "leaflet.js").exists()
    for frame in iframes:  # Leaflet is inlined: nothing to fetch
        page = html.unescape(frame["data"]["text/html"].split('srcdoc="', 1)[1])
        assert external_urls(page) == [] and 'src="static/' not in page
