"""Benchmark and accuracy report for address and point lookup (issue 5).

Run from the repository root::

    .venv/bin/python benchmarks/bench_lookup.py            # everything
    .venv/bin/python benchmarks/bench_lookup.py --quick    # smaller samples
    .venv/bin/python benchmarks/bench_lookup.py --build-only --builds 5  # index build only
    .venv/bin/python benchmarks/bench_lookup.py --build-only --tree ../old  # another tree

Prints
1. the parser's per-field precision/recall/F1 on ../shared/data/cn-address-parsing/dev.txt;
2. matching accuracy on ../shared/data/shanghai-amap-poi: an addresses layer of 5,000
   real door-plate addresses, queries written the way people write them, and queries for
   addresses that are not in the index (which must get no confident answer);
3. speed: batch address lookup (addresses/minute, one core) beside a plain
   rapidfuzz ``process.extractOne`` over the address texts (the usual fuzzy-only peer);
   place-name queries beside a plain substring scan over the names; the index build for
   100,000 addresses (the real Shanghai door plates, each also written with room numbers
   101室/201室/301室 as a household-level address list would be); batch point lookup
   (points/second) beside geopandas ``sjoin``.

Accuracy is reported per query style: no_district, full_width, cn_numerals, spaces,
poi_name (a place name alone), wrong_char (one random character of the road),
with_city, partial_name (a unique part ending one name), homophone_typo (a road
character replaced by one with the same pinyin), district_before_city (闵行区上海市…),
traditional (the address in traditional characters). CPU times are process times (one
core), so they do not depend on how busy the other cores are.

The query generator here is also used by ``tests/test_address.py``.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
POI_DIR = SHARED / "shanghai-amap-poi"
PARSING_DIR = SHARED / "cn-address-parsing"

_FULL = str.maketrans("0123456789", "０１２３４５６７８９")
_CN = "零一二三四五六七八九"
_RE_DOOR = re.compile(r"\d+号")
_WRONG_CHARS = "华兴荣福瑞祥康宁泰安和平昌盛永丰金银新德仁"


def load_poi(directory: Path = POI_DIR) -> pd.DataFrame:
    """Shanghai POIs with a door-plate address (road + 号), deduplicated.

    Bus stops and metro stations are left out: their 'address' is a list of lines.
    """
    frames = []
    for f in sorted(directory.glob("*.csv")):
        if f.stem in ("shanghai_bus", "shanghai_urban"):
            continue
        frames.append(pd.read_csv(f, dtype=str))
    df = pd.concat(frames, ignore_index=True)
    df = df.dropna(subset=["name", "address", "lon", "lat"])
    df = df[df["address"].str.contains(r"\d+号", regex=True)]
    df = df.drop_duplicates(subset=["name", "address"]).reset_index(drop=True)
    df["lon"] = df["lon"].astype(float)
    df["lat"] = df["lat"].astype(float)
    return df


def int_to_cn(n: int) -> str:
    """Integer to Chinese numerals the way people write door numbers (38 → 三十八,
    102 → 一百零二, 1500 → 一千五百)."""
    if n < 10:
        return _CN[n]
    if n < 20:
        return "十" + (_CN[n % 10] if n % 10 else "")
    out, units = "", [(1000, "千"), (100, "百"), (10, "十")]
    zero = False
    for value, unit in units:
        d = (n // value) % 10
        if d:
            if zero and out:
                out += "零"
            out += _CN[d] + unit
            zero = False
        elif out:
            zero = True
    if n % 10:
        if zero:
            out += "零"
        out += _CN[n % 10]
    return out


def _to_traditional(text: str) -> str:
    import zhconv

    return zhconv.convert(text, "zh-hant")


def _partial_name(name: str, names: list[str]) -> str | None:
    """The end of a place name without its first qualifier, as people shorten names
    (上海市竹园中学 → 竹园中学; 复旦大学附属华山医院 → 附属华山医院), kept only when it ends
    no other indexed name (a unique part); None otherwise."""
    from gridgis.address import normalise_name
    from gridgis.address.index import strip_one_admin

    key = normalise_name(name)
    for part in (strip_one_admin(key), key[2:], key[3:]):
        if not part or len(part) < 4 or part == key:
            continue
        if sum(n.endswith(part) for n in names) == 1:
            return part
    return None


def _homophone_table(texts) -> dict[str, list[str]]:
    """Characters of the index texts grouped by tone-less pinyin (the pool of homophones
    a pinyin keyboard offers)."""
    from pypinyin import Style, lazy_pinyin

    chars = sorted({c for t in texts for c in str(t) if "\u4e00" <= c <= "\u9fff"})
    out: dict[str, list[str]] = {}
    for c, py in zip(chars, lazy_pinyin(chars, style=Style.NORMAL), strict=True):
        out.setdefault(py, []).append(c)
    return out


def _homophone_typo(addr: str, road: str | None, table, rng) -> str | None:
    """One character of the road name replaced by another with the same pinyin (延吉东路
    → 延吉冬路), not a direction, numeral or the road suffix."""
    from pypinyin import Style, lazy_pinyin

    if not road or len(road) < 3 or road not in addr:
        return None
    body = [k for k, c in enumerate(road[:-1]) if c not in "东南西北中一二三四五六七八九十"]
    rng.shuffle(body)
    for k in body:
        py = lazy_pinyin(road[k], style=Style.NORMAL)[0]
        alts = [c for c in table.get(py, []) if c != road[k] and c not in "东南西北中"]
        if alts:
            new = road[:k] + rng.choice(alts) + road[k + 1 :]
            return addr.replace(road, new, 1)
    return None


def make_index_and_queries(
    n_index: int = 5000, n_queries: int = 1200, n_negative: int = 600, seed: int = 11
):
    """Split the POIs into an indexed sample and held-back rows; write queries.

    Returns
    -------
    (index_frame, positives, negatives)
        ``index_frame`` has address_id, text (district + address), name, lon, lat.
        ``positives``: query, style, expected address_id (a row of the index).
        ``negatives``: query, style — addresses that are not in the index.
    """
    from gridgis.address import normalise_name, parse

    rng = random.Random(seed)
    poi = load_poi()
    order = list(range(len(poi)))
    rng.shuffle(order)
    idx = poi.iloc[order[:n_index]].reset_index(drop=True)
    rest = poi.iloc[order[n_index:]].reset_index(drop=True)
    index = pd.DataFrame(
        {
            "address_id": [f"SH{i:05d}" for i in range(len(idx))],
            "text": idx["adname"] + idx["address"],
            "name": idx["name"],
            "lon": idx["lon"],
            "lat": idx["lat"],
            "district": idx["adname"],
        }
    )
    parsed = [parse(t) for t in index["text"]]
    keys = {p.rest for p in parsed}
    doors = {(p.road, p.lane or "", p.number) for p in parsed if p.road and p.number}
    names = {normalise_name(n) for n in index["name"]}

    styles = [
        "no_district",
        "full_width",
        "cn_numerals",
        "spaces",
        "poi_name",
        "wrong_char",
        "with_city",
        "partial_name",
        "homophone_typo",
        "district_before_city",
        "traditional",
    ]
    homophones = _homophone_table(index["text"])
    name_list = sorted(names)
    pos = []
    rows = list(range(len(index)))
    rng.shuffle(rows)
    for i in rows:
        if len(pos) >= n_queries:
            break
        style = styles[len(pos) % len(styles)]
        addr, name = idx.at[i, "address"], idx.at[i, "name"]
        p = parsed[i]
        if style == "no_district":
            q = addr
        elif style == "full_width":
            q = idx.at[i, "adname"] + addr.translate(_FULL)
        elif style == "cn_numerals":
            q = _RE_DOOR.sub(lambda m: int_to_cn(int(m.group(0)[:-1])) + "号", addr)
            if q == addr:
                continue
        elif style == "spaces":
            q = " ".join(re.findall(r"\d+|\D+", addr))
        elif style == "poi_name":
            q = name
        elif style == "with_city":
            q = "上海市" + idx.at[i, "adname"] + addr
        elif style == "district_before_city":
            q = idx.at[i, "adname"] + "上海市" + (addr if len(pos) % 2 else name)
        elif style == "traditional":
            q = _to_traditional(idx.at[i, "adname"] + addr)
            if q == idx.at[i, "adname"] + addr:
                continue
        elif style == "partial_name":
            q = _partial_name(name, name_list)
            if q is None:
                continue
        elif style == "homophone_typo":
            q = _homophone_typo(addr, p.road, homophones, rng)
            if q is None:
                continue
        else:  # wrong_char: one character of the road name replaced
            road = p.road
            if not road or len(road) < 3 or road not in addr:
                continue
            body = [k for k, c in enumerate(road[:-1]) if c not in "东南西北中一二三四五六七八九"]
            if not body:
                continue
            k = rng.choice(body)
            new = rng.choice([c for c in _WRONG_CHARS if c != road[k]])
            q = addr.replace(road, road[:k] + new + road[k + 1 :], 1)
        pos.append({"query": q, "style": style, "expected": index.at[i, "address_id"]})
    neg = []
    # held-back rows whose address (and door plate) is not in the index
    for i in range(len(rest)):
        if len(neg) >= n_negative // 2:
            break
        p = parse(rest.at[i, "adname"] + rest.at[i, "address"])
        if p.rest in keys or (p.road, p.lane or "", p.number) in doors:
            continue
        if normalise_name(rest.at[i, "name"]) in names:
            continue
        style = "held_back_name" if len(neg) % 3 == 2 else "held_back"
        q = rest.at[i, "name"] if style == "held_back_name" else rest.at[i, "address"]
        neg.append({"query": q, "style": style})
    # indexed door plates with the number altered to one that is not in the index
    for i in rows:
        if len(neg) >= n_negative:
            break
        p = parsed[i]
        m = re.search(r"(\d+)号", idx.at[i, "address"])
        if not (p.road and p.number and m):
            continue
        for delta in (2, 4, 6, 8, 12, 20):
            alt = int(m.group(1)) + delta
            if (p.road, p.lane or "", f"{alt}号") not in doors:
                break
        else:
            continue
        q = idx.at[i, "address"][: m.start()] + f"{alt}号" + idx.at[i, "address"][m.end() :]
        if parse(q).rest in keys:
            continue
        neg.append({"query": q, "style": "altered_number"})
    return index, pd.DataFrame(pos), pd.DataFrame(neg)


def score_matches(
    index_frame: pd.DataFrame, positives: pd.DataFrame, answers: list[dict]
) -> pd.DataFrame:
    """Mark each positive answer correct when its top-1 (the confident address, or else
    the first candidate) is the expected row or a row indistinguishable from it (same
    normalised address text and name, or same normalised name for a name query)."""
    from gridgis.address import normalise_name, parse

    key = {
        a: parse(t).rest
        for a, t in zip(index_frame["address_id"], index_frame["text"], strict=True)
    }
    nm = {
        a: normalise_name(n)
        for a, n in zip(index_frame["address_id"], index_frame["name"], strict=True)
    }
    out = positives.copy()
    top, ok = [], []
    for q, exp, style, ans in zip(
        out["query"], out["expected"], out["style"], answers, strict=True
    ):
        got = ans["address_id"] or (
            ans["candidates"][0]["address_id"] if ans["candidates"] else None
        )
        top.append(got)
        if got is None:
            ok.append(False)
        elif style in ("poi_name", "partial_name") or (
            style == "district_before_city" and not _RE_DOOR.search(q)
        ):
            ok.append(got == exp or nm[got] == nm[exp])
        else:
            ok.append(got == exp or key[got] == key[exp])
    out["top1"] = top
    out["correct"] = ok
    out["confident"] = [a["confident"] for a in answers]
    return out


def hundred_thousand() -> pd.DataFrame:
    """100,000 standard addresses: the real Shanghai door plates, then each again with
    the room numbers 101室, 201室, 301室 (a household-level list), in that order."""
    poi = load_poi()
    base = pd.DataFrame(
        {
            "text": poi["adname"] + poi["address"],
            "name": poi["name"],
            "lon": poi["lon"],
            "lat": poi["lat"],
        }
    )
    rooms = [base] + [base.assign(text=base["text"] + f"{k}01室") for k in (1, 2, 3)]
    df = pd.concat(rooms, ignore_index=True).iloc[:100_000].reset_index(drop=True)
    df["address_id"] = [f"A{i:06d}" for i in range(len(df))]
    return df


def place_name_peer(idx, index_frame: pd.DataFrame, pos: pd.DataFrame) -> str:
    """Place-name queries (poi_name, partial_name): the matcher beside a plain substring
    scan over the normalised names (the first name containing the query)."""
    from gridgis.address import normalise_name

    names = pd.DataFrame(pos[pos["style"].isin(["poi_name", "partial_name"])])
    nm = [normalise_name(n) for n in index_frame["name"]]
    expected = {
        a: normalise_name(n)
        for a, n in zip(index_frame["address_id"], index_frame["name"], strict=True)
    }
    t = time.process_time()
    ours = [idx.match(q) for q in names["query"]]
    ours_s = time.process_time() - t
    ours_ok = sum(
        m.confident and expected[index_frame["address_id"].iloc[m.row]] == expected[e]
        for m, e in zip(ours, names["expected"], strict=True)
    )
    t = time.process_time()
    scan_ok = 0
    for q, e in zip(names["query"], names["expected"], strict=True):
        key = normalise_name(q)
        k = next((i for i, n in enumerate(nm) if key in n), None)
        scan_ok += k is not None and nm[k] == expected[e]
    scan_s = time.process_time() - t
    n = len(names)
    return (
        f"place names ({n} poi_name + partial_name queries): matcher {n / ours_s:,.0f}/s, "
        f"confident and right {ours_ok / n:.1%}; plain substring scan over the "
        f"{len(nm):,} names {n / scan_s:,.0f}/s, first hit right {scan_ok / n:.1%}"
    )


def parser_table() -> pd.DataFrame:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_parser import evaluate_parser, read_bio

    return evaluate_parser(read_bio(PARSING_DIR / "dev.txt"))


def build_times(builds: int = 3) -> str:
    """CPU seconds (``time.process_time``, one core) of ``builds`` cold builds of the
    index over :func:`hundred_thousand`, the parser's caches emptied before each (the
    Python modules and the simplified-character table are loaded beforehand by a build of
    100 rows, as in any process that has built an index before). Runs against older
    trees too (``--tree``), for before/after comparisons."""
    from gridgis.address import AddressIndex, parser

    def clear() -> None:
        if hasattr(parser, "clear_caches"):
            parser.clear_caches()
        else:  # trees before parser.clear_caches
            parser._TAIL_CACHE.clear()
            parser._ADMIN_CACHE.clear()

    big = hundred_thousand()
    AddressIndex(big.iloc[:100])
    cpu, wall = [], []
    for _ in range(builds):
        clear()  # a cold build each time
        t0, w0 = time.process_time(), time.perf_counter()
        built = AddressIndex(big)
        cpu.append(time.process_time() - t0)
        wall.append(time.perf_counter() - w0)
        del built
    each = ", ".join(f"{c:.2f}" for c in cpu)
    return (
        f"index build, {len(big):,} addresses: {np.median(cpu):.2f} s CPU median of "
        f"{builds} cold builds (each: {each} s CPU; median wall {np.median(wall):.2f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller samples")
    ap.add_argument(
        "--build-only", action="store_true", help="only time the 100,000-address index build"
    )
    ap.add_argument("--builds", type=int, default=3, help="cold index builds timed")
    ap.add_argument(
        "--tree", help="import gridgis from this source tree (a before/after comparison)"
    )
    args = ap.parse_args(argv)
    if args.tree:
        sys.path.insert(0, str(Path(args.tree).resolve()))
    if args.build_only:
        if not POI_DIR.exists():
            print("shanghai-amap-poi absent: index build not timed")
            return 0
        print(build_times(args.builds))
        return 0
    from gridgis.address import AddressIndex
    from gridgis.lookup import Lookup

    if PARSING_DIR.exists():
        t = time.perf_counter()
        table = parser_table()
        print(f"## Parser on cn-address-parsing/dev.txt ({time.perf_counter() - t:.1f} s)")
        print(table.round(3).to_string())
    if not POI_DIR.exists():
        print("shanghai-amap-poi absent: matching and speed skipped")
        return 0
    index_frame, pos, neg = make_index_and_queries()
    t = time.perf_counter()
    idx = AddressIndex(index_frame)
    build_s = time.perf_counter() - t
    lk = Lookup()
    lk.index = idx
    answers = [lk._answer(idx.match(q), False) for q in pos["query"]]
    scored = score_matches(index_frame, pos, answers)
    print(
        f"\n## Matching: {len(index_frame)} indexed Shanghai addresses (index built in "
        f"{build_s:.2f} s), {len(pos)} queries"
    )
    scored["confident_wrong"] = scored["confident"] & ~scored["correct"]
    per_style = scored.groupby("style").agg(
        queries=("correct", "size"),
        top1=("correct", "mean"),
        confident=("confident", "mean"),
        confident_wrong=("confident_wrong", "sum"),
    )
    print(per_style.round(3).to_string())
    print(
        f"top-1 overall: {scored['correct'].mean():.3%}; confident: "
        f"{scored['confident'].mean():.3%}; confident and wrong: "
        f"{(scored['confident'] & ~scored['correct']).sum()}"
    )
    neg_answers = [idx.match(q) for q in neg["query"]]
    neg["confident"] = [m.confident for m in neg_answers]
    print(
        f"not in the index: {len(neg)} queries "
        f"({neg['style'].value_counts().to_dict()}), confident answers: "
        f"{int(neg['confident'].sum())}"
    )

    # speed: batch address lookup on one core (each text distinct, so the batch cache of
    # identical texts does not help: trailing spaces make new inputs that normalise alike)
    reps = 2 if args.quick else 10
    texts = [q + " " * r for r in range(reps) for q in pos["query"]]
    batch = Lookup()
    batch.index = AddressIndex(index_frame)
    t = time.process_time()
    result = batch.addresses(texts)
    dt = time.process_time() - t
    per_min = len(texts) / dt * 60
    from rapidfuzz import fuzz, process

    choices = list(index_frame["text"])
    peer_n = min(len(pos), 300)
    t = time.process_time()
    peer_ok = 0
    for q, exp in zip(pos["query"][:peer_n], pos["expected"][:peer_n], strict=True):
        _, _, k = process.extractOne(q, choices, scorer=fuzz.WRatio)
        peer_ok += index_frame["address_id"].iloc[k] == exp
    peer_per_min = peer_n / (time.process_time() - t) * 60
    print(
        f"\n## Speed\naddress lookup (Lookup.addresses): {per_min:,.0f} addresses/minute "
        f"(one core, {len(texts):,} distinct texts, {result['confident'].mean():.1%} "
        f"confident); rapidfuzz extractOne(WRatio) over the {len(choices):,} texts: "
        f"{peer_per_min:,.0f}/minute with top-1 {peer_ok / peer_n:.1%} on the first "
        f"{peer_n} queries (exact id); ratio {per_min / peer_per_min:.0f}x"
    )
    print(place_name_peer(batch.index, index_frame, pos))
    print(build_times(args.builds))
    # speed: batch point lookup
    from gridgis.delineate import delineate
    from gridgis.synth import make_city

    city = make_city(households=10_000 if args.quick else 30_000)
    res = delineate(city.layers)
    lk = Lookup(
        addresses=city.layers["addresses"],
        buildings=res.buildings,
        grids=res.grids,
        communities=city.layers["communities"],
        streets=city.layers["streets"],
        staff=city.layers["staff"],
    )
    minx, miny, maxx, maxy = res.grids.total_bounds
    n = 200_000 if not args.quick else 50_000
    rs = np.random.default_rng(3)
    lons, lats = rs.uniform(minx, maxx, n), rs.uniform(miny, maxy, n)
    lk.points(lons[:1000], lats[:1000])
    t = time.process_time()
    df = lk.points(lons, lats)
    pts_s = n / (time.process_time() - t)
    import geopandas as gpd

    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lons, lats), crs="EPSG:4326")
    t = time.process_time()
    j = gpd.sjoin(pts, res.grids[["grid_code", "geometry"]], predicate="within", how="left")
    j = gpd.sjoin(
        j.drop(columns="index_right"),
        res.buildings[["building_id", "geometry"]],
        predicate="within",
        how="left",
    )
    peer_s = n / (time.process_time() - t)
    agree = (
        df["grid_code"].fillna("").to_numpy()
        == j.groupby(level=0)["grid_code"].first().fillna("").to_numpy()
    ).mean()
    print(
        f"point lookup: {pts_s:,.0f} points/s ({n:,} points, {len(res.grids)} grids, "
        f"{len(res.buildings):,} buildings, building + grid + chain); geopandas sjoin "
        f"grids + buildings: {peer_s:,.0f} points/s; ratio {pts_s / peer_s:.1f}x; "
        f"grid codes agree with sjoin: {agree:.4%}"
    )
    gcj = lk.points(
        *__import__("gridgis.crs", fromlist=["x"]).wgs84_to_gcj02(lons, lats), crs="gcj02"
    )
    print(
        f"gcj02 input round trip: grid codes agree {(gcj['grid_code'].fillna('') == df['grid_code'].fillna('')).mean():.4%}"
    )
    # one point at a time (what the API's /lookup/point does), per input CRS
    from gridgis.crs import from_wgs84

    m = 5_000
    cells = []
    for crs in ("wgs84", "gcj02", "bd09"):
        xs, ys = (lons[:m], lats[:m]) if crs == "wgs84" else from_wgs84(lons[:m], lats[:m], crs)
        t = time.process_time()
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
            lk.point(x, y, crs)
        cells.append(f"{crs} {(time.process_time() - t) / m * 1e6:,.0f} µs")
    print("single point lookup (Lookup.point, mean of 5,000): " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
