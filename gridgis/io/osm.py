"""OpenStreetMap (PBF, XML) to canonical layers, in one reading with pyosmium.

Produces buildings (use from the building tag, the building's own amenity/shop/office
tags, then the land use or campus it stands in; floors from ``building:levels`` or
``height``), roads (``highway`` mapped to arterial / secondary / branch / path),
facilities (OSM tags mapped to :data:`gridgis.layers.FACILITY_CATEGORIES`; nodes as points,
areas as polygons), green spaces (parks and gardens: park when ≥ the park area threshold,
else green; grass, recreation grounds, village greens: green), institutions (school,
university, hospital, industrial… polygons with their kind) and administrative
boundaries when their rings are complete and they carry a valid division code, and
standard addresses from ``addr:*`` tags (see :func:`door_number` and :func:`_addresses`).

Addresses: every node, way or area with ``addr:housenumber`` and ``addr:street`` (or
``addr:place`` when there is no street) becomes one point of layer ``addresses``: a node at
its position, a way or area at a point on its surface (``shapely.point_on_surface``, the
point facilities given as areas are measured from), with the importer's ids (``osm_n…``,
``osm_w…``, ``osm_r…``). Its text is street + door number, 号 added to a bare or prefixed
number (8 → 8号, 丁11 → 丁11号, 12-8 → 12-8号; 85号 and 16号院 stay; the traditional 號 is
written 号). ``addr:housename`` is not used: in Chinese OSM it mixes building, floor and
compound names with numbers ("1号 科技大厦D座", "1号院", "First Floor") and is no part of a
door plate. ``name`` is the object's name (a compound or POI name helps name queries) and
``building_id`` is set when the object is itself an imported building. Skipped, and counted
in the notes by reason: a house number without street or place; a house number that is not a
door number (1层 is a floor, 7栋 a building), counted first; a street not written in
Chinese. Duplicates (the
same normalised text within ``address.same_place_m``) keep one row, preferring a building,
then a named object. Texts the address parser does not split into road + door number are
kept (a query parses the same way, so it still matches) and counted in the notes.

Motor-road tunnels (a way of class arterial, secondary or branch tagged ``tunnel`` with
any value but ``no`` or ``building_passage``, e.g. 水西门隧道 in Nanjing) are dropped and
counted in the notes: underground, they do not divide the surface into blocks, cannot be
walked and are not crossings of the grids above them. Pedestrian tunnels and underpasses
(class path) are kept: they are real walking links. So are ``tunnel=building_passage``
(a passage through a building at ground level) and ``covered=yes`` (a road at ground
level under a roof or an overhanging building), which are surface roads.

Multipolygon relations are assembled by osmium's area handler; ways or relations whose
members are missing from the extract are skipped and counted in the notes. OSM has no
households: :func:`gridgis.layers.estimate_households` fills residential buildings during
validation and flags them ``households_estimated``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import shapely

from gridgis.address import normalise, parse, to_half_width
from gridgis.crs import metric_crs_for
from gridgis.io.fields import ReadError
from gridgis.standards import DEFAULT, Settings

OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.xml", ".osm.bz2", ".osm.gz", ".osc")

# -- roads ------------------------------------------------------------------------------
HIGHWAY_CLASS: dict[str, str] = {
    **dict.fromkeys(
        ("motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link"), "arterial"
    ),
    **dict.fromkeys(("secondary", "secondary_link", "tertiary", "tertiary_link"), "secondary"),
    **dict.fromkeys(("residential", "unclassified", "service", "living_street", "road"), "branch"),
    **dict.fromkeys(
        ("footway", "path", "pedestrian", "steps", "cycleway", "track", "bridleway", "corridor"),
        "path",
    ),
}

#: Road classes whose tunnels are dropped (motor roads); path-class tunnels are kept.
TUNNEL_DROPPED_CLASSES = ("arterial", "secondary", "branch")
#: ``tunnel`` values of a road at ground level (kept): not a tunnel, or a passage through a
#: building (an archway).
SURFACE_TUNNEL_VALUES = ("no", "building_passage")

# -- buildings --------------------------------------------------------------------------
BUILDING_USE: dict[str, str] = {
    **dict.fromkeys(
        (
            "residential",
            "apartments",
            "house",
            "detached",
            "dormitory",
            "terrace",
            "semidetached_house",
            "bungalow",
            "flats",
            "villa",
            "farm",
            "houseboat",
            "cabin",
        ),
        "residential",
    ),
    **dict.fromkeys(
        ("commercial", "retail", "hotel", "supermarket", "kiosk", "mall", "shop", "restaurant"),
        "commercial",
    ),
    **dict.fromkeys(("office", "government"), "office"),
    **dict.fromkeys(("school", "kindergarten", "university", "college"), "school"),
    **dict.fromkeys(("hospital", "clinic"), "hospital"),
    **dict.fromkeys(
        ("industrial", "warehouse", "factory", "manufacture", "storage_tank"), "industrial"
    ),
    **dict.fromkeys(
        (
            "civic",
            "public",
            "church",
            "temple",
            "mosque",
            "train_station",
            "transportation",
            "religious",
            "fire_station",
            "sports_hall",
            "stadium",
            "museum",
        ),
        "public",
    ),
}
#: Land uses / campuses that give a use to a building tagged only ``building=yes``.
CONTEXT_USE: dict[tuple[str, str], str] = {
    ("landuse", "residential"): "residential",
    ("landuse", "commercial"): "commercial",
    ("landuse", "retail"): "commercial",
    ("landuse", "industrial"): "industrial",
    ("amenity", "school"): "school",
    ("amenity", "university"): "school",
    ("amenity", "college"): "school",
    ("amenity", "kindergarten"): "school",
    ("amenity", "hospital"): "hospital",
}
#: Campus contexts win over land use (a school inside a residential land-use polygon).
CONTEXT_RANK = {"school": 0, "hospital": 0, "industrial": 1, "commercial": 1, "residential": 2}

# -- institutions -----------------------------------------------------------------------
INSTITUTION_KIND: dict[tuple[str, str], str] = {
    ("amenity", "school"): "school",
    ("amenity", "kindergarten"): "school",
    ("amenity", "university"): "university",
    ("amenity", "college"): "university",
    ("amenity", "hospital"): "hospital",
    ("healthcare", "hospital"): "hospital",
    ("landuse", "industrial"): "industrial",
    ("man_made", "works"): "factory",
    ("landuse", "military"): "military",
    ("military", "barracks"): "military",
    ("amenity", "townhall"): "government",
    ("office", "government"): "government",
    ("amenity", "marketplace"): "market",
}

# -- green ------------------------------------------------------------------------------
PARK_TAGS = {("leisure", "park"), ("leisure", "garden")}
GREEN_TAGS = {
    ("landuse", "grass"),
    ("landuse", "recreation_ground"),
    ("landuse", "village_green"),
    ("leisure", "common"),
}
SQUARE_TAGS = {("place", "square")}

# -- facilities -------------------------------------------------------------------------
_SIMPLE_FACILITY: dict[tuple[str, str], str] = {
    ("amenity", "kindergarten"): "kindergarten",
    ("amenity", "childcare"): "nursery",
    ("amenity", "marketplace"): "vegetable_market",
    ("shop", "greengrocer"): "vegetable_market",
    ("shop", "supermarket"): "retail",
    ("shop", "convenience"): "retail",
    ("shop", "general"): "retail",
    ("shop", "department_store"): "retail",
    ("shop", "mall"): "retail",
    ("amenity", "clinic"): "health_station",
    ("amenity", "doctors"): "health_station",
    ("healthcare", "clinic"): "health_station",
    ("healthcare", "centre"): "health_station",
    ("amenity", "hospital"): "hospital",
    ("healthcare", "hospital"): "hospital",
    ("amenity", "pharmacy"): "pharmacy",
    ("healthcare", "pharmacy"): "pharmacy",
    ("shop", "chemist"): "pharmacy",
    ("highway", "bus_stop"): "bus_stop",
    ("amenity", "restaurant"): "restaurant",
    ("amenity", "fast_food"): "restaurant",
    ("amenity", "food_court"): "restaurant",
    ("amenity", "cafe"): "restaurant",
    ("amenity", "bank"): "bank",
    ("amenity", "parcel_locker"): "parcel_locker",
    ("amenity", "police"): "police_station",
    ("amenity", "nursing_home"): "elderly_care_home",
    ("amenity", "community_centre"): "community_service_station",
    ("leisure", "pitch"): "sports_ground",
    ("leisure", "sports_centre"): "sports_ground",
    ("leisure", "fitness_station"): "sports_ground",
    ("leisure", "track"): "sports_ground",
    ("shop", "laundry"): "housekeeping",
    ("shop", "dry_cleaning"): "housekeeping",
}
_NAME_CATEGORY = [  # checked in order on the name of any mapped or unmapped feature
    (re.compile("早餐|早点"), "breakfast"),
    (re.compile("家政"), "housekeeping"),
    (re.compile("快递|菜鸟驿站|丰巢|妈妈驿站|兔喜"), "parcel_locker"),
    (re.compile("日间照料"), "elderly_daycare"),
    (re.compile("养老院|敬老院|福利院|护理院"), "elderly_care_home"),
    (re.compile("老年服务|为老服务|老年活动"), "elderly_service_station"),
    (re.compile("社区卫生服务中心"), "health_centre"),
    (re.compile("社区卫生服务站|卫生服务站|卫生室"), "health_station"),
    (re.compile("居民委员会|居委会|社区党群|社区服务中心|社区工作站"), "community_office"),
    (re.compile("街道办事处|街道便民服务中心|街道社区服务中心"), "street_service_centre"),
    (re.compile("警务室|派出所"), "police_station"),
    (re.compile("菜市场|菜场|农贸市场"), "vegetable_market"),
]


# -- addresses --------------------------------------------------------------------------
#: A door number written without 号: optional prefix (甲乙丙丁: a plate added beside another
#: in Beijing; 附: an annex), digits, optional letter, optional sub-number (12-8).
_RE_BARE_DOOR = re.compile(r"[甲乙丙丁附]?\d+[A-Z]?(?:-\d+)?")
#: A door number already written with 号, or a numbered compound gate (16号院).
_RE_FULL_DOOR = re.compile(r"[甲乙丙丁附]?\d+[A-Z]?(?:-\d+)?号院?")
_RE_HAN = re.compile(r"[\u4e00-\u9fff]")


def door_number(housenumber: str) -> str | None:
    """The door number (门牌号) written on a standard address from an OSM
    ``addr:housenumber``, or None when the value is not one door number.

    >>> [door_number(v) for v in ("8", "丁11", "12-8", "85号", "28號", "16号院", "1层", "7栋")]
    ['8号', '丁11号', '12-8号', '85号', '28号', '16号院', None, None]
    """
    text = re.sub(r"\s+", "", to_half_width(housenumber)).upper().replace("號", "号")
    if _RE_BARE_DOOR.fullmatch(text):
        return text + "号"
    if _RE_FULL_DOOR.fullmatch(text):
        return text
    return None


#: Tags read from every OSM object (reading all tags into a dict is 3x slower), and the
#: tags read only when the key before them is present.
BASE_KEYS = (
    "building",
    "highway",
    "amenity",
    "shop",
    "healthcare",
    "leisure",
    "landuse",
    "man_made",
    "military",
    "office",
    "place",
    "boundary",
    "addr:housenumber",
    "name",
    "barrier",
    "entrance",
    "access",
)
EXTRA_KEYS = {
    "addr:housenumber": ("addr:street", "addr:place"),
    "building": ("building:levels", "height", "building:height"),
    "highway": ("area", "layer", "bridge", "tunnel"),
    "amenity": (
        "isced:level",
        "school:level",
        "social_facility",
        "social_facility:for",
        "vending",
        "cuisine",
    ),
    "boundary": ("admin_level", "ref", "gb:code", "ref:gb", "division_code"),
}
#: Objects with none of these keys are skipped before they reach Python.
MAIN_KEYS = BASE_KEYS[:-1] + ("cuisine",)


def _read_tags(get: Callable[[str], str | None]) -> dict[str, str]:
    tags = {k: v for k in BASE_KEYS if (v := get(k)) is not None}
    for key, extra in EXTRA_KEYS.items():
        if key in tags:
            tags.update((k, v) for k in extra if (v := get(k)) is not None)
    if "name" not in tags:
        tags.update((k, v) for k in ("name:zh", "name:en") if (v := get(k)) is not None)
    return tags


def facility_category(tags: dict[str, str]) -> str | None:
    """The facility category of an OSM feature from its tags, or None when it is not a
    planning facility. Schools are split by ``isced:level`` or name (小学 / 中学)."""
    name = tags.get("name", "") + tags.get("name:zh", "")
    amenity = tags.get("amenity")
    if amenity == "school":
        return _school_category(tags, name)
    if amenity == "social_facility":
        cat = _social_category(tags)
        if cat is not None:
            return cat
    if amenity == "vending_machine" and "parcel" in tags.get("vending", ""):
        return "parcel_locker"
    if amenity == "townhall":
        for pattern, cat in _NAME_CATEGORY:
            if cat in ("community_office", "street_service_centre") and pattern.search(name):
                return cat
        return None
    if name:
        for pattern, cat in _NAME_CATEGORY:
            if pattern.search(name):
                return cat
    for key in ("amenity", "shop", "healthcare", "highway", "leisure"):
        value = tags.get(key)
        if value is not None and (key, value) in _SIMPLE_FACILITY:
            return _SIMPLE_FACILITY[(key, value)]
    if tags.get("cuisine") == "breakfast":
        return "breakfast"
    return None


def _school_category(tags: dict[str, str], name: str) -> str:
    """A school's category by ``isced:level`` / ``school:level`` or its name."""
    level = tags.get("isced:level", "") + tags.get("school:level", "")
    if "1" in level or "primary" in level or re.search("小学|primary", name, re.I):
        return "primary_school"
    if re.search("[23]|secondary|middle|high", level) or re.search(
        "中学|初中|高中|附中|middle|high school", name, re.I
    ):
        return "middle_school"
    if re.search("幼儿园|kindergarten", name, re.I):
        return "kindergarten"
    return "other"


def _social_category(tags: dict[str, str]) -> str | None:
    """The category of an ``amenity=social_facility`` by its kind and whom it serves."""
    kind = tags.get("social_facility", "")
    if kind in ("nursing_home", "assisted_living"):
        return "elderly_care_home"
    if kind == "day_care":
        senior = "senior" in tags.get("social_facility:for", "senior")
        return "elderly_daycare" if senior else "nursery"
    if "senior" in tags.get("social_facility:for", ""):
        return "elderly_service_station"
    return None


def _number(text: str | None) -> float | None:
    if not text:
        return None
    m = re.search(r"\d+(?:\.\d+)?", text.replace(",", "."))
    return float(m.group()) if m else None


def _floors(tags: dict[str, str], floor_height_m: float) -> float | None:
    levels = _number(tags.get("building:levels"))
    if levels is not None and levels > 0:
        return float(round(levels))
    height = _number(tags.get("height") or tags.get("building:height"))
    if height is not None and height > 0:
        return float(max(1, round(height / floor_height_m)))
    return None


def _name(tags: dict[str, str]) -> str | None:
    return tags.get("name") or tags.get("name:zh") or tags.get("name:en") or None


def read_osm(
    path: Path,
    settings: Settings = DEFAULT,
    notes: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Read an OSM file into raw canonical layers (EPSG:4326), before validation.

    Parameters
    ----------
    path
        ``.osm.pbf``, ``.osm`` (XML) or compressed XML.
    settings
        ``buildings.floor_height_m`` turns heights into floors;
        ``coverage.park_min_area_m2`` separates parks from greens.
    notes
        Receives what was inferred or skipped (residential by land use, incomplete
        boundaries…).
    progress
        ``callback(objects_done, 0)`` every 10,000 objects.

    Raises
    ------
    ReadError
        When the file cannot be parsed.
    """
    notes = notes if notes is not None else []
    where = str(path)
    reader = _OsmReader(settings.buildings.floor_height_m)
    done = 0
    try:
        fp = osmium.FileProcessor(str(path)).with_locations().with_areas()
        fp = fp.with_filter(osmium.filter.KeyFilter(*MAIN_KEYS))
        for obj in fp:
            done += 1
            if progress is not None and done % 10_000 == 0:
                progress(done, 0)
            if obj.is_way():  # as a line: only roads (closed ways come again as areas)
                reader.way(obj)
            elif obj.is_relation():
                if obj.tags.get("boundary") == "administrative":
                    reader.admin_relations[obj.id] = {"name": obj.tags.get("name") or str(obj.id)}
            elif obj.is_node():
                reader.node(obj)
            elif obj.is_area():
                reader.area(obj)
    except RuntimeError as exc:
        raise ReadError(f"{where}: cannot read as OpenStreetMap: {exc}") from exc
    if progress is not None:
        progress(done, done)
    notes.extend(reader.notes(where))
    frames = _frames(reader.rows, settings, where, notes)
    found = _addresses(
        list(reader.addresses.values()), frames.get("buildings"), settings, where, notes
    )
    if found is not None:
        frames["addresses"] = found
    return frames


class _OsmReader:
    """Rows collected from the OSM objects, one method per kind of object."""

    def __init__(self, floor_h: float) -> None:
        self.wkb = osmium.geom.WKBFactory()
        self.floor_h = floor_h
        self.rows: dict[str, list[dict]] = {
            k: []
            for k in (
                "buildings",
                "roads",
                "facilities",
                "green_spaces",
                "institutions",
                "boundaries",
                "context",
                "gates",
                "compound_areas",
            )
        }
        # objects with addr:housenumber by id: an open way's line point is replaced by
        # the surface point of its area when the way is closed and comes again as an area
        self.addresses: dict[str, dict] = {}
        self.broken = {"ways": 0, "areas": 0}
        self.tunnels: list[str] = []  # names (or ids) of the motor-road tunnel ways dropped
        self.admin_relations: dict[int, dict[str, str]] = {}
        self.admin_areas: set[int] = set()

    def way(self, obj) -> None:
        get = obj.tags.get
        if get("addr:housenumber") is not None:
            try:
                line = self.wkb.create_linestring(obj)
            except (RuntimeError, osmium.InvalidLocationError):
                line = None
            _address(_read_tags(get), f"osm_w{obj.id}", line, False, self.addresses)
        hw = get("highway")
        if hw not in HIGHWAY_CLASS or get("area") == "yes":
            return
        tunnel = get("tunnel")
        if (
            HIGHWAY_CLASS[hw] in TUNNEL_DROPPED_CLASSES
            and tunnel is not None
            and tunnel not in SURFACE_TUNNEL_VALUES
        ):
            self.tunnels.append(get("name") or get("name:zh") or f"osm_w{obj.id}")
            return
        try:
            geom = self.wkb.create_linestring(obj)
        except (RuntimeError, osmium.InvalidLocationError):
            self.broken["ways"] += 1
            return
        self.rows["roads"].append(
            {
                "road_id": f"osm_w{obj.id}",
                "name": get("name") or get("name:zh"),
                "road_class": HIGHWAY_CLASS[hw],
                "highway": hw,
                **_grade_tags(get),
                "wkb": geom,
            }
        )

    def node(self, obj) -> None:
        tags = _read_tags(obj.tags.get)
        _gate_row(tags, obj, self.wkb, self.rows["gates"])
        cat = facility_category(tags)
        if cat is not None and obj.location.valid():
            self.rows["facilities"].append(
                {
                    "facility_id": f"osm_n{obj.id}",
                    "name": _name(tags),
                    "category": cat,
                    "osm_tags": _tag_text(tags),
                    "wkb": self.wkb.create_point(obj),
                }
            )
        if "addr:housenumber" in tags:
            point = self.wkb.create_point(obj) if obj.location.valid() else None
            _address(tags, f"osm_n{obj.id}", point, False, self.addresses)

    def area(self, obj) -> None:
        tags = _read_tags(obj.tags.get)
        try:
            geom = self.wkb.create_multipolygon(obj)
        except (RuntimeError, osmium.InvalidLocationError):
            self.broken["areas"] += 1
            return
        oid = f"osm_{'w' if obj.from_way() else 'r'}{obj.orig_id()}"
        _area(tags, oid, geom, self.rows, self.floor_h)
        if "addr:housenumber" in tags:
            building = tags.get("building", "no") != "no"
            _address(tags, oid, geom, building, self.addresses)
        if not obj.from_way() and tags.get("boundary") == "administrative":
            self.admin_areas.add(obj.orig_id())

    def notes(self, where: str) -> list[str]:
        """What was skipped while reading."""
        out = []
        if self.broken["ways"] or self.broken["areas"]:
            out.append(
                f"{where}: skipped {self.broken['ways']} ways and {self.broken['areas']} "
                f"areas with nodes missing from the extract"
            )
        if self.tunnels:
            distinct = list(dict.fromkeys(self.tunnels))
            names = ", ".join(distinct[:5]) + ("…" if len(distinct) > 5 else "")
            out.append(
                f"{where}: dropped {len(self.tunnels)} motor-road tunnel ways "
                f"({'/'.join(TUNNEL_DROPPED_CLASSES)} roads tagged tunnel: underground, "
                f"they do not divide the surface, cannot be walked and are not "
                f"crossings; pedestrian tunnels kept): {names}"
            )
        incomplete = [
            t.get("name", str(i))
            for i, t in self.admin_relations.items()
            if i not in self.admin_areas
        ]
        if incomplete:
            out.append(
                f"{where}: {len(incomplete)} administrative boundaries are incomplete "
                f"in this extract and were skipped ({', '.join(incomplete[:5])})"
            )
        return out


def _address(
    tags: dict[str, str], oid: str, geom: bytes | None, building: bool, out: dict[str, dict]
) -> None:
    """Keep the address tags of one object (its geometry as WKB, None when unknown)."""
    out[oid] = {
        "address_id": oid,
        "housenumber": tags["addr:housenumber"],
        "street": tags.get("addr:street"),
        "place": tags.get("addr:place"),
        "name": _name(tags),
        "building": building,
        "wkb": geom,
    }


def _addresses(
    found: list[dict],
    buildings: gpd.GeoDataFrame | None,
    settings: Settings,
    where: str,
    notes: list[str],
) -> gpd.GeoDataFrame | None:
    """The ``addresses`` layer from the objects carrying ``addr:housenumber``.

    Parameters
    ----------
    found
        One dict per object (from :func:`_address`): id, housenumber, street, place,
        name, whether it is a building, geometry WKB (EPSG:4326).
    buildings
        The buildings read from the same file: ``building_id`` is set only for objects
        imported there.
    settings
        ``address.same_place_m`` (m): rows with the same normalised text closer than this
        are one place, and only one is kept.
    where, notes
        The file name for messages; receives the counts of skipped and merged objects.

    Returns
    -------
    GeoDataFrame or None
        Points with the fields of :data:`gridgis.layers.SCHEMA` ``addresses``; None when
        no object gave an address.
    """
    if not found:
        return None
    skipped: dict[str, list[str]] = {
        "no_street": [],
        "not_door": [],
        "not_chinese": [],
        "no_geometry": [],
    }
    rows = []
    for f in found:
        street = (f["street"] or f["place"] or "").strip()
        number = door_number(f["housenumber"])
        if number is None:
            skipped["not_door"].append(f"{street or f['address_id']} {f['housenumber']}")
            continue
        if not street:
            skipped["no_street"].append(f"{f['address_id']} {f['housenumber']}")
            continue
        if not _RE_HAN.search(street):
            skipped["not_chinese"].append(f"{street} {f['housenumber']}")
            continue
        if f["wkb"] is None:
            skipped["no_geometry"].append(f["address_id"])
            continue
        rows.append(
            {
                "address_id": f["address_id"],
                "text": street + number,
                "name": f["name"],
                "road": street,
                "number": number,
                "building": f["building"],
                "wkb": f["wkb"],
            }
        )
    reasons = {
        "no_street": "with addr:housenumber but no addr:street or addr:place",
        "not_door": "whose addr:housenumber is not a door number (a floor, a "
        "building, several numbers)",
        "not_chinese": "whose street is not written in Chinese",
        "no_geometry": "with nodes missing from the extract",
    }
    for key, items in skipped.items():
        if items:
            notes.append(
                f"{where}: addresses: skipped {len(items)} objects {reasons[key]} "
                f"({', '.join(items[:5])}{'…' if len(items) > 5 else ''})"
            )
    if not rows:
        return None
    gdf = _gdf(rows)
    gdf = gdf.set_geometry(shapely.point_on_surface(gdf.geometry.values))
    known = set(buildings["building_id"]) if buildings is not None else set()
    is_building = gdf.pop("building").to_numpy(dtype=bool)
    gdf["building_id"] = np.where(
        is_building & gdf["address_id"].isin(known), gdf["address_id"], None
    )
    gdf = _one_per_place(gdf, settings.address.same_place_m, where, notes)
    loose = []
    for text, road, number in zip(gdf["text"], gdf["road"], gdf["number"], strict=True):
        p = parse(text, settings)
        # 16号院: the door number 16号 of a compound
        if (
            p.road != normalise(road).text
            or not p.number
            or not normalise(number).text.startswith(p.number)
        ):
            loose.append(f"{text}: {p.road or p.poi or '?'} + {p.number or p.building or '?'}")
    if loose:
        cases = list(dict.fromkeys(loose))
        notes.append(
            f"{where}: addresses: {len(loose)} of {len(gdf)} texts are not split into "
            f"road + door number by the address parser (kept; a query is parsed the "
            f"same way): {', '.join(cases[:5])}{'…' if len(cases) > 5 else ''}"
        )
    return gdf


def _one_per_place(
    gdf: gpd.GeoDataFrame, same_place_m: float, where: str, notes: list[str]
) -> gpd.GeoDataFrame:
    """Keep one row of each normalised address text within ``same_place_m`` metres: a
    building first (the lookup can return it), then a named object, then file order."""
    key = gdf["text"].map(lambda t: normalise(t).text)
    rank = gdf["building_id"].isna().astype(int) * 2 + gdf["name"].isna().astype(int)
    order = np.lexsort((np.arange(len(gdf)), rank.to_numpy(), key.to_numpy()))
    xy = shapely.get_coordinates(gdf.to_crs(metric_crs_for(gdf)).geometry.values)
    kept: dict[str, list[int]] = {}
    keep = np.zeros(len(gdf), dtype=bool)
    for i in order:
        others = kept.setdefault(key.iloc[i], [])
        if all(np.hypot(*(xy[i] - xy[j])) > same_place_m for j in others):
            others.append(i)
            keep[i] = True
    dropped = gdf.loc[~keep, "text"]
    if len(dropped):
        names = list(dict.fromkeys(dropped))
        notes.append(
            f"{where}: addresses: {len(dropped)} duplicates (same text within "
            f"{same_place_m:g} m of a kept one) merged: "
            f"{', '.join(names[:5])}{'…' if len(names) > 5 else ''}"
        )
    return gdf.loc[keep].reset_index(drop=True)


def _tag_text(tags: dict[str, str]) -> str:
    keep = ("amenity", "shop", "healthcare", "leisure", "highway", "isced:level")
    return ";".join(f"{k}={tags[k]}" for k in keep if k in tags)


def _area(
    tags: dict[str, str], oid: str, geom: bytes, rows: dict[str, list[dict]], floor_h: float
) -> None:
    name = _name(tags)
    building = tags.get("building")
    if building and building != "no":
        use = BUILDING_USE.get(building)
        if use is None:  # building=yes and the like: own tags first
            if tags.get("amenity") in ("school", "kindergarten", "university", "college"):
                use = "school"
            elif tags.get("amenity") in ("hospital", "clinic"):
                use = "hospital"
            elif "shop" in tags:
                use = "commercial"
            elif "office" in tags:
                use = "office"
        rows["buildings"].append(
            {
                "building_id": oid,
                "name": name,
                "use": use,
                "floors": _floors(tags, floor_h),
                "building_tag": building,
                "wkb": geom,
            }
        )
    cat = facility_category(tags)
    if cat is not None:
        rows["facilities"].append(
            {
                "facility_id": oid,
                "name": name,
                "category": cat,
                "osm_tags": _tag_text(tags),
                "wkb": geom,
            }
        )
    for key in ("amenity", "healthcare", "landuse", "man_made", "military", "office"):
        kind = INSTITUTION_KIND.get((key, tags.get(key, "")))
        if kind is not None:
            rows["institutions"].append({"unit_id": oid, "name": name, "kind": kind, "wkb": geom})
            break
    pairs = {(k, tags[k]) for k in ("leisure", "landuse", "place") if k in tags}
    if tags.get("access") not in ("private", "no"):
        kind = (
            "park"
            if pairs & PARK_TAGS
            else "green"
            if pairs & GREEN_TAGS
            else "square"
            if pairs & SQUARE_TAGS
            else None
        )
        if kind is not None:
            rows["green_spaces"].append(
                {
                    "green_id": oid,
                    "name": name,
                    "kind": kind,
                    "osm_kind": "/".join(sorted(v for _, v in pairs)),
                    "wkb": geom,
                }
            )
    for key in ("landuse", "amenity"):
        ctx = CONTEXT_USE.get((key, tags.get(key, "")))
        if ctx is not None and not building:
            rows["context"].append({"use": ctx, "wkb": geom})
            rows["compound_areas"].append(
                {"compound_id": oid, "name": name, "use": ctx, "wkb": geom}
            )
            break
    if tags.get("boundary") == "administrative" and oid.startswith("osm_r"):
        rows["boundaries"].append(
            {
                "osm_id": oid,
                "name": name,
                "admin_level": tags.get("admin_level"),
                "code": tags.get("ref")
                or tags.get("gb:code")
                or tags.get("ref:gb")
                or tags.get("division_code"),
                "wkb": geom,
            }
        )


def _gdf(rows: list[dict]) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(rows)
    if frame.empty:
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs="EPSG:4326"))
    geom = shapely.from_wkb(frame.pop("wkb").to_numpy())
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geom, crs="EPSG:4326"))


def _frames(
    rows: dict[str, list[dict]], settings: Settings, where: str, notes: list[str]
) -> dict[str, gpd.GeoDataFrame]:
    out: dict[str, gpd.GeoDataFrame] = {}
    buildings = _gdf(rows["buildings"])
    context = _gdf(rows["context"])
    if len(buildings) and len(context):
        unknown = buildings["use"].isna().to_numpy()
        if unknown.any():
            # the land use / campus each untyped building stands in (its representative
            # point), campuses before land use; one sindex query for all
            pts = shapely.point_on_surface(buildings.geometry.values[unknown])
            hit_pt, hit_ctx = context.sindex.query(pts, predicate="within")
            ctx_use = context["use"].to_numpy()[hit_ctx]
            rank = np.array([CONTEXT_RANK[u] for u in ctx_use], dtype=int)
            order = np.lexsort((rank, hit_pt))
            first = np.unique(hit_pt[order], return_index=True)
            idx = np.flatnonzero(unknown)[first[0]]
            uses = ctx_use[order][first[1]]
            buildings.loc[buildings.index[idx], "use"] = uses
            res = int((uses == "residential").sum())
            notes.append(
                f"{where}: {len(idx)} buildings tagged only building=yes took their "
                f"use from the land use or campus they stand in "
                f"({res} residential, from landuse=residential)"
            )
    if len(buildings):
        unknown = int(buildings["use"].isna().sum())
        if unknown:
            notes.append(
                f"{where}: {unknown} buildings have no use in their tags or "
                f"surroundings: use 'other', no households (import a buildings "
                f"file with households, or tag landuse=residential, to count them)"
            )
        buildings["use"] = buildings["use"].fillna("other")
        out["buildings"] = buildings
    if rows["roads"]:
        out["roads"] = _gdf(rows["roads"])
    if rows["facilities"]:
        fac = _gdf(rows["facilities"])
        other = fac["category"] == "other"
        if other.any():
            notes.append(
                f"{where}: {int(other.sum())} schools without isced:level or a "
                f"小学/中学 name were given category 'other'"
            )
        out["facilities"] = fac
    if rows["institutions"]:
        out["institutions"] = _gdf(rows["institutions"])
    if rows["green_spaces"]:
        green = _gdf(rows["green_spaces"])
        parks = green["kind"] == "park"
        if parks.any():
            area = green.to_crs(metric_crs_for(green)).area.to_numpy()
            small = parks.to_numpy() & (area < settings.coverage.park_min_area_m2)
            green.loc[small, "kind"] = "green"
            green["area_m2"] = np.round(area, 1)
            if small.any():
                notes.append(
                    f"{where}: {int(small.sum())} parks/gardens smaller than "
                    f"{settings.coverage.park_min_area_m2:,.0f} m² counted as green"
                )
        out["green_spaces"] = green
    _boundaries(_gdf(rows["boundaries"]), out, settings, where, notes)
    _compounds(rows, out, settings, where, notes)
    return out


def _boundaries(
    bounds: gpd.GeoDataFrame,
    out: dict[str, gpd.GeoDataFrame],
    settings: Settings,
    where: str,
    notes: list[str],
) -> None:
    """Complete admin_level 8 relations become streets, 9/10 communities, when they carry
    a valid division code; others are skipped with a note (codes cannot be invented)."""
    from gridgis import codes

    if not len(bounds):
        return
    level = pd.to_numeric(bounds["admin_level"], errors="coerce")
    for layer, levels, key, n, check in (
        ("streets", (8,), "street_code", 9, codes.validate_street_code),
        ("communities", (9, 10), "community_code", 12, codes.validate_community_code),
    ):
        sel = bounds[level.isin(levels)].copy()
        if not len(sel):
            continue
        text = sel["code"].fillna("").astype(str).str.replace(r"\D", "", regex=True)
        # statistical codes are often written with 12 digits: 320102001000 for a street
        if n == 9:
            padded = (text.str.len() == 12) & text.str.endswith("000")
            text = text.where(~padded, text.str[:9])
        valid = []
        for code in text:
            try:
                valid.append(check(code, settings))
            except codes.CodeError:
                valid.append(None)
        sel[key] = valid
        skipped = sel[key].isna()
        if skipped.any():
            notes.append(
                f"{where}: {int(skipped.sum())} complete admin_level "
                f"{'/'.join(map(str, levels))} boundaries have no valid {n}-digit "
                f"code and were not imported as {layer} "
                f"({', '.join(sel.loc[skipped, 'name'].fillna('?').head(5))})"
            )
        sel = sel[~skipped]
        if len(sel):
            if layer == "communities":
                sel["street_code"] = sel[key].str[:9]
            out[layer] = sel.drop(columns=["code", "admin_level"])


# -- walls and gates (issue 13) -------------------------------------------------------

#: ``barrier`` values of a gate in a wall (OSM); ``entrance=*`` nodes count too.
GATE_BARRIERS = ("gate", "entrance", "lift_gate", "swing_gate", "sliding_gate", "turnstile")


def _grade_tags(get: Callable[[str], str | None]) -> dict[str, object]:
    """``layer``, ``bridge``, ``tunnel`` of a road way (its grade: roads of different
    grades cross without meeting). Ground-level tunnel values are not tunnels."""
    m = re.fullmatch(r"\s*([+-]?\d+)(?:\.\d+)?\s*", get("layer") or "")
    layer = int(m.group(1)) if m else None
    bridge = get("bridge")
    tunnel = get("tunnel")
    return {
        "layer": layer,
        "bridge": None if bridge is None else bridge != "no",
        "tunnel": None if tunnel is None else tunnel not in SURFACE_TUNNEL_VALUES,
    }


def _is_gate(tags: dict[str, str]) -> bool:
    return tags.get("barrier") in GATE_BARRIERS or "entrance" in tags


def _gate_row(tags: dict[str, str], node, wkb, out: list[dict]) -> None:
    """Add a gate row when the node is a gate or entrance with a location."""
    if not (node.location.valid() and _is_gate(tags)):
        return
    out.append(
        {
            "gate_id": f"osm_n{node.id}",
            "name": _name(tags),
            "access": tags.get("access"),
            "kind": tags.get("barrier") or f"entrance={tags.get('entrance')}",
            "wkb": wkb.create_point(node),
        }
    )


def _compounds(
    rows: dict[str, list[dict]],
    out: dict[str, gpd.GeoDataFrame],
    settings: Settings,
    where: str,
    notes: list[str],
) -> None:
    """Layers ``gates`` (gate and entrance nodes on a compound boundary) and
    ``compounds`` (residential land use and campuses with at least one such gate; the
    others have no gate in the data and are not walled)."""
    if not rows["gates"] or not rows["compound_areas"]:
        return
    gates = _gdf(rows["gates"])
    areas = _gdf(rows["compound_areas"])
    crs = metric_crs_for(areas)
    ring = shapely.boundary(np.asarray(areas.to_crs(crs).geometry.values))
    pts = np.asarray(gates.to_crs(crs).geometry.values)
    gi, ai = shapely.STRtree(ring).query(
        pts, predicate="dwithin", distance=settings.network.gate_snap_m
    )
    if len(gi) == 0:
        return
    on = np.unique(gi)
    walled = np.unique(ai)
    out["gates"] = gates.iloc[on].reset_index(drop=True)
    out["compounds"] = areas.iloc[walled].reset_index(drop=True)
    closed = out["gates"]["access"].isin(settings.network.closed_access).sum()
    notes.append(
        f"{where}: {len(walled)} compounds (residential land use, campuses) with "
        f"{len(on)} gates on their boundary ({int(closed)} closed); walks enter them "
        f"only at the gates"
    )


def is_osm(path: Path) -> bool:
    """True when the file name says OpenStreetMap (PBF or XML)."""
    name = path.name.lower()
    return name.endswith(OSM_SUFFIXES)
