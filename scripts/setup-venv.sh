#!/usr/bin/env bash
# Create .venv with the project installed editable (with [dev,sim]), at the versions in constraints.txt;
# cached by a stamp of pyproject.toml and constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "[setup] ERROR: Python 3.11+ is needed (found $("$PY" --version)); set PYTHON=/path/to/python3.11" >&2; exit 1; }
stamp=.venv/.ioc-stamp
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/ioc ]; then
  echo "[setup] .venv up to date"; exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv \
  || { echo "[setup] ERROR: '$PY -m venv' failed; install python3-venv (as root: apt-get install python3-venv)" >&2; exit 1; }
echo "[setup] installing the project into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e '.[dev,sim]' 2> >(grep -v 'is ignored' >&2)
echo "$want" > "$stamp"
echo "[setup] .venv ready"
