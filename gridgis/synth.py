"""A deterministic synthetic Chinese city for demos, tests and benchmarks.

The city is laid out the way a planning institute would recognise:

* arterial roads (主干路) on a grid 400–800 m apart enclose superblocks;
* inside each, branch roads (支路), some secondary roads and compound paths 150–250 m
  apart cut street blocks (街坊);
* most blocks are gated compounds (小区) of 6-storey walk-ups (多层) or 18–33-storey towers
  (高层), rows oriented east–west for sunlight, with an internal north–south path;
* the rest are parks, pocket greens, squares, commercial and office blocks, a hospital,
  a school campus and a factory, public-service blocks and vacant land;
* communities (社区) of 1,500–3,500 households are bands of blocks between roads; streets
  (街道) are contiguous runs of communities; codes are structurally valid statistical
  division codes in a county code that does not exist (``320199``: Jiangsu, Nanjing,
  county 99), marked synthetic;
* facilities of every category are sprinkled at realistic densities, leaving the gaps a
  coverage analysis should find; community offices vary in floor area and staffing so
  some communities fail the norms;
* standard addresses: road + door number + compound + building + unit.

Same seed, same city. Geometry is built in the metric CGCS2000 3-degree Gauss–Krüger
zone EPSG:4549 (central meridian 120°E) and returned in EPSG:4326.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgis.layers import validate
from gridgis.standards import DEFAULT, Settings

METRIC_CRS = "EPSG:4549"
ORIGIN_LONLAT = (118.86, 32.10)  # north-west corner of the city
COUNTY_CODE = "320199"
CITY_NAME = "示范市示范区 (synthetic demo city)"

ROAD_HALF_WIDTH_M = {"arterial": 20.0, "secondary": 12.0, "branch": 7.0, "path": 3.0}
SETBACK_M = 5.0

_NAME_A = list(
    "东西南北中新长安和平建设人民解放光明幸福朝阳春华秋实青松翠柏金桥银河"
    "龙凤紫云玉兰海棠梅园竹林枫林桂花丹霞彩虹星辰明月清风锦绣"
)
_ROAD_SUFFIX = ["路", "街", "大道", "路", "巷"]
_COMPOUND_SUFFIX = ["小区", "花园", "苑", "新村", "家园", "公寓", "雅居", "名苑"]
_SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金贾"
)
_GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国玉兰志强红梅晓东海燕春雷")


@dataclass
class City:
    """The layers of a synthetic city and what produced them."""

    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame]
    meta: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def households(self) -> int:
        return int(self.layers["buildings"]["households"].sum())


# --------------------------------------------------------------------------------------
# Naming helpers
# --------------------------------------------------------------------------------------


class _Names:
    """Unique Chinese names drawn deterministically from the seed."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _two(self) -> str:
        a, b = self.rng.choice(_NAME_A, 2, replace=False)
        return f"{a}{b}"

    def unique(self, suffix: str) -> str:
        for _ in range(200):
            name = self._two() + suffix
            if name not in self.used:
                self.used.add(name)
                return name
        name = f"{self._two()}{len(self.used)}{suffix}"
        self.used.add(name)
        return name

    def person(self) -> str:
        s = self.rng.choice(_SURNAMES)
        g = "".join(self.rng.choice(_GIVEN, int(self.rng.integers(1, 3))))
        return f"{s}{g}"

    def phone(self) -> str:
        return f"1{self.rng.choice([3, 5, 8, 9])}{self.rng.integers(0, 10**9):09d}"


def _splits(length: float, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """Interior cut offsets (from 0) dividing ``length`` into parts of lo–hi metres."""
    n = max(1, int(round(length / ((lo + hi) / 2))))
    while n > 1 and length / n < lo:
        n -= 1
    while length / n > hi:
        n += 1
    edges = np.linspace(0.0, length, n + 1)
    jitter = rng.uniform(-0.08, 0.08, n - 1) * (length / n)
    edges[1:-1] += jitter
    return np.round(edges, 1)


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------


class _CityBuilder:
    def __init__(self, households: int, seed: int, settings: Settings) -> None:
        self.target = int(households)
        self.seed = seed
        self.settings = settings
        self.rng = np.random.default_rng(seed)
        self.names = _Names(self.rng)
        to_m = pyproj.Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
        self.x0, self.y0 = (round(v, 0) for v in to_m.transform(*ORIGIN_LONLAT))
        self.total = 0
        self.buildings: list[dict] = []
        self.roads: list[dict] = []
        self.blocks: list[dict] = []  # one per cell between road centrelines
        self.greens: list[dict] = []
        self.institutions: list[dict] = []
        self.facilities: list[dict] = []
        self.compounds: list[dict] = []  # walled residential compounds (封闭小区)
        self.gates: list[dict] = []
        # gates draw from their own stream: the rest of the city is the same with or
        # without walls
        self.gate_rng = np.random.default_rng(seed + 10_007)
        self.addresses: list[dict] = []
        self.superblocks: list[dict] = []
        self._road_keys: set[tuple] = set()
        self._forced = ["hospital", "school_campus", "factory", "park"]

    # -- roads --------------------------------------------------------------------------
    def _road(
        self, a: tuple[float, float], b: tuple[float, float], cls: str, name: str | None
    ) -> None:
        key = (round(a[0], 1), round(a[1], 1), round(b[0], 1), round(b[1], 1))
        if key in self._road_keys or key[2:] + key[:2] in self._road_keys:
            return
        self._road_keys.add(key)
        self.roads.append(
            {
                "name": None if name is None else str(name),
                "road_class": str(cls),
                "geometry": shapely.LineString([a, b]),
            }
        )

    # -- layout -------------------------------------------------------------------------
    def build(self) -> None:
        rng = self.rng
        # Households per superblock is about 3,500 on average; rows of superblocks chosen
        # so the city comes out roughly square.
        n_sb = max(2.0, self.target / 3_500.0)
        n_rows = max(1, int(round(np.sqrt(n_sb))))
        row_h = rng.uniform(400, 800, n_rows).round(0)
        row_y = self.y0 - np.concatenate([[0.0], np.cumsum(row_h)])  # north → south
        self.arterial_h_names = [
            self.names.unique(rng.choice(["路", "大道", "大街"])) for _ in range(n_rows + 1)
        ]
        col = 0
        x = self.x0
        vname_e = self.names.unique(rng.choice(["路", "大道"]))
        while self.total < self.target:
            width = float(round(rng.uniform(400, 800)))
            vname_w, vname_e = vname_e, self.names.unique(rng.choice(["路", "大道"]))
            rows = range(n_rows) if col % 2 == 0 else range(n_rows - 1, -1, -1)
            for j in rows:
                if self.total >= self.target:
                    break
                box = (x, row_y[j + 1], x + width, row_y[j])
                self._superblock(
                    box,
                    col,
                    j,
                    (vname_w, vname_e, self.arterial_h_names[j], self.arterial_h_names[j + 1]),
                )
            x += width
            col += 1

    def _superblock(self, box, col: int, row: int, arterial_names) -> None:
        rng = self.rng
        x0, y0, x1, y1 = box
        w_name, e_name, n_name, s_name = arterial_names
        self._road((x0, y1), (x1, y1), "arterial", n_name)
        self._road((x0, y0), (x1, y0), "arterial", s_name)
        self._road((x0, y0), (x0, y1), "arterial", w_name)
        self._road((x1, y0), (x1, y1), "arterial", e_name)
        xs = x0 + _splits(x1 - x0, 150, 250, rng)
        ys = y1 - _splits(y1 - y0, 150, 250, rng)  # north → south
        v_cls = (
            ["arterial"]
            + [
                (
                    "secondary"
                    if len(xs) > 3 and k == len(xs) // 2
                    else rng.choice(["branch", "branch", "path"])
                )
                for k in range(1, len(xs) - 1)
            ]
            + ["arterial"]
        )
        h_cls = (
            ["arterial"]
            + [rng.choice(["branch", "branch", "path"]) for _ in range(1, len(ys) - 1)]
            + ["arterial"]
        )
        for k in range(1, len(xs) - 1):
            nm = self.names.unique(rng.choice(_ROAD_SUFFIX)) if v_cls[k] != "path" else None
            self._road((xs[k], y0), (xs[k], y1), v_cls[k], nm)
        h_names: list[str | None] = [n_name]
        for k in range(1, len(ys) - 1):
            nm = self.names.unique(rng.choice(_ROAD_SUFFIX)) if h_cls[k] != "path" else None
            h_names.append(nm)
            self._road((x0, ys[k]), (x1, ys[k]), h_cls[k], nm)
        h_names.append(s_name)
        sb = {
            "id": len(self.superblocks),
            "col": col,
            "row": row,
            "box": box,
            "rows": len(ys) - 1,
            "cols": len(xs) - 1,
            "cells": [],
        }
        self.superblocks.append(sb)
        # name of the road on each side of a cell (for door plates)
        for r in range(len(ys) - 1):
            for c in range(len(xs) - 1):
                cell = (xs[c], ys[r + 1], xs[c + 1], ys[r])
                edges = {"w": v_cls[c], "e": v_cls[c + 1], "n": h_cls[r], "s": h_cls[r + 1]}
                block = {
                    "id": len(self.blocks),
                    "sb": sb["id"],
                    "r": r,
                    "c": c,
                    "cell": cell,
                    "edges": edges,
                    "households": 0,
                    "south_road": next(n for n in h_names[r + 1 :] if n),
                    "use": None,
                }
                self.blocks.append(block)
                sb["cells"].append(block["id"])
                self._fill(block)

    # -- block contents -----------------------------------------------------------------
    def _inner(self, block) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = block["cell"]
        e = block["edges"]
        return (
            x0 + ROAD_HALF_WIDTH_M[e["w"]] + SETBACK_M,
            y0 + ROAD_HALF_WIDTH_M[e["s"]] + SETBACK_M,
            x1 - ROAD_HALF_WIDTH_M[e["e"]] - SETBACK_M,
            y1 - ROAD_HALF_WIDTH_M[e["n"]] - SETBACK_M,
        )

    def _fill(self, block) -> None:
        rng = self.rng
        if self.total >= self.target:
            use = "vacant" if rng.random() < 0.7 else "green"
        elif self._forced and rng.random() < 0.5:
            use = self._forced.pop(0)
        else:
            use = rng.choice(
                ["residential"] * 74
                + ["park"] * 3
                + ["green"] * 3
                + ["commercial"] * 7
                + ["public"] * 6
                + ["school_campus"] * 2
                + ["hospital"] * 1
                + ["factory"] * 1
                + ["office"] * 2
                + ["vacant"] * 1
            )
        block["use"] = str(use)
        inner = self._inner(block)
        if use == "residential":
            self._compound(block, inner)
        elif use == "park":
            self._green(shapely.box(*inner), "park", self.names.unique("公园"))
        elif use == "green":
            ix0, iy0, ix1, iy1 = inner
            if use == "green" and rng.random() < 0.5:
                self._green(shapely.box(*inner), "square", self.names.unique("广场"))
            else:
                w = min(ix1 - ix0, 90.0)
                h = min(iy1 - iy0, 70.0)
                self._green(
                    shapely.box(ix0, iy0, ix0 + w, iy0 + h), "green", self.names.unique("游园")
                )
        elif use in ("hospital", "school_campus", "factory"):
            self._institution(block, inner, use)
        elif use in ("commercial", "office", "public"):
            self._civic(block, inner, use)

    def _green(self, geom, kind: str, name: str) -> None:
        self.greens.append({"name": name, "kind": kind, "geometry": geom})

    def _compound(self, block, inner) -> None:
        rng = self.rng
        ix0, iy0, ix1, iy1 = inner
        if ix1 - ix0 < 60 or iy1 - iy0 < 50:
            block["use"] = "green"
            self._green(shapely.box(*inner), "green", self.names.unique("绿地"))
            return
        tower = rng.random() < 0.4
        name = self.names.unique(rng.choice(_COMPOUND_SUFFIX))
        block["compound"] = name
        xm = round((ix0 + ix1) / 2, 1)
        # internal north–south path from the southern to the northern edge road
        x0c, y0c, x1c, y1c = block["cell"]
        self._road((xm, y0c), (xm, y1c), "path", None)
        self._walls(name, inner, xm)
        door = self._door_number(block)
        boxes = []
        if tower:
            fw, fd, px, py = 30.0, 18.0, 52.0, 58.0
        else:
            fw, fd, px, py = float(rng.choice([42.0, 54.0, 66.0])), 12.0, 0.0, 34.0
        y = iy1 - fd
        while y >= iy0:
            for half in ((ix0, xm - 6.0), (xm + 6.0, ix1)):
                hx = half[0]
                while hx + fw <= half[1]:
                    boxes.append((hx, y, hx + fw, y + fd))
                    hx += px if tower else fw + 10.0
            y -= py
        # small pocket green in a third of compounds (some below the 400 m² threshold)
        if rng.random() < 0.33:
            gw, gh = rng.choice([(15.0, 15.0), (25.0, 20.0), (40.0, 30.0), (50.0, 40.0)])
            gx, gy = xm + 8.0, iy0
            g = shapely.box(gx, gy, gx + gw, gy + gh)
            if not any(shapely.box(*b).intersects(g) for b in boxes):
                self._green(g, "green", f"{name}绿地")
        k = 0
        for b in boxes:
            if self.total >= self.target:
                break
            k += 1
            if tower:
                floors = int(rng.integers(18, 34))
                units = int(rng.choice([1, 2]))
                per_floor = int(rng.choice([2, 2, 3, 4])) if units == 1 else 2
                hh = floors * units * per_floor
            else:
                floors = int(rng.choice([5, 6, 6, 6, 7]))
                units = int(round((b[2] - b[0]) / 13.0))
                hh = floors * units * 2
            hh = min(hh, self.target - self.total)
            self.total += hh
            block["households"] += hh
            bid = f"B{len(self.buildings) + 1:06d}"
            self.buildings.append(
                {
                    "building_id": bid,
                    "name": f"{name}{k}栋",
                    "households": hh,
                    "households_estimated": False,
                    "floors": floors,
                    "use": "residential",
                    "compound": name,
                    "geometry": shapely.box(*b),
                }
            )
            for u in range(1, units + 1):
                ux = b[0] + (u - 0.5) * (b[2] - b[0]) / units
                self.addresses.append(
                    {
                        "text": f"{block['south_road']}{door}号{name}{k}栋{u}单元",
                        "name": name,
                        "road": block["south_road"],
                        "number": f"{door}号",
                        "building_no": f"{k}栋",
                        "unit": f"{u}单元",
                        "building_id": bid,
                        "geometry": shapely.Point(ux, b[1] + 1.0),
                    }
                )
        self.addresses.append(
            {
                "text": f"{block['south_road']}{door}号",
                "name": name,
                "road": block["south_road"],
                "number": f"{door}号",
                "building_no": None,
                "unit": None,
                "building_id": None,
                "geometry": shapely.Point(xm, block["cell"][1] + 10.0),
            }
        )

    def _walls(self, name: str, inner, xm: float) -> None:
        """A walled compound and its gates where the path crosses the wall: most have
        both (south and north), some only the south one, and some a single far gate on
        the north wall (the address is on the south road)."""
        ix0, iy0, ix1, iy1 = inner
        cid = f"C{len(self.compounds) + 1:06d}"
        self.compounds.append(
            {
                "compound_id": cid,
                "name": name,
                "use": "residential",
                "geometry": shapely.box(*inner),
            }
        )
        pick = self.gate_rng.random()
        where = [("南门", iy0), ("北门", iy1)] if pick < 0.7 else []
        if 0.7 <= pick < 0.85:
            where = [("南门", iy0)]
        elif pick >= 0.85:
            where = [("北门", iy1)]  # one far gate
        for label, y in where:
            self.gates.append(
                {
                    "gate_id": f"{cid}-{'S' if label == '南门' else 'N'}",
                    "name": f"{name}{label}",
                    "access": "yes",
                    "kind": "gate",
                    "geometry": shapely.Point(xm, y),
                }
            )

    def _door_number(self, block) -> int:
        # door plates count along the road from the city's west edge, odd on the north side
        return 1 + 2 * int(round((block["cell"][0] - self.x0 + 40.0) / 20.0))

    def _building(self, geom, use: str, name: str, floors: int) -> str:
        bid = f"B{len(self.buildings) + 1:06d}"
        self.buildings.append(
            {
                "building_id": bid,
                "name": name,
                "households": 0,
                "households_estimated": False,
                "floors": floors,
                "use": use,
                "compound": None,
                "geometry": geom,
            }
        )
        return bid

    def _institution(self, block, inner, use: str) -> None:
        rng = self.rng
        ix0, iy0, ix1, iy1 = inner
        kind, bldg_use, suffix, staff = {
            "hospital": ("hospital", "hospital", "人民医院", int(rng.integers(800, 2500))),
            "school_campus": ("school", "school", "中学", int(rng.integers(1200, 3000))),
            "factory": ("factory", "industrial", "机械厂", int(rng.integers(300, 1500))),
        }[use]
        name = self.names.unique(suffix)
        campus = shapely.box(*inner)
        self.institutions.append(
            {
                "name": name,
                "kind": kind,
                "staff": staff,
                "floor_area_m2": float(campus.area * 0.8),
                "geometry": campus,
            }
        )
        cx, cy = (ix0 + ix1) / 2, (iy0 + iy1) / 2
        for dx in (-35.0, 25.0):
            self._building(
                shapely.box(cx + dx, cy - 20, cx + dx + 40, cy + 20),
                bldg_use,
                f"{name}楼",
                int(rng.integers(3, 12)),
            )
        door = self._door_number(block)
        self.addresses.append(
            {
                "text": f"{block['south_road']}{door}号",
                "name": name,
                "road": block["south_road"],
                "number": f"{door}号",
                "building_no": None,
                "unit": None,
                "building_id": None,
                "geometry": shapely.Point(cx, iy0),
            }
        )
        category = {"hospital": "hospital", "school_campus": "middle_school", "factory": None}[use]
        if category:
            self.facilities.append(
                {
                    "name": name,
                    "category": category,
                    "floor_area_m2": float(campus.area * 0.8),
                    "geometry": shapely.Point(cx, iy0 + 5),
                }
            )
        # a small institution beside it (joins a residential grid, not a unit grid)
        if use == "factory":
            sm = shapely.box(ix0, iy0, ix0 + 60, iy0 + 50)
            self.institutions.append(
                {
                    "name": self.names.unique("所"),
                    "kind": "government",
                    "staff": 40,
                    "floor_area_m2": 2_000.0,
                    "geometry": sm,
                }
            )

    def _civic(self, block, inner, use: str) -> None:
        rng = self.rng
        ix0, iy0, ix1, iy1 = inner
        n = int(rng.integers(1, 4))
        for i in range(n):
            w = (ix1 - ix0) / n
            g = shapely.box(ix0 + i * w + 5, iy0 + 10, ix0 + (i + 1) * w - 5, iy0 + 45)
            self._building(
                g,
                use,
                self.names.unique("大厦" if use != "public" else "中心"),
                int(rng.integers(2, 25 if use != "public" else 5)),
            )
        if use == "commercial" and rng.random() < 0.6:
            self.facilities.append(
                {
                    "name": self.names.unique("菜市场"),
                    "category": "vegetable_market",
                    "floor_area_m2": float(rng.uniform(800, 3000)),
                    "geometry": shapely.Point((ix0 + ix1) / 2, iy0 + 50),
                }
            )

    # -- communities and streets --------------------------------------------------------
    def communities(self) -> tuple[list[dict], list[dict]]:
        s = self.settings.grid
        lo, hi, target = 1_500, 3_500, s.community_target_households
        groups: list[list[int]] = []  # lists of block ids, in snake order
        for sb in self.superblocks:
            rows = [[b for b in sb["cells"] if self.blocks[b]["r"] == r] for r in range(sb["rows"])]
            if sb["col"] % 2 == 1:  # going north: bands from south to north
                rows = rows[::-1]
            hh = [sum(self.blocks[b]["households"] for b in row) for row in rows]
            if sum(hh) < lo and groups:
                # a thin superblock (the city's last) joins the previous community: it
                # touches the previous superblock along the arterial between them
                groups[-1].extend(b for row in rows for b in row)
                continue
            best = None
            n = len(rows)
            for mask in range(1 << (n - 1)):
                cuts = [0] + [k + 1 for k in range(n - 1) if mask >> k & 1] + [n]
                sums = [sum(hh[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
                score = sum((v - target) ** 2 + (1e9 if not lo <= v <= hi else 0) for v in sums)
                if best is None or score < best[0]:
                    best = (score, cuts)
            cuts = best[1]
            for a, b in zip(cuts, cuts[1:], strict=False):
                groups.append([blk for row in rows[a:b] for blk in row])
        n_comm = len(groups)
        n_streets = min(99, max(3, int(round(n_comm / 8))))
        n_streets = min(n_streets, n_comm)
        bounds = np.linspace(0, n_comm, n_streets + 1).round().astype(int)
        streets, comms = [], []
        for si in range(n_streets):
            scode = f"{COUNTY_CODE}{si + 1:03d}"
            sname = self.names.unique("街道")
            streets.append({"street_code": scode, "name": sname, "blocks": []})
            for ci, gi in enumerate(range(bounds[si], bounds[si + 1])):
                ccode = f"{scode}{ci + 1:03d}"
                comms.append(
                    {
                        "community_code": ccode,
                        "name": self.names.unique("社区"),
                        "street_code": scode,
                        "urban_rural_class": "111",
                        "blocks": groups[gi],
                    }
                )
                streets[-1]["blocks"].extend(groups[gi])
        return streets, comms

    # -- facilities, staff ----------------------------------------------------------------
    def sprinkle_facilities(self, comms: list[dict]) -> None:
        """Facilities at realistic densities (per 10,000 households), placed in random
        non-park blocks near their street frontage: coverage will have gaps."""
        rng = self.rng
        per_10k = {
            "retail": 8,
            "breakfast": 6,
            "housekeeping": 2,
            "elderly_care_home": 0.6,
            "elderly_daycare": 2,
            "elderly_service_station": 2,
            "nursery": 2,
            "kindergarten": 3.5,
            "primary_school": 1.6,
            "middle_school": 0.5,
            "health_station": 2.5,
            "health_centre": 0.5,
            "sports_ground": 2.5,
            "parcel_locker": 10,
            "pharmacy": 3,
            "restaurant": 10,
            "bank": 2,
            "bus_stop": 6,
            "vegetable_market": 0.8,
        }
        label = {
            "retail": "便利店",
            "breakfast": "早餐店",
            "housekeeping": "家政服务部",
            "elderly_care_home": "养老院",
            "elderly_daycare": "日间照料中心",
            "elderly_service_station": "老年服务站",
            "nursery": "托育园",
            "kindergarten": "幼儿园",
            "primary_school": "小学",
            "middle_school": "中学",
            "health_station": "社区卫生服务站",
            "health_centre": "社区卫生服务中心",
            "sports_ground": "运动场",
            "parcel_locker": "快递驿站",
            "pharmacy": "大药房",
            "restaurant": "饭店",
            "bank": "银行",
            "bus_stop": "公交站",
            "vegetable_market": "菜市场",
        }
        area = {
            "kindergarten": (1_800, 4_000),
            "primary_school": (8_000, 15_000),
            "middle_school": (12_000, 25_000),
            "health_centre": (1_500, 3_000),
            "elderly_care_home": (2_000, 6_000),
            "elderly_daycare": (300, 800),
            "vegetable_market": (800, 2_500),
        }
        usable = [
            b for b in self.blocks if b["use"] in ("residential", "commercial", "public", "office")
        ]
        if not usable:
            return
        for cat, dens in per_10k.items():
            n = max(1, int(round(self.total / 10_000 * dens * rng.uniform(0.8, 1.2))))
            picks = rng.choice(len(usable), n, replace=len(usable) < n)
            for p in np.atleast_1d(picks):
                b = usable[int(p)]
                ix0, iy0, ix1, iy1 = self._inner(b)
                x = rng.uniform(ix0, ix1)
                y = iy0 + rng.uniform(0, 8) if cat != "bus_stop" else b["cell"][1] + 2
                lo, hi = area.get(cat, (60, 400))
                self.facilities.append(
                    {
                        "name": self.names.unique(label[cat]),
                        "category": cat,
                        "floor_area_m2": float(round(rng.uniform(lo, hi))),
                        "geometry": shapely.Point(x, y),
                    }
                )
        # one community office + service station + police room per community; some small
        for c in comms:
            blocks = [self.blocks[i] for i in c["blocks"]]
            hh = sum(b["households"] for b in blocks)
            host = max(blocks, key=lambda b: b["households"])
            ix0, iy0, ix1, iy1 = self._inner(host)
            pt = shapely.Point(ix0 + 5, iy0 + 3)
            office = float(round(hh * 0.30 * rng.uniform(0.6, 1.4)))  # ~30 m²/100 hh ± 40%
            self.facilities.append(
                {
                    "name": c["name"].replace("社区", "社区党群服务中心"),
                    "category": "community_office",
                    "floor_area_m2": max(120.0, office),
                    "geometry": pt,
                    "community_code": c["community_code"],
                }
            )
            if rng.random() < 0.85:
                self.facilities.append(
                    {
                        "name": c["name"] + "服务站",
                        "category": "community_service_station",
                        "floor_area_m2": float(round(rng.uniform(80, 300))),
                        "geometry": shapely.Point(ix0 + 15, iy0 + 3),
                    }
                )
            if rng.random() < 0.9:
                self.facilities.append(
                    {
                        "name": c["name"] + "警务室",
                        "category": "police_station",
                        "floor_area_m2": 40.0,
                        "geometry": shapely.Point(ix0 + 25, iy0 + 3),
                    }
                )

    def staff(self, comms: list[dict]) -> pd.DataFrame:
        """Full-time community workers (some communities short of 1 per 300 households,
        ≥ 6) and one police officer per community."""
        rng = self.rng
        rows = []
        rules = self.settings.staffing
        for c in comms:
            hh = sum(self.blocks[b]["households"] for b in c["blocks"])
            need = max(
                rules.min_workers_per_community, int(np.ceil(hh / rules.households_per_worker))
            )
            have = need if rng.random() < 0.7 else max(3, need - int(rng.integers(1, 4)))
            for _ in range(have):
                rows.append(
                    {
                        "name": self.names.person(),
                        "role": "community_worker",
                        "community_code": c["community_code"],
                        "grid_code": None,
                        "phone": self.names.phone(),
                    }
                )
            rows.append(
                {
                    "name": self.names.person(),
                    "role": "police",
                    "community_code": c["community_code"],
                    "grid_code": None,
                    "phone": self.names.phone(),
                }
            )
        df = pd.DataFrame(rows)
        df.insert(0, "staff_id", [f"S{i + 1:06d}" for i in range(len(df))])
        return df


def make_city(
    households: int = 30_000, seed: int = 7, settings: Settings = DEFAULT, walls: bool = True
) -> City:
    """Make the synthetic demo city.

    Parameters
    ----------
    households
        Total registered households; the result holds exactly this many (the last
        building filled is trimmed). 10,000–1,000,000 is the intended range.
    seed
        Random seed: the same seed gives the same city, byte for byte.
    settings
        Rules; the community size and staffing norms are read from them.
    walls
        Residential compounds are walled (layers ``compounds`` and ``gates``): most
        have a south and a north gate where their path crosses the wall, some only the
        south one, some a single far gate on the north wall. False: no such layers.

    Returns
    -------
    City
        ``layers`` in the canonical schema (EPSG:4326): streets, communities, buildings,
        roads, facilities, green_spaces, institutions, addresses, staff (and compounds,
        gates). ``meta`` marks
        the city synthetic and names the metric CRS it was built in.
    """
    if households < 1_000:
        raise ValueError(f"households={households}: the demo city needs at least 1,000")
    b = _CityBuilder(households, seed, settings)
    b.build()
    streets, comms = b.communities()
    b.sprinkle_facilities(comms)

    def frame(rows: list[dict], key: str, prefix: str) -> gpd.GeoDataFrame:
        gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC_CRS)
        gdf.insert(0, key, [f"{prefix}{i + 1:06d}" for i in range(len(gdf))])
        return gdf

    cells = np.array([shapely.box(*blk["cell"]) for blk in b.blocks], dtype=object)

    def union(block_ids: list[int]):
        return shapely.union_all(cells[block_ids], grid_size=0.01)

    street_gdf = gpd.GeoDataFrame(
        [
            {"street_code": s["street_code"], "name": s["name"], "geometry": union(s["blocks"])}
            for s in streets
        ],
        geometry="geometry",
        crs=METRIC_CRS,
    )
    comm_gdf = gpd.GeoDataFrame(
        [
            {k: c[k] for k in ("community_code", "name", "street_code", "urban_rural_class")}
            | {"geometry": union(c["blocks"])}
            for c in comms
        ],
        geometry="geometry",
        crs=METRIC_CRS,
    )
    buildings = gpd.GeoDataFrame(b.buildings, geometry="geometry", crs=METRIC_CRS)
    roads = frame(b.roads, "road_id", "R")
    facilities = frame(b.facilities, "facility_id", "F")
    if "community_code" in facilities:
        facilities = facilities.drop(columns="community_code")
    greens = frame(b.greens, "green_id", "G")
    institutions = frame(b.institutions, "unit_id", "U")
    addresses = frame(b.addresses, "address_id", "A")
    staff = b.staff(comms)

    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame] = {
        "streets": street_gdf,
        "communities": comm_gdf,
        "buildings": buildings,
        "roads": roads,
        "facilities": facilities,
        "green_spaces": greens,
        "institutions": institutions,
        "addresses": addresses,
    }
    if walls:
        layers["compounds"] = gpd.GeoDataFrame(b.compounds, geometry="geometry", crs=METRIC_CRS)
        layers["gates"] = gpd.GeoDataFrame(b.gates, geometry="geometry", crs=METRIC_CRS)
    layers = {k: v.to_crs("EPSG:4326") for k, v in layers.items()}
    layers["staff"] = staff
    for name, frame_ in layers.items():  # canonical dtypes; a reject here is a generator bug
        checked = validate(frame_, name, source="gridgis.synth", settings=settings)
        if len(checked.rejects):
            raise RuntimeError(
                f"synthetic layer {name} failed validation:\n{checked.rejects.head().to_string()}"
            )
        layers[name] = checked.data
    params = {
        "generator": "gridgis.synth.make_city",
        "households": int(households),
        "seed": int(seed),
        "built_in_crs": METRIC_CRS,
        "synthetic": True,
    }
    meta = {
        "synthetic": True,
        "city": CITY_NAME,
        "county_code": COUNTY_CODE,
        "computed_crs": METRIC_CRS,
        "demo_households": int(households),
        "demo_seed": int(seed),
    }
    return City(layers=layers, meta=meta, params=params)


def make_grid_staff(grids: gpd.GeoDataFrame, seed: int = 7, start: int = 1) -> pd.DataFrame:
    """Grid heads (网格长) and grid workers (网格员) for delineated grids.

    One head per grid; one worker per residential grid up to 400 households, two above;
    one worker for a unit grid. ``start`` numbers the new staff ids after existing ones.
    """
    rng = np.random.default_rng(seed + 1)
    names = _Names(rng)
    rows = []
    for g in grids.sort_values("grid_code").itertuples():
        rows.append(
            {
                "name": names.person(),
                "role": "grid_head",
                "community_code": g.community_code,
                "grid_code": g.grid_code,
                "phone": names.phone(),
            }
        )
        n = 2 if (g.kind == "residential" and (g.households or 0) > 400) else 1
        for _ in range(n):
            rows.append(
                {
                    "name": names.person(),
                    "role": "grid_worker",
                    "community_code": g.community_code,
                    "grid_code": g.grid_code,
                    "phone": names.phone(),
                }
            )
    df = pd.DataFrame(rows, columns=["name", "role", "community_code", "grid_code", "phone"])
    df.insert(0, "staff_id", [f"S{start + i:06d}" for i in range(len(df))])
    return df
