"""Writes (bearer token required): upload a layer file, run delineation, coverage or
assignment, put staff on a grid. Each writes its layers in one atomic store write, one
write at a time; lookups are rebuilt afterwards."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi import Path as PathParam

from api.deps import Ctx, FastJSON, require_token
from api.models import StaffAssignment, WriteResult
from gridgis.layers import SCHEMA, LayerError, validate

router = APIRouter(
    tags=["writes"],
    dependencies=[Depends(require_token)],
    responses={
        401: {"description": "Missing or wrong bearer token"},
        413: {"description": "Body over the size limit"},
    },
)

#: Files that accompany a source file but are not sources themselves.
SIDECARS = {".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".xml", ".qmd", ".fix"}
SOURCES = {
    ".shp",
    ".gpkg",
    ".geojson",
    ".json",
    ".csv",
    ".txt",
    ".tsv",
    ".kml",
    ".gml",
    ".fgb",
    ".osm",
    ".pbf",
    ".gdb",
}


def _safe_name(name: str | None) -> str:
    base = Path((name or "").replace("\\", "/")).name
    if not base or base in (".", "..") or "\x00" in base:
        raise HTTPException(422, "files: every file needs a name (e.g. 楼栋.shp)")
    return base


def _unzip(path: Path, into: Path) -> list[Path]:
    out = []
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                name = Path(info.filename.replace("\\", "/")).name
                if not name or name.startswith("."):
                    continue
                target = into / name
                with zf.open(info) as src, open(target, "wb") as dst:
                    dst.write(src.read())
                out.append(target)
    except zipfile.BadZipFile as exc:
        raise HTTPException(422, f"files: {path.name} is not a readable zip: {exc}") from exc
    return out


def _write(
    ctx,
    operation: str,
    frames: dict[str, Any],
    params: dict[str, Any],
    notes: list[str] | None = None,
    summary: str | None = None,
) -> FastJSON:
    ctx.store.write_many(frames, params=params)
    ctx.changed()
    return FastJSON(
        {
            "operation": operation,
            "layers": {k: len(v) for k, v in frames.items()},
            "notes": notes or [],
            "summary": summary,
        }
    )


@router.post(
    "/upload",
    response_model=WriteResult,
    summary="Import layer files",
    description="Multipart upload of one or more files (a shapefile with its "
    ".dbf/.shx/.prj/.cpg, or a .zip of them; GeoPackage, GeoJSON, "
    "CSV of lon/lat, OSM). Validated like `gridgis import`; all "
    "layers written at once, rejected rows in layer 'rejects'.",
)
def upload(
    ctx: Ctx,
    files: Annotated[list[UploadFile], File(description="Source files")],
    layer: Annotated[
        str | None, Form(description="Canonical layer (buildings, roads…)", max_length=40)
    ] = None,
    crs: Annotated[
        str | None, Form(description="wgs84, cgcs2000, gcj02, bd09 or EPSG:n", max_length=40)
    ] = None,
    encoding: Annotated[str | None, Form(max_length=40)] = None,
    field_map: Annotated[
        str | None, Form(description="canonical=source,… e.g. households=HH_NUM", max_length=2000)
    ] = None,
) -> FastJSON:
    from gridgis.io import import_into, parse_field_map

    if layer is not None and layer not in SCHEMA:
        raise HTTPException(422, f"layer: unknown layer '{layer}' (known: {', '.join(SCHEMA)})")
    if crs is not None:
        from gridgis.crs import parse_crs

        try:
            parse_crs(crs)
        except ValueError as exc:
            raise HTTPException(422, f"crs: {exc}") from exc
    if encoding is not None:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise HTTPException(422, f"encoding: unknown encoding '{encoding}'") from None
    try:
        fmap = parse_field_map(field_map)
    except ValueError as exc:
        raise HTTPException(422, f"field_map: {exc}") from exc
    if not files:
        raise HTTPException(422, "files: upload at least one file")
    with tempfile.TemporaryDirectory(prefix="gridgis-upload-") as tmp:
        folder = Path(tmp)
        saved: list[Path] = []
        for f in files:
            target = folder / _safe_name(f.filename)
            with open(target, "wb") as out:
                while chunk := f.file.read(1 << 20):
                    out.write(chunk)
            saved += _unzip(target, folder) if target.suffix.lower() == ".zip" else [target]
        sources = [
            p
            for p in saved
            if p.suffix.lower() not in SIDECARS
            and (p.suffix.lower() in SOURCES or p.name.lower().endswith(".osm.pbf"))
        ]
        if not sources:
            raise HTTPException(
                422,
                "files: no source file among "
                f"{', '.join(p.name for p in saved)} (need .shp, "
                ".gpkg, .geojson, .csv, .osm.pbf …)",
            )
        with ctx.write_lock:
            try:
                report = import_into(
                    ctx.store,
                    [str(p) for p in sources],
                    layer=layer,
                    crs=crs,
                    encoding=encoding,
                    field_map=fmap or None,
                    settings=ctx.settings,
                )
            except (LayerError, ValueError, UnicodeError) as exc:
                raise HTTPException(422, f"files: {str(exc).replace(tmp + '/', '')}") from exc
            ctx.changed()
    counts = {name: len(v.data) for name, v in report.layers.items()}
    notes = [n.replace(tmp + "/", "") for v in report.layers.values() for n in v.notes]
    rejected = {name: len(v.rejects) for name, v in report.layers.items() if len(v.rejects)}
    return FastJSON(
        {
            "operation": "upload",
            "layers": counts,
            "notes": notes,
            "summary": (
                f"rejected rows: {rejected} (see collection 'rejects')"
                if rejected
                else "no rows rejected"
            ),
        }
    )


def _layers(ctx, names: tuple[str, ...]) -> dict[str, Any]:
    present = set(ctx.layers())
    return {n: ctx.store.read(n) for n in names if n in present}


@router.post(
    "/jobs/delineate",
    response_model=WriteResult,
    summary="Delineate grids",
    description="Divide every community into 250–500-household grids (rules from "
    "the server's settings) and assign buildings, facilities, "
    "institutions, addresses and staff to them, as `gridgis "
    "delineate`; writes grids, the assigned layers, "
    "delineation_findings and code_registry. Codes of unchanged "
    "grids are kept.",
    responses={409: {"description": "Missing input layers"}},
)
def run_delineate(ctx: Ctx) -> FastJSON:
    from gridgis import workflows
    from gridgis.errors import GridgisError, NotFoundError

    with ctx.write_lock:
        try:
            result = workflows.delineate(ctx.store, ctx.settings)
        except NotFoundError as exc:  # a missing input layer
            raise HTTPException(409, str(exc)) from exc
        except (GridgisError, ValueError) as exc:
            status = exc.http_status if isinstance(exc, GridgisError) else 409
            raise HTTPException(status, str(exc)) from exc
        ctx.changed()
        return FastJSON(result.to_json())


@router.post(
    "/jobs/coverage",
    response_model=WriteResult,
    summary="Compute coverage",
    description="Walking-network access of every residential building to each "
    "facility category; coverage rates per street/community/grid, "
    "gaps and norms.",
    responses={409: {"description": "Missing input layers"}},
)
def run_coverage_job(ctx: Ctx) -> FastJSON:
    from gridgis import workflows
    from gridgis.errors import GridgisError, NotFoundError

    with ctx.write_lock:
        try:
            result = workflows.coverage(ctx.store, ctx.settings)
        except NotFoundError as exc:  # a missing input layer
            raise HTTPException(409, str(exc)) from exc
        except (GridgisError, ValueError) as exc:
            status = exc.http_status if isinstance(exc, GridgisError) else 409
            raise HTTPException(status, str(exc)) from exc
        ctx.changed()
        return FastJSON(result.to_json())


@router.post(
    "/jobs/assign",
    response_model=WriteResult,
    summary="Assign to grids",
    description="Put buildings, facilities, institutions, addresses and staff in "
    "their grid (as `gridgis assign`).",
    responses={409: {"description": "No grids layer"}},
)
def run_assign(ctx: Ctx) -> FastJSON:
    from gridgis import workflows
    from gridgis.errors import GridgisError, NotFoundError

    with ctx.write_lock:
        try:
            result = workflows.assign(ctx.store, ctx.settings)
        except NotFoundError as exc:  # a missing input layer
            raise HTTPException(409, str(exc)) from exc
        except (GridgisError, ValueError) as exc:
            status = exc.http_status if isinstance(exc, GridgisError) else 409
            raise HTTPException(status, str(exc)) from exc
        ctx.changed()
        return FastJSON(result.to_json())


@router.post(
    "/grids/{grid_code}/staff",
    response_model=WriteResult,
    summary="Put staff on a grid",
    description="Adds or replaces (by staff_id) people responsible for a grid: "
    "grid_head 网格长, grid_worker 网格员…",
    responses={404: {"description": "No such grid"}},
)
def assign_staff(
    grid_code: Annotated[str, PathParam(pattern=r"^[0-9]{15}$")],
    body: StaffAssignment,
    ctx: Ctx,
) -> FastJSON:
    with ctx.write_lock:
        if "grids" not in ctx.layers():
            raise HTTPException(404, "no 'grids' layer: run POST /jobs/delineate first")
        found, _ = ctx.store.read_page("grids", where={"grid_code": grid_code}, limit=1)
        if not len(found):
            raise HTTPException(404, f"no grid '{grid_code}'")
        community = (
            str(found["community_code"].iloc[0]) if "community_code" in found else grid_code[:12]
        )
        new = pd.DataFrame(
            [
                {**p.model_dump(), "grid_code": grid_code, "community_code": community}
                for p in body.staff
            ]
        )
        if new["staff_id"].duplicated().any():
            raise HTTPException(422, "staff.staff_id: each person once")
        v = validate(new, "staff", source="request body", settings=ctx.settings)
        if len(v.rejects):
            r = v.rejects.iloc[0]
            raise HTTPException(422, f"staff.{int(r['row']) - 1}.{r['field']}: {r['reason']}")
        old = pd.DataFrame(ctx.store.read("staff")) if "staff" in ctx.layers() else None
        if old is not None and len(old):
            keep = old[~old["staff_id"].isin(v.data["staff_id"])]
            staff = pd.concat([keep, v.data], ignore_index=True)
            staff = validate(staff, "staff", source="staff", settings=ctx.settings).data
        else:
            staff = v.data
        return _write(
            ctx,
            "assign staff",
            {"staff": staff},
            {"operation": "assign staff", "grid_code": grid_code},
            summary=f"{len(body.staff)} people on grid {grid_code}",
        )
