# Relance production image.
#
#   docker build -t relance .
#   docker run --rm --env-file relance.env relance portal db upgrade      # migrations, once per release
#   docker run -d --env-file relance.env -p 8000:8000 \
#       -v relance-var:/app/var relance                                    # the app (uvicorn)
#
# Settings come from PORTAL_* variables (docs/configuration.md); docs/deployment.md has the rest.

# --- front-end packages: only this stage has Node.js ------------------------------------------
FROM node:20-bookworm-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- the application --------------------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PORTAL_ENVIRONMENT=production \
    WEB_CONCURRENCY=2

# DejaVu Sans: PDFs (invoices, statements) embed it for full Unicode text.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 relance \
    && useradd --system --uid 10001 --gid relance --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin relance

# The app finds templates/, static/, migrations/ and node_modules/ relative to the project
# root, hence the editable install in /app.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY portal ./portal
RUN pip install --no-cache-dir -e . \
    && python -m compileall -q portal

COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY --from=assets /app/node_modules/htmx.org/dist ./node_modules/htmx.org/dist
COPY scripts/docker-entrypoint.sh ./scripts/docker-entrypoint.sh

# var/ holds stored documents (PORTAL_DOCUMENTS_DIR) and spooled mail: the only writable place.
RUN mkdir -p /app/var/documents \
    && chown -R relance:relance /app/var \
    && chmod 0755 /app/scripts/docker-entrypoint.sh

USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["/app/scripts/docker-entrypoint.sh"]
CMD ["sh", "-c", "exec portal serve --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-2}"]
