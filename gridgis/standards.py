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

import pandas as pd

from gridgis.values import parse_bool


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
    (:func:`gridgis.delineate.crossings.median_length`). Carriageway centrelines of a
    divided arterial lie a few to ~40 m apart (both inside its red line, 道路红线; 8–31 m on the Nanjing
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
    # -- delineation internals (issue 11/15: every literal a named rule) -----------------
    unit_margin_share: float = 0.3
    """Open ground (a face without households) next to a unit grid joins it when it shares
    at least this share of its outline with the unit grid: the household-free margin of an
    institution's block (its fence strip, forecourt, car park) is managed with it. A face
    touching the unit grid only along a short side stays with the housing. 30 % ≈ one long
    side of an oblong block. Parameter, not law."""
    balance_tolerance_share: float = 0.2
    """Compactness moves may let a grid drift from ``target_households`` by this share of
    the band (``max − min``; 0.2 × 250 = 50 households) and no further: balance before
    shape, so grids stay near the target while their outlines straighten."""
    cell_step_m: float = 10.0
    """Building outlines are densified to this step (m) when a block is split into building
    cells (Voronoi of the outlines): a cell holds its whole building to half a step, so a
    grid border drawn between cells never cuts a building wider than that gap."""
    unit_min_piece_m2: float = 5_000.0
    """A piece of a unit-grid institution smaller than this (m², half a hectare) — where a
    community boundary or an arterial clips a corner of a campus — is not a unit grid of
    its own: it stays with the surrounding grids (no slivers named after the campus)."""
    open_ground_unit_min_m2: float = 100_000.0
    """Open ground left without households after partitioning (a park, water, a plaza, a
    campus without residents cut off by unit grids or arterials) of at least this area
    (m², 10 ha: the size of a district park) becomes a unit grid of its own (开放用地, no
    household band); smaller open ground joins the neighbouring grid it shares the longest
    boundary with, so no residential grid holds 0 households. Parameter, not law."""
    redivide_min_change_households: int = 100
    """Minimal-change re-grid: a community is divided again when its households differ
    from those of its grids by more than this (a new estate, a demolition — about one
    building of flats); smaller changes keep the grids and only refresh their figures
    (issue 16: "re-divides only the communities whose households changed beyond a rule").
    Parameter, not law."""
    community_close_m: float = 100.0
    """Communities made from data without a streets layer divide one study area, the
    convex hull of the built-up area: the union of the buildings grown by this distance
    (m), so blocks across a road join (an urban road reserve is < 100 m wide)…"""
    community_margin_m: float = 30.0
    """…then shrunk back to this margin (m) around the outer buildings (holes filled): the
    community keeps its yards and the near half of the roads around it."""


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
    service_area_buffer_m: float = 30.0
    """Service areas (layer ``service_areas``): the roads reached within the radius are
    buffered by this many metres, the depth of the buildings along them (drawing
    parameter; a building counts by its own walk, not by this area). The buffer is then
    clipped to the blocks: it never enters a block (area enclosed by the roads) that
    flanks no reached road, e.g. across an unreached parallel road."""
    service_area_max_facilities: int = 10_000
    """``coverage`` writes service areas (one bounded search and one polygon per
    facility) up to this many facilities; beyond, the layer is left out and said so (the
    API draws any one on request). A safety valve only: measured 2.6 ms CPU per facility
    on the 2-core machine (searches 0.8, polygons 1.7; before the per-piece buffering
    4.4), so the 1,000,000-household demo city (5,062 non-green facilities) costs about
    13 s CPU and is written (``benchmarks/RESULTS.md``, service areas)."""
    gap_buffer_m: float = 20.0
    """Coverage gap polygons: uncovered residential buildings' footprints buffered by this
    many metres, dissolved per community and category, clipped to the community
    (drawing parameter for the gap maps)."""


@dataclass(frozen=True)
class NetworkRules:
    """Walking-network topology repair and walls/gates (issue 13).

    Measured (``benchmarks/measure_snap_tolerance.py``, table in ``benchmarks/RESULTS.md``):
    on the Nanjing OpenStreetMap extract, noded by its mappers, of 80 real dead ends the
    nearest other road lies 4.6e-7 m (a floating-point slip), 0.08 m and 0.20 m (mapping
    slips) from three, then 1.3 m, 1.5 m, 1.6 m…; the demo city's 9 dead ends are all
    T-junctions missed by 2.5e-10–9.8e-10 m after reprojection. CAD-derived centrelines
    stop short of / overshoot the road they meet by centimetres to a metre (issue 13).
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
    keep_piece_min_m: float = 10_000.0
    """A connected piece of the walking network with at least this much road (m) is kept
    even when it touches no other: a town, an island or another city of the same
    workspace (a province holds many) walks on its own roads. Shorter loose pieces
    (CAD fragments, a compound's paths cut off by a gap) are dropped and reported, and
    buildings snap to a kept piece instead. 10 km is more than the internal roads of
    any one estate (a 500 m x 500 m compound holds 2-4 km) and less than a small town's
    network. The largest piece is always kept."""
    max_lost_share: float = 0.05
    """A network that loses more than this share of its road length to dropped pieces
    (see ``keep_piece_min_m``) is reported loudly (finding, warning, map banner):
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

    Confidence is decided by named rules (:mod:`gridgis.address.policy`), not by a score:
    numbers (号, 弄, 栋, 单元, 室) must agree exactly, and a name may differ only where the
    rule says so. The switches and limits below are project parameters, not law (issues 5
    and 14).
    """

    city: str = ""
    """The deployment's own city, e.g. "上海市" (empty: not configured). A prefix naming it
    is dropped, and when one address text exists in several places the copy in this city
    wins."""
    district: str = ""
    """The deployment's own district, e.g. "黄浦区" (empty: not configured). Resolves
    ambiguous addresses and names the same way as ``city``."""
    fuzzy_threshold: float = 80.0
    """Minimum rapidfuzz score (0–100) for a road or compound name to be listed as a
    candidate. It never makes an answer confident."""
    same_place_m: float = 150.0
    """Rows sharing one normalised address text count as one place when all lie within
    this distance (metres) of each other; otherwise the match is ambiguous."""
    max_candidates: int = 5
    """Candidates returned with an ambiguous or not-confident answer."""
    road_candidate_score: float = 60.0
    """Lowest rapidfuzz ratio (0–100) for a known road carrying the door number to be
    listed as a candidate for a road name not known exactly (one wrong character of a
    three-character name scores 66.7). A listing rule only: it never makes an answer
    confident."""
    confident_corrected_road: bool = True
    """Answer a door plate on a misspelt road confidently when exactly one known road
    within the allowed difference (``road_sound_shape_chars``, ``road_other_chars``)
    carries that door number (and lane). Off: such answers are candidates only."""
    road_sound_shape_chars: int = 2
    """Characters of a road name that may differ by sound (the same tone-less pinyin, with
    the pinyin-input confusions an/ang, en/eng, in/ing, z/zh, c/ch, s/sh, l/n: 冬/东,
    常/长, 楠/南) or by shape (a listed look-alike pair) in a correction."""
    road_other_chars: int = 1
    """Characters of a road name of at least ``road_other_min_length`` characters that may
    differ otherwise (a slip of the keyboard: 中出南二路 for 中山南二路). Never one of the
    characters that make another road (东南西北中上下…, numerals)."""
    road_other_min_length: int = 4
    """Shortest road name (characters) in which an arbitrary wrong character is forgiven:
    in a three-character name one character is a third of it (报青路 ≠ 报春路)."""
    confident_place_name: bool = True
    """Answer a place or compound name (or an alias) confidently when it names one place."""
    partial_name_min_chars: int = 4
    """A contiguous part of one known place name (竹园中学 of 上海市竹园中学) is answered
    when it has at least this many characters and is part of no other name."""
    confident_partial_name: bool = True
    """Answer such a unique partial name confidently (off: candidates only)."""
    alias_separators: str = "、;；|,，"
    """Characters separating several names in an ``aliases`` field (俗称, former names,
    abbreviations)."""


@dataclass(frozen=True)
class ImportRules:
    """What an import accepts as plausible input (``gridgis.io``, ``gridgis.layers``,
    ``gridgis.workflows.imports``). Each limit is far above any real value and far below
    the point where arithmetic could overflow."""

    max_households_per_building: int = 10_000
    """Most households one building may hold. The largest single residential buildings in
    China (e.g. Regent International, Hangzhou: ~20,000 residents in one 36-storey
    block) hold several thousand homes, so 10,000 is above any real building while a sum
    over even 10⁹ buildings stays below 10¹³, far inside int64 (9.2 × 10¹⁸): no total of
    households can overflow. Larger values (1e30, 9.3e18, 5e18) are typing or unit
    errors and are rejected naming file, layer, row and field."""
    max_floors: int = 200
    """Most floors (above ground) of one building: the tallest building in China
    (Shanghai Tower) has 128; household estimation multiplies floors by area."""
    max_staff: int = 1_000_000
    """Most staff/students/beds of one institution (the largest universities and
    factories count ~10⁵)."""
    max_floor_area_m2: float = 10_000_000.0
    """Largest floor area (m²) of one facility or institution (the largest building in
    the world, New Century Global Center, Chengdu, has ~1.76 × 10⁶ m²)."""
    max_road_layer: int = 10
    """Largest vertical layer (either sign) of a road: OpenStreetMap's ``layer`` tag runs
    -5…5 in practice (its wiki); a larger value is a typing error."""
    crs_check_sample: int = 2_000
    """Features sampled (evenly, deterministically) to test the declared CRS against the
    alternatives: enough for a stable median and for the feature-by-feature sign test
    (``crs_check_min_z``) to see a 10–20 % effect; four nearest-feature queries of 2,000
    points are cheap on a workspace of any size."""
    crs_check_min_features: int = 10
    """Fewest features (and reference features nearby) needed to judge a CRS; fewer give
    no verdict (the import is not refused)."""
    crs_check_ratio: float = 0.5
    """Statistics: the median distance (m) from the sampled imported features to the
    road their address names, when enough name a road the workspace holds; and the
    median distance to the nearest feature of the layers already in the workspace
    (roads, buildings, facilities, addresses); each with the features placed by each
    CRS hypothesis (:mod:`gridgis.io.plausible`). Another
    CRS "fits clearly better" when its median is at most this share of the declared
    CRS's median (and see ``crs_check_min_gain_m``, ``crs_check_max_reference_m``).
    Measured: OSM facilities of Nanjing Xinjiekou against its roads and buildings, 0 m
    placed right vs 7 m read as WGS84 when GCJ-02 (Beijing Xueyuanlu: 0 vs 8 m); the
    Shanghai Amap kindergartens against Shanghai's schools, 0 vs 289 m; the Shanghai
    README: 35 m to the named road as WGS84 vs 350 m read as GCJ-02. Unrelated point
    layers (kindergartens against bus stops) differ by 10–20 % only: no verdict, the
    declared CRS stands. Half leaves a wide margin either way."""
    crs_check_min_gain_m: float = 5.0
    """… and at least this many metres smaller: a point's position is rarely better than
    a few metres, so a smaller difference is noise (dense cities put any point within
    ~10–30 m of some road or building, so the gain can be small where the ratio is
    large)."""
    crs_check_min_z: float = 5.0
    """Third statistic, for layers unrelated to the imported ones (bus stops against
    kindergartens): the share of sampled features another CRS puts nearer to their
    nearest existing feature than the declared one does, as a sign-test z score
    (z = (share − ½)·2·√n). Another CRS fits clearly better when z reaches this AND its
    median is at most ``crs_check_paired_ratio`` of the declared one's. Measured on the
    Shanghai Amap POIs (2,000 sampled): kindergartens read as GCJ-02 against bus stops,
    restaurants or hospitals z = 6.2–7.6 (medians 0.79–0.82); metro stations against bus
    stops or restaurants 6.3–6.7 (0.59–0.61); correctly declared files against the others
    at most z = 4.2, and then with medians 0.91 apart. 5 (one in 3.5 million by chance)
    keeps the wrong-way cases out: over 28 pairs of Shanghai files (5 workspaces × 6
    imports) no correctly declared file was refused, 20 of the 56 wrong declarations
    were (the rest got no verdict: against theatres or universities nothing tells), and
    every refusal named the right CRS."""
    crs_check_paired_ratio: float = 0.85
    """Median margin the sign test needs (see ``crs_check_min_z``)."""
    crs_check_max_reference_m: float = 200.0
    """The better CRS must also put its median feature within this distance (m) of the
    existing layers: both hypotheses far from everything means the data lies elsewhere,
    not that the CRS is wrong (no verdict)."""
    crs_area_slack_deg: float = 0.5
    """Slack (degrees) around a projected CRS's area of use when checking data lies where
    its declared CRS can be (a 3-degree Gauss–Krüger zone covers its central meridian
    ±1.5°; data of a district often spills a little over a zone edge, but not half a
    zone). GCJ-02/BD-09 are checked against China's outline (no slack). A wrong
    central-meridian zone (EPSG:4534–4554) moves data by whole zones inside China and
    is caught only against the workspace's layers."""


@dataclass(frozen=True)
class ServerRules:
    """Limits of the HTTP API (``gridgis serve``), so that no request can exhaust the
    server (issue 18). Sizes in bytes. The numbers are engineering limits chosen for
    this project, not law: an upload of a city district's shapefiles (tens of MB
    zipped) fits; a decompression bomb or a runaway client does not.
    """

    max_body_bytes: int = 64 * 1024 * 1024
    """Largest multipart upload body (``POST /upload``). Bodies are counted as they
    stream, chunked transfer included: the 64 MiB + 1st byte gets 413."""
    max_json_bytes: int = 1024 * 1024
    """Largest body of any other request (JSON: ``/grids/{code}/staff``; 500 people fit
    in about 60 KB)."""
    max_upload_files: int = 50
    """Files in one upload, archive entries included."""
    max_unpacked_bytes: int = 256 * 1024 * 1024
    """Total size of the files of one upload once unpacked (archives checked from their
    directory before anything is extracted; zipfile stops at each entry's declared
    size). A street's or district's layers are tens of MB; importing reads the data
    into memory (several times its file size), so this also bounds an import's
    memory."""
    max_compression_ratio: float = 100.0
    """Largest uncompressed/compressed size ratio of an archive entry over 1 MiB.
    Shapefiles and CSV compress 3–20 times; a ratio of thousands is a zip bomb."""
    max_filename_bytes: int = 200
    """Longest uploaded file name (UTF-8 bytes; file systems stop at 255, and the
    server adds a few characters of its own)."""
    malloc_arenas: int = 2
    """glibc malloc arenas of each server process (0: glibc's default, 8 per CPU core).
    Request threads (up to 40) each grow an arena of their own and glibc hands little
    of it back, so with the default the resident memory keeps creeping up under reads
    with a rewrite every few seconds (measured, demo city of 10,000 households: 251 →
    420 MB in 5 minutes, still +2–8 MB per 30 s). Two arenas, and ``malloc_trim`` after
    each rebuild of the lookup index, make it level off (peak 387 MB over 10 minutes,
    the peak still creeping by about 1.5 MB a minute at the end; ``benchmarks/
    soak_api.py``, tables in ``benchmarks/RESULTS.md``).
    Ignored where the C library is not glibc.

    The bound this gives, per worker process: the lookup index and the workspace's
    layers as loaded at start (251 MB for the demo city), plus about 130 MB of working
    memory under load (per-thread SQLite read connections, request buffers), plus,
    while an upload is imported, a few times its unpacked size — which
    :attr:`max_unpacked_bytes` bounds. Hostile requests add nothing measurable (refused
    from their headers, while streaming, or from the archive's directory)."""


@dataclass(frozen=True)
class BoardRules:
    """The public grid board (网格公示牌, ``gridgis.maps.boards``) and its PDF.

    Policy text: each grid publishes its map and the names of its responsible people on a
    public board. What a board posted on a wall also carries — who issued it, a phone for
    complaints, the boundary description (四至) — is local practice; the texts are the
    deployment's own and empty by default (the board then leaves the line out).
    """

    issuer: str = ""
    """Issuing body printed on the board, e.g. "玄武区新街口街道办事处" (empty: left out)."""
    supervision_phone: str = ""
    """Supervision / service phone printed on the board, e.g. "12345" (empty: left out)."""
    logo_text: str = ""
    """Short text set in the board's badge (top left), e.g. "网格化服务管理" (empty: left
    out)."""
    title: str = "网格公示牌"
    """Board heading."""
    missing_person: str = "待配备"
    """Shown where a grid has no grid head or grid worker yet (never a blank or "<NA>")."""
    road_search_m: float = 60.0
    """四至: a named road counts as a grid's boundary on one side when it runs within this
    distance (metres) of that side of the grid (roads are drawn on their centre line; a
    40 m median-separated arterial's centre lies 20 m off the kerb)."""
    neighbour_min_shared_m: float = 20.0
    """四至: a neighbouring grid is named on a side when it shares at least this length
    (metres) of boundary there; shorter contacts are corners, not sides."""


@dataclass(frozen=True)
class MapRules:
    """How the maps draw (``gridgis.maps``): opacities, classes, labels."""

    fill_opacity: float = 0.55
    """Opacity of the household fill of grids and communities; legend swatches are drawn at
    the same opacity so they match what is on the map."""
    classes: int = 5
    """Most household classes in a choropleth (fewer when the data has fewer distinct
    values). Project choice: neighbouring colours of the 7-step YlOrRd ramp, drawn at
    ``fill_opacity`` over a grey background or printed, are hard to tell apart, so five
    classes spread over the ramp are used; the legend names the range each class holds."""
    tiles_above_grids: int = 2000
    """Above this many grids the map writer draws the city, street and community levels
    from the vector tiles of ``gridgis serve`` (:mod:`gridgis.maps.tiled`: one page with
    the three views, a small index and a forwarding page per street and community)
    instead of one GeoJSON page per street and community. Project choice: those pages
    carry their grids as GeoJSON and grow with the city (a 20,000,000-household city took
    826 s and 16.1 GB), the tile page holds no geometry and stays a few kilobytes at any
    size; at 2,000 grids (about 600,000 households in the demo cities) the street pages
    start to get heavy."""
    tiled_boards: bool = False
    """Above ``tiles_above_grids``, also write one static printable board per grid. Off by
    default: a board computes its grid's four sides (四至) and carries its buildings, so
    the boards are the one part of the map site that still grows per grid (tens of
    thousands of pages in a megacity); without them one page, ``board.html#grid=<code>``,
    shows any grid's board from the API and the tiles (without the 四至), and PDF boards
    per community come from the export."""


@dataclass(frozen=True)
class DemoRules:
    """How big a demo ``gridgis demo`` builds, and what it runs at that size (project
    choices, measured on a 2-core, 24 GB machine: benchmarks/RESULTS.md, issue #19)."""

    district_households: int = 2_000_000
    """The largest demo *city*: above this many households the demo is a province of
    ``ceil(households / district_households)`` demo cities (districts) of at most this
    many each, built and written one district at a time
    (:func:`gridgis.province.write_province`). 2,000,000 is the size one city was built
    and tested at before (about 1 GB while building)."""
    max_households: int = 50_000_000
    """The largest demo: 50,000,000 households is a province larger than Guangdong (about
    40 million); its layers (without maps) fit in 24 GB."""
    full_steps_max_households: int = 2_000_000
    """Above this many households the demo skips the steps in ``large_skip_steps``: the
    maps' time and memory grow linearly with a large constant (826 s and 16 GB at
    20,000,000 households, issue #19) and the import demo writes every building twice."""
    large_skip_steps: tuple[str, ...] = ("import", "maps")
    """Demo steps skipped above ``full_steps_max_households`` (each skipped step says why
    and how to run it on its own)."""
    lookup_sample_max_queries: int = 200_000
    """Above ``full_steps_max_households`` the demo's lookup step matches an evenly spaced
    sample of at most this many of the workspace's addresses (the index still holds every
    address). Matching every address of a 50,000,000-household province (2.6 million
    texts) held the queries, their matches and the index together: 9.8 GB at 20,000,000
    households (issue #19), about 25 GB at 50,000,000."""


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
    imports: ImportRules = field(default_factory=ImportRules)
    server: ServerRules = field(default_factory=ServerRules)
    board: BoardRules = field(default_factory=BoardRules)
    maps: MapRules = field(default_factory=MapRules)
    demo: DemoRules = field(default_factory=DemoRules)

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


def _coerce(value: Any, default: Any, name: str) -> Any:
    """Convert a TOML/CLI value to the type of the default, or raise a clear error."""
    try:
        for kind, convert in _COERCERS:
            if isinstance(default, kind):
                return convert(value, default)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"setting '{name}': cannot use {value!r} ({exc})") from exc
    return value


def _to_bool(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    parsed = parse_bool(str(value))
    if parsed is pd.NA:
        raise ValueError("expected true or false")
    return bool(parsed)


def _to_number(value: Any, default: int | float) -> int | float:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return _whole(value) if isinstance(default, int) else float(value)


def _to_tuple(value: Any, default: tuple) -> tuple:
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


def _to_table(value: Any, default: dict) -> dict:
    if not isinstance(value, dict):
        raise ValueError("expected a table, e.g. name.key=value")
    unknown = sorted(set(value) - set(default))
    if unknown:
        raise ValueError(f"unknown key '{unknown[0]}' (known: {', '.join(default)})")
    merged = dict(default)
    merged.update({k: float(v) for k, v in value.items()})
    return merged


#: How a value is read for each type of default (bool before int: bool is an int).
_COERCERS: tuple[tuple[type, Any], ...] = (
    (bool, _to_bool),
    (int, _to_number),
    (float, _to_number),
    (str, lambda value, default: str(value)),
    (tuple, _to_tuple),
    (dict, _to_table),
)


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


# --------------------------------------------------------------------------------------
# Partitioned runs on a Dask cluster (gridgis.cluster, gridgis.partitioned)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterRules:
    """How partitioned runs split, retry and widen their halo (project parameters, not
    planning rules: they change speed and memory, never a result)."""

    retries: int = 2
    """A partition whose worker dies or raises is resubmitted this many times before the
    run fails (Dask ``retries=``); the store is written only after every partition."""
    halo_extra_m: float = 0.0
    """Added to the coverage halo, which is the largest walking radius
    (``coverage.radius_m`` and ``coverage.life_circle_15min_m``): a path no longer than the
    halo stays inside it, so distances up to it are exact at partition edges. Buildings
    whose nearest facility lies farther are re-run with the halo doubled until exact."""
    max_halo_rounds: int = 8
    """Doublings of the halo before the remaining buildings run on the whole city."""
    chunk_rows: int = 20_000
    """Rows per task for row-wise work (assignment of points and polygons, batch address
    lookup): big enough that a task outweighs its scheduling (about 1 ms), small enough
    to spread over workers."""
    partitions_per_worker: int = 4
    """Partitions per worker process for delineation (blocks of communities), so a slow
    block does not leave the other workers idle."""
    coverage_partitions_per_worker: int = 2
    """Coverage blocks per worker process: fewer, larger blocks search less halo twice
    (each block walks its halo too); the buildings a block leaves run again with the halo
    their own distances call for."""


CLUSTER = ClusterRules()
"""The default cluster rules."""
