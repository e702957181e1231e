#!/usr/bin/env bash
# Installs the system packages Planscape needs on Debian/Ubuntu, only those missing.
#   PostgreSQL 15 + PostGIS 3 (the embedded database), GDAL (the library the server
#   links for raster tiles, and the tools tests use as references: they decode tiles
#   with GDAL's MVT driver), curl. Pass extra package names as arguments (e.g. wrk).
set -euo pipefail
packages=(postgresql-15 postgresql-15-postgis-3 postgresql-client-15 gdal-bin libgdal-dev pkg-config curl ca-certificates "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
