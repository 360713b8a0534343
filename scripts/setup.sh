#!/bin/sh
# Set up what `./dev run` (runtime) or `./dev test` (test) needs, idempotently:
# Debian packages (only the missing ones, with sudo when not root), a virtualenv
# in .venv, the package with its pinned dependencies, and for tests the corpora.
set -eu
mode=${1:-runtime}
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

need_pkgs=""
want() { dpkg -s "$1" >/dev/null 2>&1 || need_pkgs="$need_pkgs $1"; }

if command -v dpkg >/dev/null 2>&1; then
    # ensurepip is split out of Debian's python3 package; a pyenv/other build has it.
    "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1 || want python3-venv
    if [ "$mode" = test ]; then
        want postfix         # smtp-sink, smtp-source and a private Postfix for tests
        want swaks           # a real SMTP client
        want chromium        # the admin console's end-to-end tests
        want libmagic1
        want zip             # ZipCrypto archives for the attachment tests
        want clamav-testfiles  # harmless files carrying the ClamAV test signature (attachment corpus)
        want ca-certificates
    fi
    if [ -n "$need_pkgs" ]; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        echo "setup: installing Debian packages:$need_pkgs"
        # "No configuration" keeps the package from configuring a system MTA; the
        # tests run their own Postfix instances from temporary directories.
        echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need_pkgs
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi

extras=""
[ "$mode" = test ] && extras="[dev]"
stamp=".venv/.installed-$(cat pyproject.toml | cksum | cut -d' ' -f1)$extras"
if [ ! -f "$stamp" ]; then
    echo "setup: installing the gateway and its pinned dependencies$extras"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".$extras"
    rm -f .venv/.installed-*
    touch "$stamp"
    # A [dev] install also satisfies runtime.
    [ -n "$extras" ] && touch "${stamp%\[dev\]}"
fi

if [ "$mode" = test ]; then
    .venv/bin/python scripts/fetch_corpora.py
fi
