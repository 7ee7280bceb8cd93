"""Writes (bearer token required): upload a layer file, run delineation, coverage or
assignment, put staff on a grid. Each writes its layers in one atomic store write, one
write at a time; lookups are rebuilt afterwards."""

from __future__ import annotations

import codecs
import logging
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi import Path as PathParam

from api.deps import Ctx, FastJSON, require_token
from api.models import StaffAssignment, WriteResult
from gridgis.errors import GridgisError, LimitError
from gridgis.layers import SCHEMA, validate
from gridgis.standards import ServerRules

log = logging.getLogger(__name__)

router = APIRouter(
    tags=["writes"],
    dependencies=[Depends(require_token)],
    responses={
        401: {"description": "Missing or wrong bearer token"},
        413: {"description": "Body over the size limit"},
    },
)

#: Entries over this size are checked for their compression ratio (bytes).
_RATIO_FLOOR = 1024 * 1024

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


def _safe_name(name: str | None, rules: ServerRules) -> str:
    base = Path((name or "").replace("\\", "/")).name
    if not base or base in (".", "..") or "\x00" in base:
        raise HTTPException(422, "files: every file needs a name (e.g. 楼栋.shp)")
    if len(base.encode("utf-8")) > rules.max_filename_bytes:
        raise HTTPException(
            422,
            f"files: the file name '{base[:40]}…' is longer than "
            f"{rules.max_filename_bytes} bytes (server.max_filename_bytes)",
        )
    return base


class _Budget:
    """What is left of one upload's allowance: files and unpacked bytes."""

    def __init__(self, rules: ServerRules) -> None:
        self.rules = rules
        self.files = rules.max_upload_files
        self.bytes = rules.max_unpacked_bytes

    def take(self, files: int, size: int) -> None:
        self.files -= files
        self.bytes -= size
        if self.files < 0:
            raise LimitError(
                f"files: more than {self.rules.max_upload_files} files in one upload, "
                "archive entries included (server.max_upload_files)"
            )
        if self.bytes < 0:
            raise LimitError(
                f"files: more than {self.rules.max_unpacked_bytes} bytes once unpacked "
                "(server.max_unpacked_bytes)"
            )


def _check_archive(zf: zipfile.ZipFile, name: str, budget: _Budget) -> list[zipfile.ZipInfo]:
    """The archive's file entries, after checking from its directory — before anything
    is extracted — their count, total uncompressed size and compression ratios."""
    entries = [i for i in zf.infolist() if not i.is_dir()]
    limit = budget.rules.max_compression_ratio
    for info in entries:
        if info.file_size > _RATIO_FLOOR and info.file_size > limit * max(info.compress_size, 1):
            raise LimitError(
                f"files: {name}: entry '{info.filename[:80]}' expands "
                f"{info.file_size / max(info.compress_size, 1):.0f} times "
                f"(over server.max_compression_ratio = {limit:g})"
            )
    budget.take(len(entries), sum(i.file_size for i in entries))
    return entries


def _unzip(path: Path, into: Path, budget: _Budget) -> list[Path]:
    out = []
    try:
        with zipfile.ZipFile(path) as zf:
            for info in _check_archive(zf, path.name, budget):
                name = Path(info.filename.replace("\\", "/")).name
                if not name or name.startswith(".") or "\x00" in name:
                    continue
                if len(name.encode("utf-8")) > budget.rules.max_filename_bytes:
                    raise HTTPException(
                        422, f"files: {path.name}: an entry name is longer than allowed"
                    )
                target = into / name
                # streamed; zipfile stops at the declared size and checks the CRC
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                out.append(target)
    # NotImplementedError: zipfile's answer to an unsupported compression method
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise HTTPException(422, f"files: {path.name} is not a readable zip: {exc}") from exc
    except RuntimeError as exc:  # encrypted entries
        raise HTTPException(422, f"files: {path.name}: {exc}") from exc
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


def _check_options(
    layer: str | None, crs: str | None, encoding: str | None, field_map: str | None
) -> dict[str, str]:
    """422 naming the first unusable upload option; the parsed field map."""
    from gridgis.crs import parse_crs
    from gridgis.io import parse_field_map

    if layer is not None and layer not in SCHEMA:
        raise HTTPException(422, f"layer: unknown layer '{layer}' (known: {', '.join(SCHEMA)})")
    if crs is not None:
        try:
            parse_crs(crs)
        except ValueError as exc:
            raise HTTPException(422, f"crs: {exc}") from exc
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise HTTPException(422, f"encoding: unknown encoding '{encoding}'") from None
    try:
        return parse_field_map(field_map)
    except ValueError as exc:
        raise HTTPException(422, f"field_map: {exc}") from exc


def _save_sources(
    files: list[UploadFile], names: list[str], folder: Path, budget: _Budget
) -> list[Path]:
    """Save the uploaded files (archives unpacked within the budget) into ``folder``;
    the source files among them (422 when there is none)."""
    saved: list[Path] = []
    for f, name in zip(files, names, strict=True):
        target = folder / name
        with open(target, "wb") as out:
            shutil.copyfileobj(f.file, out, 1 << 20)
        if target.suffix.lower() == ".zip":
            saved += _unzip(target, folder, budget)
            target.unlink()
        else:
            budget.take(1, target.stat().st_size)
            saved.append(target)
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
    return sources


@router.post(
    "/upload",
    response_model=WriteResult,
    summary="Import layer files",
    description="Multipart upload of one or more files (a shapefile with its "
    ".dbf/.shx/.prj/.cpg, or a .zip of them; GeoPackage, GeoJSON, "
    "CSV of lon/lat, OSM). Validated like `gridgis import`; all "
    "layers written at once, rejected rows in layer 'rejects'. Into a layer "
    "that already holds rows, `mode` must say `append` or `replace` (else 409); an "
    "import that yields no valid row writes nothing (422).",
    responses={409: {"description": "A layer already holds rows and no mode was given"}},
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
    mode: Annotated[
        Literal["append", "replace"] | None,
        Form(
            description="Into a layer that holds rows: append (keys already stored are "
            "rejected) or replace"
        ),
    ] = None,
    crs_check: Annotated[
        bool,
        Form(
            description="Test the declared CRS against the alternatives by how the "
            "features sit against the stored layers (false: trust it)"
        ),
    ] = True,
) -> FastJSON:
    from gridgis.workflows.imports import import_files

    fmap = _check_options(layer, crs, encoding, field_map)
    if not files:
        raise HTTPException(422, "files: upload at least one file")
    names = [_safe_name(f.filename, ctx.rules) for f in files]
    with tempfile.TemporaryDirectory(prefix="gridgis-upload-") as tmp:
        sources = _save_sources(files, names, Path(tmp), _Budget(ctx.rules))
        with ctx.write_lock:
            try:
                result = import_files(
                    ctx.store,
                    [str(p) for p in sources],
                    ctx.settings,
                    mode=mode,
                    crs_check=crs_check,
                    layer=layer,
                    crs=crs,
                    encoding=encoding,
                    field_map=fmap or None,
                )
            except GridgisError as exc:
                text = str(exc).replace(tmp + "/", "")
                raise HTTPException(exc.http_status, f"files: {text}") from exc
            except (ValueError, UnicodeError, OverflowError, OSError, RuntimeError) as exc:
                # what a reader makes of a file it cannot read: the upload's fault
                log.info("upload refused: %s", exc, exc_info=True)
                text = str(exc).replace(tmp + "/", "")
                raise HTTPException(422, f"files: {text}") from exc
            finally:
                ctx.changed()
    done = result.to_dict()
    return FastJSON(
        {
            "operation": "upload",
            "layers": {name: o.after for name, o in result.layers.items()},
            "notes": [n.replace(tmp + "/", "") for n in result.notes],
            "summary": "; ".join(result.summary())
            + (" (rejected rows: see collection 'rejects')" if done["rejected_rows"] else ""),
            "import": {k: v for k, v in done.items() if k != "notes"},
        }
    )


def _layers(ctx, names: tuple[str, ...]) -> dict[str, Any]:
    present = set(ctx.layers())
    return {n: ctx.store.read(n) for n in names if n in present}


def _run_job(ctx, job: str) -> FastJSON:
    """Run workflow *job* (``gridgis.workflows.<job>``) on the served workspace under the
    write lock; a missing input layer is 409, other library errors their type's status."""
    from gridgis import workflows
    from gridgis.errors import GridgisError, NotFoundError

    with ctx.write_lock:
        try:
            result = getattr(workflows, job)(ctx.store, ctx.settings)
        except NotFoundError as exc:  # a missing input layer
            raise HTTPException(409, str(exc)) from exc
        except (GridgisError, ValueError) as exc:
            status = exc.http_status if isinstance(exc, GridgisError) else 409
            raise HTTPException(status, str(exc)) from exc
        ctx.changed()
        return FastJSON(result.to_json())


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
    return _run_job(ctx, "delineate")


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
    return _run_job(ctx, "coverage")


@router.post(
    "/jobs/assign",
    response_model=WriteResult,
    summary="Assign to grids",
    description="Put buildings, facilities, institutions, addresses and staff in "
    "their grid (as `gridgis assign`).",
    responses={409: {"description": "No grids layer"}},
)
def run_assign(ctx: Ctx) -> FastJSON:
    return _run_job(ctx, "assign")


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
        answer = _write(
            ctx,
            "assign staff",
            {"staff": staff},
            {"operation": "assign staff", "grid_code": grid_code},
            summary=f"{len(body.staff)} people on grid {grid_code}",
        )
        # the grids' staff columns (grid_head, grid_workers) are derived: refreshed at once
        from gridgis import workflows

        workflows.refresh(
            ctx.store, ctx.settings, command="assign staff", parameters={"grid_code": grid_code}
        )
        ctx.changed()
        return answer
