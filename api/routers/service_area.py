"""One facility's service area: the walkable area within its category's radius."""

from __future__ import annotations

import json
from typing import Annotated, Any

import shapely
from fastapi import APIRouter, HTTPException, Query

from api.deps import Ctx, FastJSON, records

router = APIRouter(tags=["grids"])

#: Layers the on-demand computation reads when the workspace has them.
INPUTS = ("buildings", "roads", "facilities", "green_spaces", "compounds", "gates")


def _feature(row: dict[str, Any], geom) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": row,
        "geometry": json.loads(shapely.to_geojson(geom)) if geom is not None else None,
    }


@router.get(
    "/coverage/service-area",
    summary="A facility's service area",
    description="The walkable area within the category's service radius of one facility "
    "(roads reached by walking, buffered; GeoJSON Feature, CRS84). Served from layer "
    "'service_areas' when the coverage analysis wrote it, otherwise computed on request.",
    responses={404: {"description": "No such facility, or no roads/buildings"}},
)
def service_area(
    ctx: Ctx,
    category: Annotated[str, Query(max_length=64, pattern=r"^[a-z_]+$")],
    facility_id: Annotated[str, Query(min_length=1, max_length=128)],
) -> FastJSON:
    store = ctx.store
    if category not in ctx.settings.coverage.radius_m:
        raise HTTPException(404, f"category '{category}' has no service radius")
    if ctx.has_layer("service_areas"):
        sa = store.read("service_areas", where={"facility_id": facility_id})
        sa = sa[sa["category"].astype(str) == category]
        if len(sa):
            row = records(sa.drop(columns="geometry"))[0]
            return FastJSON(_feature(row | {"source": "layer service_areas"}, sa.geometry.iloc[0]))
    for need in ("facilities", "roads", "buildings"):
        if not ctx.has_layer(need):
            raise HTTPException(404, f"the workspace has no '{need}' layer")
    fac = store.read("facilities", where={"facility_id": facility_id})
    if not len(fac) or str(fac["category"].iloc[0]) != category:
        raise HTTPException(404, f"no {category} facility '{facility_id}'")
    from gridgis.coverage import compute_access, service_areas

    layers = {n: store.read(n) for n in INPUTS if ctx.has_layer(n)}
    access = compute_access(
        layers["buildings"],
        layers["roads"],
        layers["facilities"],
        layers.get("green_spaces"),
        ctx.settings,
        categories=[category],
        compounds=layers.get("compounds"),
        gates=layers.get("gates"),
    )
    sa = service_areas(access, ctx.settings, facility_ids=[facility_id]).to_crs(4326)
    if not len(sa):
        raise HTTPException(404, f"facility '{facility_id}' is not on the walking network")
    row = records(sa.drop(columns="geometry"))[0]
    return FastJSON(_feature(row | {"source": "computed"}, sa.geometry.iloc[0]))
