"""The CLI as a face: exit codes by error type, --verbose/--quiet logging, errors never
wrapped (long paths, stderr to a file), the server's access log, and no CLI flag named
in the library's messages."""

from __future__ import annotations

import ast
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import typer

from gridgis import errors
from gridgis.cli.common import errors_to_stderr

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from gridgis.cli import main; main()"]


def run_cli(args, tmp_path, env=None, timeout=120):
    """Run gridgis in a real process with stdout and stderr redirected to files (as a log
    would be); returns (exit code, stdout text, stderr text)."""
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "40", **(env or {})}
    with open(out, "w") as o, open(err, "w") as e:
        code = subprocess.run(
            [*CLI, *map(str, args)], stdout=o, stderr=e, env=full_env, timeout=timeout
        ).returncode
    return code, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "cls, code",
    [
        (errors.InputError, 2),
        (errors.RuleError, 2),
        (errors.NotFoundError, 2),
        (errors.LimitError, 2),
        (errors.ConflictError, 3),
        (errors.StoreError, 4),
    ],
)
def test_exit_code_follows_the_error_type_not_its_text(cls, code, capsys):
    with pytest.raises(typer.Exit) as stop:
        with errors_to_stderr():
            raise cls("the same words for every type")
    assert stop.value.exit_code == code == cls.exit_code
    assert capsys.readouterr().err.strip() == "error: the same words for every type"


def test_a_subclass_keeps_its_base_exit_code(capsys):
    class Custom(errors.ConflictError):
        pass

    with pytest.raises(typer.Exit) as stop, errors_to_stderr():
        raise Custom("x")
    assert stop.value.exit_code == 3


def test_long_path_error_is_one_line_in_a_redirected_stderr(tmp_path):
    """README command 2 on a machine whose paths are long: the message, path included,
    is one unwrapped line in the log file whatever the terminal width."""
    deep = tmp_path.joinpath(*(["a_rather_long_folder_name_for_a_workspace"] * 5))
    deep.mkdir(parents=True)
    ws = deep / "city.gpkg"
    from gridgis.store import GeoPackageStore

    GeoPackageStore(ws).write("roads_only", __import__("pandas").DataFrame({"k": [1]}))
    assert len(str(ws)) > 200
    code, out, err = run_cli(["--lang", "en", "assign", "--workspace", ws], tmp_path)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {ws}: no layer 'grids'")


def test_store_errors_exit_4(tmp_path):
    bad = tmp_path / "not-a-gpkg.gpkg"
    bad.write_text("this is not sqlite")
    code, _, err = run_cli(["--lang", "en", "info", bad], tmp_path)
    assert code == errors.StoreError.exit_code == 4, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_verbose_logs_each_write_and_quiet_prints_errors_only(demo_city_gpkg, tmp_path):
    import shutil

    ws = tmp_path / "ws.gpkg"
    shutil.copy(demo_city_gpkg, ws)
    code, out, err = run_cli(["--verbose", "--lang", "en", "delineate", "-w", ws], tmp_path)
    assert code == 0, err
    assert re.search(
        r"^INFO gridgis\.workflows\.base: delineate: writing grids \(\d+ rows\)", err, re.M
    )
    assert "Grids in" in out
    code, out, err = run_cli(["--quiet", "--lang", "en", "assign", "-w", ws], tmp_path)
    assert code == 0, err
    assert out == "" and "INFO" not in err
    code, out, err = run_cli(["--lang", "en", "assign", "-w", ws], tmp_path)
    assert code == 0 and "INFO" not in err and "Assignment to" in out
    code, _, err = run_cli(["--verbose", "--quiet", "info", ws], tmp_path)
    assert code == 2 and "not both" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("flag, logged", [("--access-log", True), ("--no-access-log", False)])
def test_serve_access_log_option(demo_city_gpkg, tmp_path, flag, logged):
    port = _free_port()
    err_path, out_path = tmp_path / "serve.err", tmp_path / "serve.out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(err_path, "w") as err, open(out_path, "w") as out:
        proc = subprocess.Popen(
            [*CLI, "serve", "-w", str(demo_city_gpkg), "--port", str(port), flag],
            stdout=out,
            stderr=err,
            env=env,
        )
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"server did not start: {err_path.read_text()}")
        time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = out_path.read_text()  # uvicorn's access log goes to stdout
    assert ('"GET /health HTTP/1.1" 200' in text) is logged, text
    assert "Serving" in text


# -- no CLI flag in the library's messages ------------------------------------------------
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
ARGV_ELEMENT = re.compile(r"--[a-z][a-z0-9-]*(=\S+)?")
"""A string that is only ``--name`` or ``--name=value`` is an argument handed to another
program (initdb), not a message."""


def _statement_strings(tree: ast.AST) -> set[int]:
    """ids of string constants that are whole statements: docstrings and attribute
    docstrings, which document code for programmers and reach no one at run time."""
    out = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            out.add(id(node.value))
    return out


def library_flag_literals(root: Path = ROOT / "gridgis") -> list[str]:
    """``file:line: --flag`` for every string literal outside gridgis/cli naming a flag."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _statement_strings(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if id(node) in skip or ARGV_ELEMENT.fullmatch(node.value):
                continue
            for flag in FLAG.findall(node.value):
                found.append(f"gridgis/{rel}:{node.lineno}: {flag}")
    return found


def test_the_scanner_finds_flags_in_messages_and_fstrings(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "cli").mkdir(parents=True)
    (pkg / "cli" / "x.py").write_text('MSG = "use --flag"\n')
    (pkg / "lib.py").write_text(
        '"""Docs may say --documented."""\n'
        'A = "declare it with --crs"\n'
        'def f(n):\n    return f"rows {n}; give --layer"\n'
        'ARGS = ["--auth=trust", "--no-sync"]\n'
        'B = "a -- dash and x--y"\n'
    )
    assert library_flag_literals(pkg) == ["gridgis/lib.py:2: --crs", "gridgis/lib.py:4: --layer"]


def test_library_messages_name_parameters_never_cli_flags():
    """Library errors reach HTTP clients too: they name settings and parameters (the crs
    parameter, grid.max_households), never a CLI flag. Only gridgis/cli talks of flags."""
    found = library_flag_literals()
    assert not found, "library literals naming CLI flags:\n" + "\n".join(found)
