#!/usr/bin/env bash
# Builds the Python example plugin into a component: python_echo.wasm beside this script
# (or at $1). Needs python3 (3.10+) and PyPI; installs componentize-py into a local venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/python_echo.wasm}"
venv="${PYTHON_ECHO_VENV:-$here/.venv}"
if [ ! -x "$venv/bin/componentize-py" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
fi
cd "$here"
"$venv/bin/componentize-py" -d ../../wit -w platform componentize app -o "$out"
