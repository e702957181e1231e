#!/usr/bin/env bash
# Installs the system packages Planscape needs on Debian/Ubuntu, only those missing.
#   PostgreSQL 15 + PostGIS 3 (the embedded database), GDAL (the library the server
#   links for raster tiles, and the tools tests use as references: they decode tiles
#   with GDAL's MVT driver), nginx (the deployment's proxy, tested in front of the
#   server), curl, openssl (tests/db_tls.rs makes its CA and server certificates with
#   it), python3-aiosmtpd (the SMTP server the password-reset tests read mail from),
#   redis-server (the shared cache the shared-cache tests run against, scripts/redis.sh).
#   Pass extra package names as arguments (e.g. wrk).
# Services are not started by the install: tests start their own, unprivileged.
set -euo pipefail
packages=(postgresql-15 postgresql-15-postgis-3 postgresql-client-15 gdal-bin libgdal-dev pkg-config nginx curl ca-certificates openssl python3-aiosmtpd redis-server "$@")
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
# Keep package scripts from starting system services (nginx on port 80, PostgreSQL's
# default cluster): a policy-rc.d that says no, for this install only.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  own_policy=1
fi
status=0
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
if [ "$own_policy" = 1 ]; then $SUDO rm -f "$policy"; fi
exit "$status"
