"""Planning rules as parameters: every STANDARDS.md number, the ways to override it, and
clear errors for overrides that cannot be used."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from gridgis import standards
from gridgis.cli.common import load_settings
from gridgis.crs import STORAGE_CRS
from gridgis.standards import DEFAULT, Settings


# --------------------------------------------------------------------------------------
# The defaults are the numbers of STANDARDS.md
# --------------------------------------------------------------------------------------
def test_grid_and_community_sizes():
    g = DEFAULT.grid
    assert (g.min_households, g.max_households) == (250, 500)  # "250户以上、500户以内"
    assert g.min_households < g.target_households < g.max_households
    assert g.community_target_households == 2_500  # Nanjing, Tongling


def test_staffing_and_service_floor_area():
    s = DEFAULT.staffing
    assert s.service_floor_m2_per_100_households == 30.0  # ≥ 30 m² per 100 households
    assert s.resident_activity_share == 0.60  # ≥ 60% for residents
    assert s.community_office_min_m2 == 300.0
    assert (s.street_centre_min_m2, s.district_centre_min_m2, s.village_office_min_m2) == (
        1_500.0,
        5_000.0,
        600.0,
    )
    assert s.households_per_worker == 300 and s.min_workers_per_community == 6
    assert s.committee_members == (5, 9) and s.committee_households == (100, 700)
    assert s.police_per_community == 1  # 一区一警


def test_service_radii_and_life_circles():
    c = DEFAULT.coverage
    for cat in (
        "kindergarten",
        "nursery",
        "community_service_station",
        "elderly_daycare",
        "sports_ground",
    ):
        assert c.radius_m[cat] == 300.0, cat
    assert c.radius_m["primary_school"] == 500.0
    assert c.radius_m["middle_school"] == 1_000.0
    assert (c.radius_m["green"], c.radius_m["park"]) == (300.0, 500.0)  # Chengdu 2017
    assert (c.life_circle_5min_m, c.life_circle_10min_m, c.life_circle_15min_m) == (
        300.0,
        500.0,
        1_000.0,
    )


def test_green_park_walking_and_coverage_floor():
    c = DEFAULT.coverage
    assert c.green_min_area_m2 == 400.0  # pocket-park lower bound
    assert c.park_min_area_m2 == 10_000.0  # 1 ha
    assert c.park_min_width_m == 50.0
    assert c.walk_speed_kmh == 4.5
    assert c.park_coverage_floor == 0.80  # > 80%, GB 55014-2021


def test_life_circle_lists_chengdu_and_gb50180():
    cats = set(DEFAULT.coverage.life_circle_categories)
    chengdu = {
        "vegetable_market",
        "retail",
        "housekeeping",
        "breakfast",
        "elderly_care_home",
        "elderly_daycare",
        "nursery",
    }
    gb50180 = {
        "health_station",
        "kindergarten",
        "primary_school",
        "middle_school",
        "community_service_station",
        "sports_ground",
        "park",
        "elderly_service_station",
        "parcel_locker",
    }
    assert chengdu | gb50180 <= cats
    assert cats <= set(DEFAULT.coverage.radius_m)  # every category has a radius


def test_codes_ranges():
    r = DEFAULT.codes
    assert r.street_township_range == (1, 99) and r.town_township_range == (100, 199)
    assert r.rural_township_range == (200, 399) and r.special_township_range == (400, 599)
    assert r.residents_committee_range == (1, 199)
    assert r.villagers_committee_range == (200, 399)
    assert set(r.urban_rural_classes) == {"111", "112", "121", "122", "123", "210", "220"}
    assert r.grid_sequence_range == (1, 999)


def test_households_estimation_and_storage_crs():
    b = DEFAULT.buildings
    assert b.gross_floor_area_per_household_m2 > 0 and "residential" in b.residential_uses
    assert STORAGE_CRS == "EPSG:4326"  # one constant, gridgis.crs


def test_every_parameter_has_a_docstring():
    """Each field of each rules dataclass is followed by its docstring (the source)."""
    tree = ast.parse(inspect.getsource(standards))
    checked = 0
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        if cls.name == "Settings":
            continue
        body = cls.body
        for i, node in enumerate(body):
            if isinstance(node, ast.AnnAssign):
                nxt = body[i + 1] if i + 1 < len(body) else None
                assert (
                    isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)
                    and nxt.value.value.strip()
                ), f"{cls.name}.{node.target.id} has no docstring"
                checked += 1
    assert checked >= 50


# --------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------
def test_dotted_override_returns_a_new_object():
    s = DEFAULT.override({"grid.min_households": 200, "coverage.walk_speed_kmh": "4"})
    assert s.grid.min_households == 200 and s.coverage.walk_speed_kmh == 4.0
    assert isinstance(s.coverage.walk_speed_kmh, float)
    assert DEFAULT.grid.min_households == 250  # defaults untouched
    assert s.grid.max_households == 500  # the rest kept
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.grid.min_households = 1  # type: ignore[misc]


def test_override_one_service_radius():
    s = DEFAULT.override({"coverage.radius_m.kindergarten": "250"})
    assert s.coverage.radius_m["kindergarten"] == 250.0
    assert s.coverage.radius_m["primary_school"] == 500.0
    assert DEFAULT.coverage.radius_m["kindergarten"] == 300.0


def test_toml_override(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[grid]\nmin_households = 200\nmax_households = 450\n"
        "unit_kinds = ['school', 'hospital']\n"
        "[coverage]\nwalk_speed_kmh = 4\npark_coverage_floor = 0.85\n"
        "[coverage.radius_m]\nprimary_school = 600\n"
        "[codes]\ngrid_sequence_range = [1, 500]\n",
        encoding="utf-8",
    )
    s = Settings.from_toml(rules)
    assert (s.grid.min_households, s.grid.max_households) == (200, 450)
    assert s.grid.unit_kinds == ("school", "hospital")
    assert s.coverage.walk_speed_kmh == 4.0 and s.coverage.park_coverage_floor == 0.85
    assert s.coverage.radius_m["primary_school"] == 600.0
    assert s.coverage.radius_m["kindergarten"] == 300.0
    assert s.codes.grid_sequence_range == (1, 500)


@pytest.mark.parametrize(
    "key",
    ["grid.min_houses", "gird.min_households", "min_households", "coverage.radius_m.kindergarden"],
)
def test_unknown_key_errors_name_it(key):
    with pytest.raises((KeyError, ValueError)) as exc:
        DEFAULT.override({key: 1})
    assert key.split(".")[-1] in str(exc.value) or key.split(".")[0] in str(exc.value)


def test_unknown_toml_section_and_non_table(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[gird]\nmin_households = 1\n")
    with pytest.raises(KeyError, match="unknown settings section 'gird'"):
        Settings.from_toml(bad)
    bad.write_text("grid = 5\n")
    with pytest.raises(ValueError, match="section 'grid' must be a table"):
        Settings.from_toml(bad)


@pytest.mark.parametrize(
    "key, value, why",
    [
        ("grid.max_households", "abc", "grid.max_households"),
        ("grid.max_households", "450.5", "whole number"),
        ("grid.max_households", True, "not true/false"),
        ("coverage.walk_speed_kmh", "fast", "coverage.walk_speed_kmh"),
        ("codes.grid_sequence_range", "1", "expected 2 numbers"),
        ("codes.grid_sequence_range", "999,1", "lower bound exceeds"),
        ("coverage.radius_m", "300", "expected a table"),
        ("grid.min_households", "600", "exceeds 'grid.max_households'"),
    ],
)
def test_type_coercion_errors_name_the_setting(key, value, why):
    with pytest.raises(ValueError, match=why) as exc:
        DEFAULT.override({key: value})
    assert key.split(".")[0] + "." in str(exc.value)


def test_bools_parsed_strictly():
    assert standards._coerce("yes", False, "x.strict") is True
    assert standards._coerce("否", True, "x.strict") is False
    with pytest.raises(ValueError, match="x.strict"):
        standards._coerce("maybe", False, "x.strict")


def test_to_dict_is_json_and_round_trips():
    plain = DEFAULT.to_dict()
    json.dumps(plain)
    assert plain["grid"]["min_households"] == 250
    flat = {f"{sec}.{k}": v for sec, vals in plain.items() for k, v in vals.items()}
    assert Settings().override(flat) == DEFAULT


# --------------------------------------------------------------------------------------
# CLI-facing: --rules and --set reach the settings
# --------------------------------------------------------------------------------------
def test_cli_set_reaches_settings(tmp_path):
    s = load_settings(None, ["grid.max_households=450", "coverage.radius_m.park = 400"])
    assert s.grid.max_households == 450 and s.coverage.radius_m["park"] == 400.0
    rules = tmp_path / "r.toml"
    rules.write_text("[grid]\nmin_households = 200\nmax_households = 480\n")
    s = load_settings(rules, ["grid.max_households=450"])  # --set wins over file
    assert (s.grid.min_households, s.grid.max_households) == (200, 450)


def test_cli_file_and_flags_checked_together(tmp_path):
    """A file raising the floor above the default ceiling, with a flag raising the
    ceiling, is a consistent pair; the same pair reversed is refused."""
    rules = tmp_path / "r.toml"
    rules.write_text("[grid]\nmin_households = 600\n[coverage.radius_m]\npark = 450\n")
    s = load_settings(rules, ["grid.max_households=800", "coverage.radius_m.green=250"])
    assert (s.grid.min_households, s.grid.max_households) == (600, 800)
    assert s.coverage.radius_m["park"] == 450.0 and s.coverage.radius_m["green"] == 250.0
    assert (
        Settings.from_toml(rules, {"grid.max_households": 800, "coverage.radius_m.green": "250"})
        == s
    )
    with pytest.raises(ValueError, match="exceeds 'grid.max_households'"):
        Settings.from_toml(rules)


@pytest.mark.parametrize(
    "sets, expected",
    [
        (["grid.max_households=abc"], "grid.max_households"),
        (["grid.max_households"], "use section.name=value"),
        (["grid.nope=1"], "grid.nope"),
    ],
)
def test_cli_bad_set_exits_with_message_on_stderr(capsys, sets, expected):
    with pytest.raises(typer.Exit) as exc:
        load_settings(None, sets)
    assert exc.value.exit_code != 0
    err = capsys.readouterr().err
    assert expected in err and "rules" in err


def test_cli_missing_rules_file(capsys, tmp_path):
    with pytest.raises(typer.Exit):
        load_settings(tmp_path / "absent.toml", None)
    assert "absent.toml" in capsys.readouterr().err


def test_gridgis_command_refuses_bad_set(tmp_path):
    """End to end through the installed console script: stderr, non-zero, nothing made."""
    exe = Path(sys.executable).parent / "gridgis"
    if not exe.exists():
        pytest.skip("gridgis console script not installed in this environment")
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            str(exe),
            "demo",
            "--out",
            str(out),
            "--households",
            "10000",
            "--set",
            "grid.max_households=lots",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode != 0
    assert "grid.max_households" in proc.stderr and "lots" in proc.stderr
    assert not (out / "demo.gpkg").exists()
