#!/bin/sh
# Run every benchmark under bench/ (each writes its results into docs/).
# Pass a name to run one: ./dev bench load
set -eu
cd "$(dirname "$0")/.."
. .venv/bin/activate
if [ $# -gt 0 ]; then
    exec python "bench/$1.py" "$@"
fi
for script in bench/*.py; do
    [ -e "$script" ] || continue
    echo "== $script"
    python "$script"
done
