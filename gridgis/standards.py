"""Planning rules as parameters: one place for every number gridgis applies.

Each rule of ``STANDARDS.md`` is a field below, grouped by topic, with its source in the
field's docstring ("policy text" = the national and city community-governance opinions,
2000–2018, the project was commissioned from). Analyses receive a :class:`Settings`
object; nothing else in the code holds a planning number.

Override in three ways, later ones winning:

>>> s = Settings()                                   # the defaults below
>>> s = Settings.from_toml("rules.toml")             # [grid] min_households = 200
>>> s = s.override({"grid.min_households": 200})     # dotted keys, e.g. from CLI flags

Units are in the field names (``_m``, ``_m2``, ``_kmh``) or docstrings.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GridRules:
    """Responsibility-grid (责任网格) delineation rules."""

    min_households: int = 250
    """Lower bound of households in a residential grid. Policy text: "250户以上"."""
    max_households: int = 500
    """Upper bound of households in a residential grid. Policy text: "500户以内"."""
    target_households: int = 375
    """Households a grid aims at, for balance inside the bounds (midpoint of the band)."""
    unit_min_area_m2: float = 20_000.0
    """Unit grid (单位网格): minimum area of an institution to be its own grid. Policy text
    lists "large in area and management scale"; 2 ha is the default threshold (parameter)."""
    unit_min_staff: int = 300
    """Unit grid: minimum staff (or students/beds) of an institution, when known."""
    unit_min_floor_area_m2: float = 30_000.0
    """Unit grid: minimum floor area of an institution, when staff is unknown."""
    unit_kinds: tuple[str, ...] = (
        "school",
        "university",
        "hospital",
        "campus",
        "factory",
        "market",
        "park",
        "government",
        "military",
        "industrial",
    )
    """Institution kinds allowed to become unit grids (policy text: compact, mainly
    non-residential, clear boundary against housing, stable over time)."""
    community_min_households: int = 1_000
    """Lower bound when gridgis itself has to make communities (``delineate --communities``)."""
    community_max_households: int = 3_000
    """Upper bound when gridgis has to make communities."""
    community_target_households: int = 2_500
    """Community size reference: about 2,500 households (Nanjing, Tongling policy text)."""
    avoid_road_classes: tuple[str, ...] = ("arterial",)
    """Road classes grid boundaries must not cross (policy text: boundaries follow roads)."""
    median_width_m: float = 40.0
    """Widest median strip (m) between the two carriageways of a divided road, for the
    crossings delineation reports and the audit's arterial crossings alike. A divided
    arterial is mapped as two one-way centrelines (OpenStreetMap draws each carriageway as
    its own way); the strip between them belongs to the grid on one side, so the nearer
    carriageway runs inside that grid along its edge. A stretch of an avoided-class road
    where, on one side, the grid ends within this distance and another avoided-class road
    (the other carriageway) lies within it is along a median, not a crossing
    (:func:`gridgis.audit.median_length`). Carriageway centrelines of a divided arterial
    lie a few to ~40 m apart (both inside its red line, 道路红线; 8–31 m on the Nanjing
    Xinjiekou OSM extract). Parameter, not law."""
    alignment_layers: tuple[str, ...] = (
        "residents_groups",
        "property_areas",
        "sanitation_areas",
        "health_areas",
        "police_areas",
        "school_catchments",
    )
    """Optional layers grid boundaries should follow (policy text lists these six)."""
    min_compactness: float = 0.45
    """Mean Polsby–Popper target for delineated grids (project quality target)."""
    recode_min_iou: float = 0.5
    """A re-delineated grid keeps its predecessor's code when IoU ≥ this (codes are printed
    on public boards, STANDARDS.md "Codes")."""
    assign_min_share: float = 0.9
    """A building, institution or polygonal facility goes to the grid holding the largest
    share of its area; below this share its ``grid_share`` is kept so the split is visible
    (issue 3: "the share kept when it is below 90%"). The audit calls a building "in two
    grids" when two or more grids each hold ≥ 1 − this share of it."""
    audit_sliver_m2: float = 1.0
    """Audit: gaps, overlaps and community-boundary excursions smaller than this (m²) are
    digitising slivers, not findings (issue 3: overlaps < 1 m²)."""
    audit_outside_share: float = 0.01
    """Audit: a grid crosses its community boundary when more than this share of its area
    (or more than ``audit_sliver_m2``) lies outside the community (issue 3, 1%)."""
    audit_road_tolerance_m: float = 15.0
    """Audit: a road centreline within this distance (m) of a grid boundary is taken to
    follow the boundary, not cross the grid (about half an arterial's red-line width; a
    hand-drawn boundary runs along either kerb). Parameter, not law."""
    min_crossing_m: float = 50.0
    """An avoided line running more than this length (m) through a grid's interior is a
    crossing: reported by the audit (avoided-class roads, away from the boundary) and by
    delineation (roads and alignment lines). Shorter runs are corners clipped at a
    junction, not a grid on both sides of the line. Parameter, not law."""


@dataclass(frozen=True)
class CodeRules:
    """Statistical division codes (统计用区划代码) and grid codes."""

    street_township_range: tuple[int, int] = (1, 99)
    """Township digits of a street (街道): 001–099."""
    town_township_range: tuple[int, int] = (100, 199)
    """Township digits of a town (镇): 100–199."""
    rural_township_range: tuple[int, int] = (200, 399)
    """Township digits of a township (乡): 200–399."""
    special_township_range: tuple[int, int] = (400, 599)
    """Township digits of special areas (development zones, farms): 400–599."""
    residents_committee_range: tuple[int, int] = (1, 199)
    """Village digits of a residents' committee (居委会, i.e. a community): 001–199."""
    villagers_committee_range: tuple[int, int] = (200, 399)
    """Village digits of a villagers' committee (村委会): 200–399."""
    quasi_residents_committee_range: tuple[int, int] = (400, 499)
    """Village digits of a unit like a residents' committee (类似居委会, e.g. an airport
    work-area community): 400–499 (NBS 统计用区划代码编制规则; 8,779 such codes in 2023)."""
    quasi_villagers_committee_range: tuple[int, int] = (500, 599)
    """Village digits of a unit like a villagers' committee (类似村委会, e.g. a farm's
    living area): 500–599 (NBS 统计用区划代码编制规则)."""
    urban_rural_classes: tuple[str, ...] = ("111", "112", "121", "122", "123", "210", "220")
    """The 3-digit urban-rural class; a separate field, never inferred from the code."""
    grid_sequence_range: tuple[int, int] = (1, 999)
    """Grid sequence digits inside a community (DB11/T 2157-2023 style 15-digit code)."""


@dataclass(frozen=True)
class StaffingRules:
    """Community staffing and service-facility norms."""

    service_floor_m2_per_100_households: float = 30.0
    """Community comprehensive service facility floor area ≥ 30 m² per 100 households
    (2017 national opinion; Chengdu 2017; 2022 complete-community notice)."""
    resident_activity_share: float = 0.60
    """Share of that area for residents' activities (2022 complete-community notice)."""
    community_office_min_m2: float = 300.0
    """Community office and service rooms ≥ 300 m² (Nanjing policy text)."""
    street_centre_min_m2: float = 1_500.0
    """Street community service centre ≥ 1,500 m² (Nanjing policy text)."""
    district_centre_min_m2: float = 5_000.0
    """District centre ≥ 5,000 m² (Nanjing policy text)."""
    village_office_min_m2: float = 600.0
    """Village office ≥ 600 m² (Nanjing policy text)."""
    households_per_worker: int = 300
    """Full-time community workers: 1 per 300 households (Nanjing policy text)."""
    min_workers_per_community: int = 6
    """At least 6 full-time workers per community (Nanjing policy text)."""
    committee_members: tuple[int, int] = (5, 9)
    """Residents' committee members, 5–9 (Organic Law of Urban Residents' Committees)."""
    committee_households: tuple[int, int] = (100, 700)
    """Households per residents' committee, 100–700 (by law)."""
    police_per_community: int = 1
    """One community police officer per community (一区一警)."""


@dataclass(frozen=True)
class CoverageRules:
    """Life circles, service radii and green-space access (GB 50180-2018, policy text)."""

    walk_speed_kmh: float = 4.5
    """Walking speed where minutes are used (parameter, default 4.5 km/h)."""
    life_circle_15min_m: float = 1_000.0
    """15-minute life circle walk, 800–1000 m (GB 50180-2018); the upper value is used."""
    life_circle_10min_m: float = 500.0
    """10-minute life circle walk, about 500 m (GB 50180-2018)."""
    life_circle_5min_m: float = 300.0
    """5-minute life circle walk, about 300 m (GB 50180-2018)."""
    radius_m: dict[str, float] = field(
        default_factory=lambda: {
            "kindergarten": 300.0,  # GB 50180-2018: kindergarten ≤ 300 m
            "nursery": 300.0,  # child care / nursery ≤ 300 m
            "primary_school": 500.0,  # ≤ 500 m
            "middle_school": 1_000.0,  # ≤ 1000 m
            "community_service_station": 300.0,
            "elderly_daycare": 300.0,
            "sports_ground": 300.0,  # small sports ground ≤ 300 m
            "health_station": 300.0,  # 5-minute circle health station
            "health_centre": 1_000.0,  # 15-minute circle community health centre
            "vegetable_market": 500.0,  # 10-minute circle
            "retail": 300.0,  # 5-minute circle convenience retail
            "breakfast": 300.0,
            "housekeeping": 500.0,
            "elderly_care_home": 1_000.0,
            "elderly_service_station": 300.0,
            "parcel_locker": 300.0,
            "community_office": 1_000.0,
            "green": 300.0,  # "300 m to green" (Chengdu 2017)
            "park": 500.0,  # "500 m to a park" (Chengdu 2017)
        }
    )
    """Service radius per facility category, metres (GB 50180-2018 and policy text)."""
    life_circle_categories: tuple[str, ...] = (
        "vegetable_market",
        "retail",
        "housekeeping",
        "breakfast",
        "elderly_care_home",
        "elderly_daycare",
        "nursery",
        "health_station",
        "kindergarten",
        "primary_school",
        "middle_school",
        "community_service_station",
        "sports_ground",
        "park",
        "elderly_service_station",
        "parcel_locker",
    )
    """Categories that make a complete 15-minute life circle: Chengdu 2017 list plus the
    GB 50180-2018 set (STANDARDS.md)."""
    green_min_area_m2: float = 400.0
    """A public green counts for "300 m to green" when ≥ 400 m² (pocket-park lower bound,
    2022 ministry notice)."""
    park_min_area_m2: float = 10_000.0
    """A park counts for "500 m to a park" when ≥ 1 ha (10-minute circle park)."""
    park_min_width_m: float = 50.0
    """A 10-minute circle park is ≥ 50 m wide."""
    park_coverage_floor: float = 0.80
    """Park service-radius coverage rate national floor: > 80% (GB 55014-2021)."""
    max_snap_m: float = 250.0
    """A building or facility farther than this from the walking network is a finding."""
    green_entry_spacing_m: float = 25.0
    """Parks and greens are entered at their boundary: boundary points every this many
    metres are candidate entries (project parameter; gates are not in the data)."""
    green_entry_max_m: float = 30.0
    """A sampled boundary point is an entry when the walking network is within this many
    metres (besides where the boundary meets a road, and the boundary point nearest the
    network, which are always entries). Project parameter."""
    gap_buffer_m: float = 20.0
    """Coverage gap polygons: uncovered residential buildings' footprints buffered by this
    many metres, dissolved per community and category, clipped to the community
    (drawing parameter for the gap maps)."""


@dataclass(frozen=True)
class NetworkRules:
    """Walking-network topology repair and walls/gates (issue 13).

    Measured on the Nanjing OpenStreetMap extract (correctly noded, 106 real dead ends
    after noding): the nearest other road line lies 0.08 m and 0.20 m from two of them
    (mapping slips), then 1.31 m, 1.55 m, 1.61 m… (2 within 1 m, 6 within 2 m, 14 within
    5 m). The demo city's 9 dead ends are all T-junctions missed by 2.5e-10–9.8e-10 m.
    CAD-derived centrelines stop short of / overshoot the road they meet by centimetres
    to a metre (issue 13). Command: ``python benchmarks/bench_coverage.py`` notes in
    ``benchmarks/RESULTS.md`` (section "Topology repair").
    """

    snap_tolerance_m: float = 1.0
    """A road end within this many metres of another end (or of another road line of the
    same grade) is joined to it: the largest gap CAD slips leave (≤ 1 m) and below the
    1.31 m of the first real dead end on the Nanjing extract beyond two mapping slips."""
    extend_dangle_m: float = 2.0
    """A dangling end still unjoined is extended along its last segment up to this many
    metres to the first road line of the same grade it points at (momepy
    ``extend_lines``-style); 2 m reaches undershoots of CAD data while on Nanjing only
    a straight-ahead road within 2 m is joined."""
    duplicate_tolerance_m: float = 1.0
    """Two noded pieces between the same two nodes whose Hausdorff distance is at most
    this many metres are one road digitised twice: the shorter is kept."""
    report_min_m: float = 0.001
    """Repairs that move an end by less than this (floating-point slips after
    reprojection) are counted in the network statistics, not listed as findings."""
    max_lost_share: float = 0.05
    """A network that loses more than this share of its road length to pieces not
    connected to the largest one is reported loudly (finding, warning, map banner):
    more than 5 % points at broken topology rather than a few loose paths."""
    gate_snap_m: float = 5.0
    """A gate within this many metres of where a road crosses a compound wall opens that
    crossing; gates are taken to stand on a compound's boundary when within this
    distance of it."""
    gate_link_m: float = 250.0
    """A gate not on a road is linked by a straight path (across the yard inside, the
    forecourt outside) to the nearest road inside and outside its compound when they are
    within this many metres: ``coverage.max_snap_m``, the distance a building may be from
    the network, so a proposed gate is joined the way a built one would be."""
    gate_candidate_spacing_m: float = 20.0
    """Proposed gates (``site`` with gates) are tried every this many metres along each
    walled compound's boundary (a gate's width plus the gap to the next plot)."""
    closed_access: tuple[str, ...] = ("no",)
    """Gate ``access`` values that close the gate (OSM ``access=no``); private and
    residents' gates are walked (the residents are the ones walking)."""


@dataclass(frozen=True)
class BuildingRules:
    """Household estimation for buildings without registered households."""

    gross_floor_area_per_household_m2: float = 100.0
    """Gross floor area per household when households must be estimated (parameter)."""
    floor_height_m: float = 3.0
    """Storey height used to estimate floors from a building's height."""
    default_residential_floors: int = 6
    """Floors assumed for a residential building with no level or height information."""
    residential_uses: tuple[str, ...] = ("residential",)
    """Building uses that hold households."""


@dataclass(frozen=True)
class AddressRules:
    """Address normalisation and matching (``gridgis.address``, ``gridgis.lookup``).

    Thresholds are project parameters, not law: they were chosen so that a query is only
    answered confidently when numbers agree exactly and names agree closely (issue 5).
    """

    city: str = ""
    """The deployment's own city, e.g. "上海市" (empty: not configured). A prefix naming it
    is dropped, and when one address text exists in several places the copy in this city
    wins."""
    district: str = ""
    """The deployment's own district, e.g. "黄浦区" (empty: not configured). Resolves
    ambiguous addresses and names the same way as ``city``."""
    fuzzy_threshold: float = 80.0
    """Minimum rapidfuzz score (0–100) for a road or compound name to be a candidate.
    Only names are scored fuzzily; numbers (号, 弄, 栋, 单元, 室) must agree exactly."""
    confidence_threshold: float = 90.0
    """An answer below this match score (0–100) is "no confident match" (candidates only)."""
    same_place_m: float = 150.0
    """Rows sharing one normalised address text count as one place when all lie within
    this distance (metres) of each other; otherwise the match is ambiguous."""
    max_candidates: int = 5
    """Candidates returned with an ambiguous or not-confident answer."""


@dataclass(frozen=True)
class Settings:
    """All rule parameters, grouped by topic. Pass to every analysis."""

    grid: GridRules = field(default_factory=GridRules)
    codes: CodeRules = field(default_factory=CodeRules)
    staffing: StaffingRules = field(default_factory=StaffingRules)
    coverage: CoverageRules = field(default_factory=CoverageRules)
    network: NetworkRules = field(default_factory=NetworkRules)
    buildings: BuildingRules = field(default_factory=BuildingRules)
    address: AddressRules = field(default_factory=AddressRules)

    # -- overriding ---------------------------------------------------------------------
    def override(self, values: dict[str, Any]) -> Settings:
        """Return a copy with dotted keys replaced, e.g. ``{"grid.min_households": 200}``.

        Raises
        ------
        KeyError
            For an unknown section or parameter (the message names it).
        """
        return self._with_sections(_dotted_to_sections(values))

    @classmethod
    def from_toml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> Settings:
        """Read overrides from a TOML file with one table per section, then apply dotted
        ``overrides`` (CLI ``--set``) on top; both are checked together, so a file raising
        ``min_households`` and a flag raising ``max_households`` do not clash midway."""
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        for section, params in _dotted_to_sections(overrides or {}).items():
            if isinstance(data.get(section), dict):
                for name, value in params.items():
                    if isinstance(value, dict) and isinstance(data[section].get(name), dict):
                        data[section][name] = {**data[section][name], **value}
                    else:
                        data[section][name] = value
            else:
                data[section] = params
        return cls()._with_sections(data)

    def _with_sections(self, sections: dict[str, dict[str, Any]]) -> Settings:
        changes = {}
        for section, params in sections.items():
            if section not in {f.name for f in fields(self)}:
                raise KeyError(
                    f"unknown settings section '{section}' (sections: "
                    f"{', '.join(f.name for f in fields(self))})"
                )
            if not isinstance(params, dict):
                raise ValueError(
                    f"settings section '{section}' must be a table of "
                    f"parameters, e.g. [{section}] …, not {params!r}"
                )
            current = getattr(self, section)
            known = {f.name: f for f in fields(current)}
            converted = {}
            for name, value in params.items():
                if name not in known:
                    raise KeyError(f"unknown setting '{section}.{name}'")
                default = getattr(current, name)
                converted[name] = _coerce(value, default, f"{section}.{name}")
            changes[section] = replace(current, **converted)
        out = replace(self, **changes)
        for section, lo, hi in (
            ("grid", "min_households", "max_households"),
            ("grid", "community_min_households", "community_max_households"),
        ):
            if getattr(getattr(out, section), lo) > getattr(getattr(out, section), hi):
                raise ValueError(
                    f"setting '{section}.{lo}' "
                    f"({getattr(getattr(out, section), lo)}) exceeds "
                    f"'{section}.{hi}' ({getattr(getattr(out, section), hi)})"
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/TOML serialisable) for output metadata."""
        return _plain(dataclasses.asdict(self))


def _dotted_to_sections(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"grid.min_households": 200, "coverage.radius_m.park": 400}`` → nested tables."""
    sections: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, _, name = key.strip().partition(".")
        if not name:
            raise KeyError(f"setting '{key}': use section.name, e.g. grid.min_households")
        name, _, item = name.partition(".")  # coverage.radius_m.kindergarten=250
        if item:
            sections.setdefault(section, {}).setdefault(name, {})[item] = value
        else:
            sections.setdefault(section, {})[name] = value
    return sections


_TRUE = {"1", "true", "yes", "on", "y", "t", "是"}
_FALSE = {"0", "false", "no", "off", "n", "f", "否"}


def _coerce(value: Any, default: Any, name: str) -> Any:
    """Convert a TOML/CLI value to the type of the default, or raise a clear error."""
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError("expected true or false")
        if isinstance(default, int | float) and isinstance(value, bool):
            raise ValueError("expected a number, not true/false")
        if isinstance(default, int):
            return _whole(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            return str(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not default:
                return tuple(value)
            kind = type(default[0])
            convert = {int: _whole, float: float}.get(kind, kind)
            out = tuple(convert(v) for v in value)
            if kind in (int, float) and len(out) != len(default):
                raise ValueError(f"expected {len(default)} numbers")
            if kind in (int, float) and len(out) == 2 and out[0] > out[1]:
                raise ValueError("a range's lower bound exceeds its upper bound")
            return out
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ValueError("expected a table, e.g. name.key=value")
            unknown = sorted(set(value) - set(default))
            if unknown:
                raise ValueError(f"unknown key '{unknown[0]}' (known: {', '.join(default)})")
            merged = dict(default)
            merged.update({k: float(v) for k, v in value.items()})
            return merged
    except (TypeError, ValueError) as exc:
        raise ValueError(f"setting '{name}': cannot use {value!r} ({exc})") from exc
    return value


def _whole(value: Any) -> int:
    """An int from 250, 250.0 or "250"; refuses 250.5 and true/false."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not true/false")
    number = float(value) if isinstance(value, str) else value
    if isinstance(number, float) and not number.is_integer():
        raise ValueError("expected a whole number")
    return int(number)


def _plain(obj: Any) -> Any:
    if is_dataclass(obj):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


DEFAULT = Settings()
"""The defaults of STANDARDS.md."""
