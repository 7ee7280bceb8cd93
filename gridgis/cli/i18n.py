"""The CLI's languages: a small message catalogue (Chinese and English) and the Chinese
names of categories, layers and checks.

The language is ``zh`` when ``--lang zh`` is given, else ``GRIDGIS_LANG``, else when the
locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``, first one set) starts with ``zh``; English
otherwise. Library messages (errors from gridgis) stay as the library wrote them; the CLI
translates its own tables, summaries and messages.
"""

from __future__ import annotations

import os

LANGUAGES = ("zh", "en")

_state = {"lang": ""}

CATALOGUE: dict[str, tuple[str, str]] = {
    # key: (English, Chinese)
    "error": ("error:", "错误:"),
    "note": ("note:", "提示:"),
    "wrote_to": ("Wrote {layers} to {where}", "已写入 {layers} 到 {where}"),
    # delineate
    "grids_in": ("Grids in {where} ({crs})", "{where} 的网格 ({crs})"),
    "communities made": ("communities made", "新划社区"),
    "grids": ("grids", "网格"),
    "residential": ("residential", "住宅网格"),
    "unit": ("unit", "单位网格"),
    "residential within": ("residential within {lo}–{hi}", "户数在 {lo}–{hi} 的住宅网格"),
    "flagged": ("flagged (reason in 'flags')", "标记网格(原因见 flags)"),
    "crossings": ("crossing an arterial/alignment line", "跨越主干路/对齐边界"),
    "mean households": ("mean households (residential)", "平均户数(住宅网格)"),
    "mean pp": ("mean Polsby-Popper", "平均紧凑度 (Polsby-Popper)"),
    "codes kept": ("codes kept from the previous run", "沿用上次编码"),
    "codes retired": ("codes retired (ever)", "已注销编码(累计)"),
    "buildings in a grid": ("buildings in a grid", "已入格楼栋"),
    "unflagged out of range": (
        "some residential grids are out of range without a flag (a bug: please report)",
        "有住宅网格户数超出范围却未标记(程序缺陷,请报告)",
    ),
    # assign
    "assignment_title": ("Assignment to {n} grids ({crs})", "入格: {n} 个网格 ({crs})"),
    "layer": ("layer", "图层"),
    "rows": ("rows", "行数"),
    "in a grid": ("in a grid", "已入格"),
    "split": ("split (grid_share kept)", "跨格(保留 grid_share)"),
    "staff rejected": (
        "{n} staff rows rejected (unknown grid_code): see layer 'assign_rejects'",
        "{n} 条人员记录被拒(网格编码不存在): 见图层 assign_rejects",
    ),
    "facilities per grid": (
        "facilities per grid: mean {mean:.1f}; grids with a grid_head: {heads:,}",
        "每格设施: 平均 {mean:.1f} 个; 有网格长的网格: {heads:,}",
    ),
    # audit
    "audit_title": (
        "Audit of layer '{layer}': {n} grids ({crs})",
        "图层 {layer} 审核: {n} 个网格 ({crs})",
    ),
    "check": ("check", "检查项"),
    "severity": ("severity", "级别"),
    "findings": ("findings", "问题数"),
    "status": ("status", "状态"),
    "hh per grid": (
        "households per grid: min {lo:,}, median {med:,}, max {hi:,} (rule {rlo}–{rhi})",
        "每格户数: 最少 {lo:,}, 中位 {med:,}, 最多 {hi:,} (规则 {rlo}–{rhi})",
    ),
    "wrote findings": (
        "Wrote {n} findings to layer '{layer}' in {where}",
        "已写入 {n} 条问题到 {where} 的图层 {layer}",
    ),
    # coverage and site
    "rates_title": (
        "Households covered (walking network vs straight-line buffer)",
        "覆盖户数比例(步行网络 与 直线缓冲)",
    ),
    "category": ("category", "设施类别"),
    "radius m": ("radius m", "服务半径(米)"),
    "walking": ("walking", "步行"),
    "straight line": ("straight line", "直线"),
    "no data": ("no data", "无数据"),
    "gap households": ("gap households", "未覆盖户数"),
    "sites_title": (
        "Proposed {cat} sites (radius {r:,.0f} m walking)",
        "{cat} 建议选址(步行半径 {r:,.0f} 米)",
    ),
    "rank": ("rank", "序号"),
    "site": ("site", "候选点"),
    "near": ("near", "附近道路"),
    "new hh": ("new hh", "新增覆盖户数"),
    "after": ("after", "选址后覆盖率"),
    "lon, lat": ("lon, lat", "经度, 纬度"),
    "covered before": (
        "{cat}: {before:,}/{total:,} households covered before ({rate:.1%})",
        "{cat}: 选址前覆盖 {before:,}/{total:,} 户 ({rate:.1%})",
    ),
    "only sites": ("only {n} site(s) add coverage", "只有 {n} 处选址能增加覆盖"),
    # info
    "workspace_title": ("Workspace {where}", "工作空间 {where}"),
    "CRS": ("CRS", "坐标系"),
    "geometry": ("geometry", "几何类型"),
    "bounds": ("bounds (lon/lat)", "范围(经纬度)"),
    # refresh, history, diff
    "refreshed": ("Refreshed {n} grids in {where}", "已刷新 {where} 的 {n} 个网格"),
    "version": ("version", "版本"),
    "valid_from": ("valid from", "生效日期"),
    "valid_to": ("valid to", "终止日期"),
    "command": ("command", "操作"),
    "reason": ("reason", "原因"),
    "households": ("households", "户数"),
    "area_m2": ("area m²", "面积(平方米)"),
    "change": ("change", "变更"),
    "created": ("created", "新设"),
    "reshaped": ("reshaped", "调整边界"),
    "retired": ("retired", "撤销"),
    "moved": ("moved", "移出"),
    "old code": ("old code", "原编码"),
    "new code": ("new code", "新编码"),
    "community": ("community", "社区"),
    # demo
    "making city": (
        "Making the demo city: {n} households, seed {seed} …",
        "生成示范城市: {n} 户, 随机种子 {seed} …",
    ),
    "province plan": (
        "Making a demo province: {n} households in {d} districts (demo cities) of at most "
        "{per}, built on {where}; skipped above the full-demo size: {skipped}",
        "生成示范省: {n} 户, {d} 个区(示范城市), 每区最多 {per} 户, 在 {where} 上生成; "
        "超出完整演示规模而跳过的步骤: {skipped}",
    ),
    "this process": ("this process", "本进程"),
    "lookup line": (
        "{hit}/{n} rewritten demo addresses{of} matched to their own record, {grid} with a "
        "grid; sample answer in lookup_sample.json",
        "{hit}/{n} 条改写的示范地址{of}匹配到自身记录, 其中 {grid} 条落在网格内; "
        "示例答案见 lookup_sample.json",
    ),
    "lookup of": (" (evenly spaced sample of {total})", " (从 {total} 条中均匀抽样)"),
    "building districts": ("Building districts (households)", "逐区生成(户)"),
    "plan memory": (
        "Rough peak memory of this process: {gb:.1f} GB (nothing built: --plan)",
        "本进程内存峰值约 {gb:.1f} GB (仅预估, 未生成: --plan)",
    ),
    "plan memory high": (
        "[yellow]Warning:[/] the demo's rough peak, {gb:.1f} GB in this process, is above "
        "nine tenths of this machine's memory ({have:.1f} GB): use fewer households",
        "[yellow]警告:[/] 演示在本进程内的预估峰值 {gb:.1f} GB 超过本机内存 ({have:.1f} GB) "
        "的九成: 请减少户数",
    ),
    "peak memory": ("Peak memory of this process: {gb:.2f} GB", "本进程内存峰值: {gb:.2f} GB"),
    "wrote file": ("  wrote {path} ({s:.1f} s)", "  已写入 {path} ({s:.1f} 秒)"),
    "step done": ("  {line} ({s:.1f} s)", "  {line} ({s:.1f} 秒)"),
    "demo.delineate": (
        "Delineating grids (250–500 households), grid staff, assignment",
        "划分网格(250–500 户)、配备网格人员、入格",
    ),
    "demo.coverage": (
        "Coverage: walking distances, life circle, parks, gaps, norms",
        "覆盖分析: 步行距离、生活圈、公园、缺口、配置标准",
    ),
    "demo.site": ("Proposed sites: 3 kindergartens", "选址建议: 3 处幼儿园"),
    "demo.import": (
        "Import: the demo's buildings as a GBK shapefile, its facilities as an Amap CSV",
        "导入: 楼栋为 GBK 编码 Shapefile, 设施为高德 CSV",
    ),
    "demo.lookup": ("Address lookup", "地址查询"),
    "demo.maps": (
        "Maps (index, streets, communities, coverage, lookup, boards)",
        "地图(总览、街道、社区、覆盖、查询、公示牌)",
    ),
    "site line": (
        "{n} {cat} sites cover {hh} more households",
        "{n} 处{cat}选址, 新增覆盖 {hh} 户",
    ),
    "delineation line": (
        "{grids} grids ({residential} residential, {unit} unit); {share:.1%} within "
        "{lo}–{hi} households (mean {mean:.0f}), {flagged} flagged; mean Polsby-Popper "
        "{pp:.2f}; {inside}/{buildings} buildings in a grid",
        "{grids} 个网格(住宅 {residential}, 单位 {unit}); {share:.1%} 户数在 {lo}–{hi} 之间"
        "(平均 {mean:.0f} 户), 标记 {flagged} 个; 平均紧凑度 {pp:.2f}; "
        "{inside}/{buildings} 栋楼已入格",
    ),
    "done": ("Done in {s:.1f} s. Workspace: {where}", "完成, 用时 {s:.1f} 秒。工作空间: {where}"),
}
"""Every text the CLI prints by key: (English, Chinese) with ``str.format`` fields."""

LAYER_NAMES_ZH = {
    "streets": "街道",
    "communities": "社区",
    "grids": "网格",
    "buildings": "楼栋",
    "roads": "道路",
    "facilities": "设施",
    "green_spaces": "绿地",
    "addresses": "标准地址",
    "institutions": "单位",
    "staff": "人员",
}
"""Chinese names of the canonical layers (DESIGN.md's layer table)."""


CHECK_NAMES_ZH = {
    "missing_code": "缺少编码",
    "invalid_code": "编码无效",
    "duplicate_code": "编码重复",
    "code_prefix_mismatch": "编码前缀与社区不符",
    "invalid_geometry": "几何无效",
    "multipart": "网格不连续(多部件)",
    "crosses_community": "跨社区边界",
    "gap": "缝隙",
    "overlap": "重叠",
    "households_out_of_range": "户数超出范围",
    "building_no_grid": "楼栋未入格",
    "building_in_two_grids": "楼栋跨两格",
    "arterial_crossing": "跨越主干路",
}
"""Chinese names of the audit's checks (``gridgis.audit.CHECKS``)."""

SEVERITY_ZH = {"error": "错误", "warning": "警告"}


def check_name(check: str) -> str:
    """An audit check as a person reads it: ``缝隙 gap`` in Chinese, ``gap`` in English."""
    return f"{CHECK_NAMES_ZH[check]} {check}" if zh() and check in CHECK_NAMES_ZH else check


def severity_name(severity: str) -> str:
    """``错误``/``警告`` in Chinese, the key in English."""
    return SEVERITY_ZH.get(severity, severity) if zh() else severity


def status_name(status: str) -> str:
    """An audit check's status: ``ran`` or ``skipped: why`` (``已检查``/``跳过: why``)."""
    if not zh():
        return status
    return "已检查" if status == "ran" else status.replace("skipped:", "跳过:", 1)


def value_name(layer: str, field: str, value: object) -> str:
    """A coded value as a person reads it: in Chinese the label of gridgis's controlled
    lists (``gridgis.layers``: categories, road classes, uses, kinds, roles; audit
    checks), in English the value itself."""
    text = str(value)
    if not zh():
        return text
    from gridgis import layers as L

    if field == "category":
        return category_name(text)
    if field == "check":
        return check_name(text)
    if layer == "rejects" and field == "layer":
        return layer_name(text)
    tables = {
        ("roads", "road_class"): L.ROAD_CLASSES,
        ("buildings", "use"): L.BUILDING_USES,
        ("green_spaces", "kind"): L.GREEN_KINDS,
        ("institutions", "kind"): L.INSTITUTION_KINDS,
        ("staff", "role"): L.STAFF_ROLES,
        ("grids", "kind"): {"residential": "住宅网格", "unit": "单位网格"},
    }
    return tables.get((layer, field), {}).get(text, text)


def detect_language(environ: dict[str, str] | None = None) -> str:
    """``zh`` or ``en`` from ``GRIDGIS_LANG`` or the locale variables."""
    env = os.environ if environ is None else environ
    chosen = env.get("GRIDGIS_LANG", "").strip().lower()
    if chosen in LANGUAGES:
        return chosen
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def set_language(lang: str | None) -> str:
    """Use *lang* (``zh``/``en``) for what follows, or detect it when ``None``."""
    if lang is None:
        lang = detect_language()
    lang = lang.strip().lower()
    if lang not in LANGUAGES:
        raise ValueError(f"--lang {lang}: use zh or en")
    _state["lang"] = lang
    return lang


def language() -> str:
    """The language in use (detected on first use)."""
    if not _state["lang"]:
        _state["lang"] = detect_language()
    return _state["lang"]


def zh() -> bool:
    """True when the CLI speaks Chinese."""
    return language() == "zh"


def t(key: str, **fields: object) -> str:
    """The catalogue's text for *key* in the language in use, formatted with *fields*."""
    en, cn = CATALOGUE[key]
    return (cn if zh() else en).format(**fields)


def category_name(category: str) -> str:
    """How a person reads a facility or coverage category: its Chinese name (the one table
    the maps use, ``gridgis.maps.coverage.category_label`` over
    ``gridgis.layers.FACILITY_CATEGORIES``) in Chinese, its key in English. Never cut."""
    if not zh():
        return str(category)
    try:
        from gridgis.maps.coverage import category_label
    except ImportError:  # the maps' extra labels are optional; the facility table is not
        from gridgis.layers import FACILITY_CATEGORIES

        return FACILITY_CATEGORIES.get(str(category), str(category))
    return category_label(str(category))


def layer_name(layer: str) -> str:
    """A layer as a person reads it: ``楼栋 buildings`` in Chinese, ``buildings`` in English."""
    if zh() and layer in LAYER_NAMES_ZH:
        return f"{LAYER_NAMES_ZH[layer]} {layer}"
    return layer
