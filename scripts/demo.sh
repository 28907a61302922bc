#!/usr/bin/env bash
# Relance demo, from a fresh clone:
#   1. a virtualenv in .venv (created with python3 -m venv if missing) with Relance installed;
#   2. the front-end package (htmx) with npm ci, when npm is available;
#   3. `portal demo`: migrates SQLite at var/relance.db, seeds a demo company, prints three
#      portal links and serves on http://127.0.0.1:8000.
# Extra arguments go to `portal demo` (e.g. --no-serve, --port 8001).
# Safe to run again: what is already installed is not installed twice.
set -euo pipefail

cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv

say() { printf '==> %s\n' "$*"; }

# --- Python ---------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        echo "demo.sh: $PYTHON not found; Relance needs Python 3.11 or newer." >&2
        exit 1
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "demo.sh: Relance needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
        echo "         Set PYTHON=/path/to/python3.11 and run again." >&2
        exit 1
    fi
    say "Creating the virtualenv in $VENV"
    if ! "$PYTHON" -m venv "$VENV"; then
        echo "demo.sh: could not create $VENV (on Debian/Ubuntu: apt-get install python3-venv)." >&2
        rm -rf "$VENV"
        exit 1
    fi
fi

# The stamp is a copy of the pyproject.toml that was installed: reinstall when it changes.
stamp="$VENV/.relance-installed-base"
if [ -x "$VENV/bin/portal" ] && cmp -s pyproject.toml "$stamp"; then
    say "Relance is already installed in $VENV"
else
    say "Installing Relance into $VENV (pip install -e .)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e .
    cp pyproject.toml "$stamp"
fi

# --- Front-end package (htmx) ----------------------------------------------------------------
npm_stamp=node_modules/.relance-package-lock.json
if [ -f node_modules/htmx.org/dist/htmx.min.js ] && cmp -s package-lock.json "$npm_stamp"; then
    say "htmx is already installed in node_modules"
elif ! command -v npm >/dev/null 2>&1; then
    say "npm not found: skipping htmx. Pages work without JavaScript (plain forms and links);"
    say "install Node.js and npm, then run this script again, for the in-page updates."
else
    say "Installing htmx (npm ci)"
    if npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; then
        cp package-lock.json "$npm_stamp"
    else
        say "npm ci failed: continuing without htmx (pages work without JavaScript)."
    fi
fi

# --- The demo ------------------------------------------------------------------------------
say "Starting the demo: .venv/bin/portal demo $*"
exec "$VENV/bin/portal" demo "$@"
