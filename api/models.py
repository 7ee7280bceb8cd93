"""Pydantic models at the edge of the HTTP API: what clients send and what they get.

GeoJSON bodies (features, feature collections) are returned as plain JSON for speed;
their shape is declared here for the OpenAPI document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gridgis.layers import STAFF_ROLES


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class Landing(BaseModel):
    title: str
    description: str
    links: list[Link]


class Conformance(BaseModel):
    conformsTo: list[str]


class Extent(BaseModel):
    spatial: dict[str, Any]


class Collection(BaseModel):
    id: str
    title: str
    description: str | None = None
    itemType: str = "feature"
    key: str | None = Field(
        None, description="Field whose value is the feature id; absent: the 1-based row number"
    )
    rows: int
    crs: list[str]
    storageCrs: str
    extent: Extent | None = None
    links: list[Link]


class Collections(BaseModel):
    collections: list[Collection]
    links: list[Link]


class Feature(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["Feature"] = "Feature"
    id: str | int | None = None
    geometry: dict[str, Any] | None = None
    properties: dict[str, Any]


class FeatureCollection(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]
    numberMatched: int
    numberReturned: int
    timeStamp: str
    links: list[Link]


class Health(BaseModel):
    status: Literal["ok"]
    backend: Literal["geopackage", "postgis"]
    layers: int
    writes_enabled: bool


class HealthError(BaseModel):
    status: Literal["error"]
    detail: str


class Person(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str | None = None
    role: str | None = None
    role_zh: str | None = None
    phone: str | None = Field(None, description="Only with the write token")


class PointAnswer(BaseModel):
    """The chain street → community → grid → people for a point."""

    model_config = ConfigDict(extra="allow")
    query: dict[str, Any]
    match_level: str
    lon: float | None = None
    lat: float | None = None
    building_id: str | None = None
    street: dict[str, Any] | None = None
    community: dict[str, Any] | None = None
    grid: dict[str, Any] | None = None
    people: list[Person] = []


class AddressAnswer(PointAnswer):
    """The matched standard address, its confidence and the chain."""

    query: Any = None
    match_score: float | None = None
    confident: bool = False
    address_id: str | None = None
    candidates: list[dict[str, Any]] = []


class GridReport(BaseModel):
    """One grid: its statistics and boundary, buildings, staff and coverage rows."""

    grid_code: str
    statistics: dict[str, Any]
    geometry: dict[str, Any] | None
    buildings: list[dict[str, Any]]
    staff: list[dict[str, Any]]
    coverage: list[dict[str, Any]]


class GridHistory(BaseModel):
    """Every dated version of one grid (layer ``grid_versions``), oldest first: version,
    valid_from, valid_to (empty while valid), households, area, the command, parameters
    and reason that made it, and its boundary (GeoJSON, CRS84)."""

    grid_code: str
    versions: list[dict[str, Any]]


class CoverageRows(BaseModel):
    level: str | None
    code: str | None
    rows: list[dict[str, Any]]


class StaffIn(BaseModel):
    """A person to put on a grid (网格长 grid_head, 网格员 grid_worker…)."""

    model_config = ConfigDict(extra="forbid")
    staff_id: str = Field(..., min_length=1, max_length=64, pattern=r"^[\w\-.]+$")
    name: str = Field(..., min_length=1, max_length=100)
    role: Literal[tuple(STAFF_ROLES)]  # type: ignore[valid-type]
    phone: str | None = Field(None, max_length=40, pattern=r"^[0-9+\- ()]*$")


class StaffAssignment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff: list[StaffIn] = Field(..., min_length=1, max_length=500)


class WriteResult(BaseModel):
    """What a write did: layers written with their row counts, and notes."""

    operation: str
    layers: dict[str, int]
    notes: list[str] = []
    summary: str | None = None
    import_: dict[str, Any] | None = Field(
        None,
        alias="import",
        description="Uploads: the write mode and, per layer, rows before, kept, added, "
        "rejected and after",
    )


class FieldProblem(BaseModel):
    """One invalid request field."""

    field: str = Field(..., description="Dotted name of the field, e.g. lon or staff.0.role")
    # "in" is a Python keyword: the JSON name is set by alias
    location: str | None = Field(None, alias="in", description="query, path, body…")
    message: str | None = None


class Problem(BaseModel):
    """Every error answer: what went wrong (naming the field, layer or limit) and, for
    invalid request fields, one entry per field."""

    detail: str
    errors: list[FieldProblem] | None = None
