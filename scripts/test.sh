#!/bin/sh
# The whole test suite: lint, types, the shipped policies' own examples, then pytest.
set -eu
cd "$(dirname "$0")/.."
. .venv/bin/activate
dirs=$(for d in gateway tests bench scripts; do [ -d "$d" ] && echo "$d"; done)
echo "== ruff"; ruff check $dirs; ruff format --check $dirs
echo "== mypy --strict"; mypy
echo "== pytest"; exec python -m pytest -m "not corpus" "$@"
