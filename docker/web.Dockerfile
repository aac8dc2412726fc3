# syntax=docker/dockerfile:1
# Kate's web app (`kate web`): the chat page, the widget script and the admin console. It loads no model,
# so the image carries no torch: only the web app's own dependencies (WEB_PACKAGES, a subset of
# pyproject.toml's, checked by tests/test_docker.py), then Kate's code without its other dependencies.
FROM node:20-bookworm-slim AS widget
WORKDIR /app/admin/widget
COPY admin/widget/package.json admin/widget/package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 KATE_HOME=/var/lib/kate KATE_SOURCES_FILE=/app/docker/sources.yml
ARG WEB_PACKAGES="requests beautifulsoup4 charset-normalizer numpy redis hiredis trafilatura lxml pyyaml py3langid fastapi uvicorn jinja2 python-multipart"
RUN pip install --no-cache-dir $WEB_PACKAGES
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kate ./kate
COPY core ./core
COPY measure ./measure
COPY qa_engine ./qa_engine
COPY knowledge ./knowledge
COPY actions ./actions
COPY admin ./admin
COPY docker/sources.yml ./docker/sources.yml
COPY --from=widget /app/admin/widget/node_modules ./admin/widget/node_modules
RUN pip install --no-cache-dir --no-deps -e . \
    && useradd --system --uid 10001 --create-home kate && mkdir -p "$KATE_HOME" && chown kate "$KATE_HOME"
USER kate
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)" || exit 1
CMD ["kate", "web", "--host", "0.0.0.0"]
