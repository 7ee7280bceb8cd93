"""The server's memory settings (issue 18): glibc malloc arenas capped per worker,
freed memory handed back after each rebuild of the lookup index. The bound itself is
measured by ``benchmarks/soak_api.py`` (no timing or memory assertion here)."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from api.context import _libc, limit_malloc_arenas, release_memory
from gridgis.standards import Settings

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def test_arena_setting_default_and_override():
    assert Settings().server.malloc_arenas == 2
    assert Settings().override({"server.malloc_arenas": "0"}).server.malloc_arenas == 0


def test_zero_leaves_glibc_default():
    assert limit_malloc_arenas(0) is False


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_glibc_cap_and_trim():
    assert ctypes.util.find_library("c")
    assert _libc() is not None
    assert limit_malloc_arenas(Settings().server.malloc_arenas) is True
    release_memory()  # returns, whatever it could give back
