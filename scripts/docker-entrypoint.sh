#!/bin/sh
# Container entrypoint: optionally apply the database migrations, then run the command
# (by default `portal serve ...`, see the Dockerfile's CMD).
#
#   PORTAL_MIGRATE_ON_START=1   run `portal db upgrade` before the command. Convenient with a
#                               single container; with several, migrate as a separate step
#                               (docker run --rm IMAGE portal db upgrade) before rolling out.
set -eu

if [ "${PORTAL_MIGRATE_ON_START:-0}" = "1" ]; then
    echo "docker-entrypoint: applying database migrations (PORTAL_MIGRATE_ON_START=1)" >&2
    portal db upgrade
fi

exec "$@"
