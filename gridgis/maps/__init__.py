"""Interactive maps: the three-level grid map, coverage, lookup and public boards.

Pure builders (GeoDataFrames in, :class:`folium.Map` or HTML out) in
:mod:`~gridgis.maps.levels`, :mod:`~gridgis.maps.coverage`, :mod:`~gridgis.maps.lookup`
and :mod:`~gridgis.maps.boards`; :func:`write_maps` writes the whole site of a workspace;
:func:`write_layer_styles` gives a GeoPackage QGIS styles with the same picture.
Pages load Leaflet from ``static/`` next to them (shipped in ``gridgis/static``), never
from a CDN, so they work offline; only base-map tiles come from the network.
"""

from gridgis.maps.boards import board_page
from gridgis.maps.common import (
    BASEMAPS,
    InlinePage,
    address_key,
    external_urls,
    iframe_html,
    inline_assets,
    new_map,
    prepare,
    render_page,
)
from gridgis.maps.coverage import coverage_map
from gridgis.maps.levels import community_map, index_map, street_map
from gridgis.maps.lookup import address_index, lookup_map
from gridgis.maps.qgis import write_layer_styles
from gridgis.maps.site import (
    MAP_LAYERS,
    MapSite,
    streets_from_communities,
    summarise,
    write_maps,
)

__all__ = [
    "BASEMAPS",
    "InlinePage",
    "MAP_LAYERS",
    "MapSite",
    "address_index",
    "address_key",
    "board_page",
    "community_map",
    "coverage_map",
    "external_urls",
    "iframe_html",
    "index_map",
    "inline_assets",
    "lookup_map",
    "new_map",
    "prepare",
    "render_page",
    "street_map",
    "streets_from_communities",
    "summarise",
    "write_layer_styles",
    "write_maps",
]
