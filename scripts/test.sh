#!/usr/bin/env bash
# Relance checks, from a fresh clone:
#   setup:  .venv with Relance and its test extras, htmx and vnu-jar (npm ci), a Chromium for
#           browser tests, Java for the HTML checker;
#   checks: ruff check, ruff format --check, mypy, pytest (on every step, then a summary).
# Extra arguments go to pytest, e.g.  ./scripts/test.sh -x tests/web
# Exits non-zero if any step fails, and says which.
#
# PostgreSQL: every database test runs on PostgreSQL as well as SQLite when
# PORTAL_TEST_DATABASE_URL is set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test).
# Unset, the script looks for a PostgreSQL on 127.0.0.1:5432 that lets it create databases
# and uses it; set to an empty value, SQLite only. With CI=true it is required.
set -euo pipefail

cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
IN_CI=false
case "${CI:-}" in 1 | true | TRUE | True | yes) IN_CI=true ;; esac

say() { printf '\n==> %s\n' "$*"; }
die() {
    printf '\ntest.sh: FAILED at step "%s"\n' "$1" >&2
    shift
    [ $# -gt 0 ] && printf '  %s\n' "$@" >&2
    exit 1
}

# --- setup: Python ---------------------------------------------------------------------------
step="virtualenv"
if [ ! -x "$VENV/bin/python" ]; then
    command -v "$PYTHON" >/dev/null 2>&1 || die "$step" "$PYTHON not found (Python 3.11+ needed)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$step" "Relance needs Python 3.11+; $PYTHON is $("$PYTHON" --version 2>&1)" \
            "set PYTHON=/path/to/python3.11 and run again"
    say "Creating the virtualenv in $VENV"
    "$PYTHON" -m venv "$VENV" \
        || { rm -rf "$VENV"; die "$step" "on Debian/Ubuntu: apt-get install python3-venv"; }
fi

step='pip install -e ".[test]"'
stamp="$VENV/.relance-installed-test"
if [ -x "$VENV/bin/pytest" ] && cmp -s pyproject.toml "$stamp"; then
    say "Relance and its test tools are already installed in $VENV"
else
    say "Installing Relance and its test tools into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]" \
        || die "$step"
    cp pyproject.toml "$stamp"
    cp pyproject.toml "$VENV/.relance-installed-base"  # what scripts/demo.sh looks for
fi

# --- setup: htmx -----------------------------------------------------------------------------
step="npm ci"
npm_stamp=node_modules/.relance-package-lock.json
if [ -f node_modules/htmx.org/dist/htmx.min.js ] && [ -f node_modules/vnu-jar/build/dist/vnu.jar ] \
    && cmp -s package-lock.json "$npm_stamp"; then
    say "htmx and the HTML checker are already installed in node_modules"
elif command -v npm >/dev/null 2>&1; then
    say "Installing htmx and the HTML checker (npm ci)"
    # --ignore-scripts: vnu-jar's install script would fetch a Java of its own; the
    # machine's (apt-get install default-jre-headless) runs the checker.
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error || die "$step"
    cp package-lock.json "$npm_stamp"
elif [ "$IN_CI" = true ]; then
    die "$step" "npm is not installed"
else
    say "npm not found: testing without htmx (pages work without JavaScript)"
fi

# --- setup: Chromium and fonts -----------------------------------------------------------------
# The browser tests launch the `chromium` found on PATH; PDFs embed DejaVu Sans when it is there.
step="chromium"
debian_root=false
if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
    debian_root=true
fi
apt_packages=()
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
command -v java >/dev/null 2>&1 || apt_packages+=(default-jre-headless)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || apt_packages+=(fonts-dejavu-core)
if [ "$debian_root" = true ] && [ ${#apt_packages[@]} -gt 0 ]; then
    say "Installing Debian packages: ${apt_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq "${apt_packages[@]}"; } || die "$step"
fi
if command -v chromium >/dev/null 2>&1; then
    say "Chromium: $(command -v chromium)"
elif [ -x "$VENV/chromium-bin/chromium" ]; then
    say "Chromium: Playwright's, in $VENV/chromium-bin"
else
    say "Installing Playwright's Chromium (python -m playwright install chromium)"
    "$VENV/bin/python" -m playwright install chromium || die "$step"
    # Put it on PATH under the name the tests look for.
    executable="$("$VENV/bin/python" -c '
from playwright.sync_api import sync_playwright
with sync_playwright() as p:
    print(p.chromium.executable_path)
')" || die "$step" "could not locate Playwright's Chromium"
    mkdir -p "$VENV/chromium-bin"
    ln -sf "$executable" "$VENV/chromium-bin/chromium"
fi
if ! command -v chromium >/dev/null 2>&1 && [ -x "$VENV/chromium-bin/chromium" ]; then
    export PATH="$PWD/$VENV/chromium-bin:$PATH"
fi

# --- PostgreSQL for the database tests ------------------------------------------------------------
# Without PORTAL_TEST_DATABASE_URL, try the default local address (user postgres, database
# `test`, then `postgres`): the tests create and drop their own databases next to it.
probe_postgres() {
    "$VENV/bin/python" - "$@" <<'PY'
import sys

from sqlalchemy import create_engine, text

for url in sys.argv[1:]:
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            allowed = connection.scalar(
                text("SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user")
            )
    except Exception:  # any failure: not this one
        continue
    finally:
        engine.dispose()
    if allowed:
        print(url)
        sys.exit(0)
    print(f"{url}: this user may not create databases", file=sys.stderr)
sys.exit(1)
PY
}
pg_hint="set PORTAL_TEST_DATABASE_URL=postgresql+psycopg://USER@HOST:PORT/DATABASE (a user who may create databases) to run them on PostgreSQL too"
if [ -n "${PORTAL_TEST_DATABASE_URL+set}" ]; then
    if [ -n "$PORTAL_TEST_DATABASE_URL" ]; then
        say "PostgreSQL: PORTAL_TEST_DATABASE_URL is set: running the database tests on SQLite and PostgreSQL"
    else
        say "PORTAL_TEST_DATABASE_URL is empty: database tests run on SQLite only"
    fi
elif [ "$IN_CI" = true ]; then
    say "PORTAL_TEST_DATABASE_URL is not set (CI requires it: pytest will refuse to run)"
elif found="$(probe_postgres \
    postgresql+psycopg://postgres@127.0.0.1:5432/test \
    postgresql+psycopg://postgres@127.0.0.1:5432/postgres)"; then
    export PORTAL_TEST_DATABASE_URL="$found"
    say "PostgreSQL found at $found: running the database tests on SQLite and PostgreSQL"
else
    say "PostgreSQL not found at 127.0.0.1:5432: database tests run on SQLite only" "($pg_hint)"
fi

# --- checks ----------------------------------------------------------------------------------
failed=()
run() {
    local name="$1"
    shift
    say "$name"
    if "$@"; then
        return 0
    fi
    failed+=("$name")
    printf '\n*** step "%s" FAILED ***\n' "$name" >&2
}

run "ruff check" "$VENV/bin/ruff" check .
run "ruff format --check" "$VENV/bin/ruff" format --check .
run "mypy" "$VENV/bin/mypy"
# pytest last, so its summary line closes the output.
# Two test processes by default (this project's machines have two cores); PYTEST_WORKERS=N
# for more, 0 for one process.
run "pytest" "$VENV/bin/pytest" -q -p no:cacheprovider -n "${PYTEST_WORKERS:-2}" "$@"

if [ ${#failed[@]} -gt 0 ]; then
    printf '\ntest.sh: FAILED steps:\n' >&2
    printf '  - %s\n' "${failed[@]}" >&2
    exit 1
fi
