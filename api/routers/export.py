"""``GET /export/{format}``: the exports of ``gridgis export`` over HTTP — the grid ledger
(xlsx, csv), the layers (shp, gpkg with QGIS styles, geojson) and the PDF boards and atlas.

Phone numbers of staff (personal data) are included only with ``with_personal=true`` AND
the bearer token; asking for them without it is 401, never a silent omission."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.deps import Authorised, Ctx

router = APIRouter(prefix="/export", tags=["export"])

MEDIA = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "gpkg": "application/geopackage+sqlite3",
    "pdf": "application/pdf",
    "zip": "application/zip",
}


def _bundle(files: list[Path], target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, f.name)
    return target


@router.get(
    "/{fmt}",
    summary="Export the workspace (ledger, GIS layers, PDF boards/atlas)",
    response_class=FileResponse,
    responses={
        200: {"description": "The file: xlsx, gpkg, pdf, or a zip of several files"},
        400: {"description": "PDF asked for without a code, or a code of the wrong length"},
        401: {"description": "Personal fields asked for without the token"},
        404: {
            "description": "The workspace lacks the layers the export needs, or no grid "
            "lies under the code"
        },
    },
)
def export(
    fmt: Literal["xlsx", "csv", "shp", "gpkg", "geojson", "pdf"],
    ctx: Ctx,
    authorised: Authorised,
    with_personal: Annotated[
        bool, Query(description="Include staff phone numbers (needs the bearer token)")
    ] = False,
    encoding: Annotated[
        Literal["utf-8", "gbk"], Query(description="Shapefile text encoding (.cpg)")
    ] = "utf-8",
    pdf: Annotated[
        Literal["boards", "atlas", "both"], Query(description="What the PDF export prints")
    ] = "boards",
    headers: Annotated[Literal["zh", "en"], Query(description="CSV header language")] = "zh",
    code: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{9}([0-9]{3}){0,2}$",
            description="PDF: the street (9 digits), community (12) or grid (15) code whose "
            "boards (and atlas) to print; required for PDF over HTTP (a whole city's boards "
            "take minutes: use `gridgis export --format pdf`)",
        ),
    ] = None,
) -> FileResponse:
    from gridgis.export import export_workspace
    from gridgis.maps import MAP_LAYERS
    from gridgis.workflows.outputs import grids_written_at

    if with_personal and not authorised:
        raise HTTPException(
            401,
            "personal fields need the bearer token (Authorization: Bearer <GRIDGIS_API_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if fmt == "pdf" and code is None:
        raise HTTPException(
            400,
            "PDF over HTTP needs code= (a street, community or grid code); the whole city's "
            "boards and atlas: gridgis export --format pdf",
        )
    present = set(ctx.layers())
    if "communities" not in present:
        raise HTTPException(404, "the workspace has no 'communities' layer to export")
    layers = {name: ctx.store.read(name) for name in MAP_LAYERS if name in present}
    tmp = Path(tempfile.mkdtemp(prefix="gridgis-export-"))
    cleanup = BackgroundTask(shutil.rmtree, tmp, ignore_errors=True)
    try:
        result = export_workspace(
            layers,
            fmt,
            tmp / "out",
            ctx.settings,
            with_personal=with_personal,
            city=str(ctx.store.meta().get("city", "")),
            shp_encoding=encoding,
            pdf=pdf,
            chinese_headers=headers == "zh",
            board_date=grids_written_at(ctx.store),
            code=code if fmt == "pdf" else None,
        )
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = result.files
    if len(files) == 1:
        path = files[0]
        kind = path.suffix.lstrip(".")
    else:
        path = _bundle(files, tmp / f"gridgis-{fmt}.zip")
        kind = "zip"
    return FileResponse(
        path,
        media_type=MEDIA.get(kind, "application/octet-stream"),
        filename=path.name,
        background=cleanup,
    )
