# syntax=docker/dockerfile:1
#
# crm-upsell as a container: the core and all three connectors (HubSpot, Salesforce, Zoho CRM).
# By default it runs the background worker, `crm-upsell --log-format json schedule`; give another
# command to run that one instead, e.g. `docker run ... IMAGE status`.
#
#   docker build -t crm-upsell .
#
# The config is read from /etc/crm-upsell/config.toml (mount it, or the directory that holds it).
# Secrets come from environment variables (CRM_UPSELL_<NAME> for keyring:NAME, or the variable an
# env:VARIABLE reference names), never from the image. See deploy/README.md.

ARG PYTHON_IMAGE=python:3.11-slim
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---- build: a virtualenv at the same path the runtime image uses -------------------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/opt/crm-upsell/.venv
WORKDIR /src

# Third-party dependencies first, from the lock file alone: this layer is rebuilt only when
# uv.lock or a pyproject.toml changes.
COPY pyproject.toml uv.lock ./
COPY connectors/hubspot/pyproject.toml connectors/hubspot/
COPY connectors/salesforce/pyproject.toml connectors/salesforce/
COPY connectors/zoho/pyproject.toml connectors/zoho/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-install-workspace

# Then the product and its connectors, installed as ordinary (non-editable) packages so that the
# virtualenv does not need the source tree at run time.
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-editable \
 && /opt/crm-upsell/.venv/bin/crm-upsell connectors

# ---- runtime: Python, the virtualenv and an unprivileged user; no uv, no compilers -------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="crm-upsell" \
      org.opencontainers.image.description="crm-upsell background worker (crm-upsell schedule)" \
      org.opencontainers.image.licenses="Apache-2.0"

# uid/gid 10001: a bind-mounted data directory must be writable by this id.
RUN groupadd --system --gid 10001 crm-upsell \
 && useradd --system --uid 10001 --gid crm-upsell --home-dir /var/lib/crm-upsell \
        --no-create-home --shell /usr/sbin/nologin crm-upsell \
 && install -d -o crm-upsell -g crm-upsell -m 0700 /var/lib/crm-upsell \
 && install -d -o root -g root -m 0755 /etc/crm-upsell

# Owned by root: the worker can run the code but not change it.
COPY --from=build /opt/crm-upsell/.venv /opt/crm-upsell/.venv

ENV PATH=/opt/crm-upsell/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/crm-upsell \
    CRM_UPSELL_CONFIG=/etc/crm-upsell/config.toml

# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /var/lib/crm-upsell

# A SQLite store lives here (url = "sqlite:////var/lib/crm-upsell/store.sqlite3"); mount a volume
# on it. A PostgreSQL store needs nothing here.

# SIGTERM lets every run in progress commit its current page, then the worker exits 0. Give the
# container time for that when stopping it (docker stop --time 120, stop_grace_period: 2m,
# terminationGracePeriodSeconds: 120).
STOPSIGNAL SIGTERM

# No HEALTHCHECK on purpose: `crm-upsell status` reports on the connections (a failed CRM run, a
# rejected token), which restarting the container does not fix. Run it as a separate check.

ENTRYPOINT ["crm-upsell"]
CMD ["--log-format", "json", "schedule"]
