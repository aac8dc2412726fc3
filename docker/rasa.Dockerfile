# syntax=docker/dockerfile:1
# The official Rasa 3.6.21 image with Kate's bot: its custom NLU components and socket.io channel fix,
# and a model trained at build time (`rasa train`), so the container starts serving at once.
#
# The NLU classifies intents on multilingual-e5's sentence vector (bot/components/dense.py, intent.py),
# run by ONNX Runtime. Kate exports that encoder from the offline base model (qa_engine/
# sentence_encoder.py), which needs torch: a first, throwaway stage does it, and only the exported folder
# (about 470 MB) reaches the Rasa image.
FROM python:3.11-slim AS encoder
ENV KATE_HOME=/kate
WORKDIR /src
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY kate ./kate
COPY core ./core
COPY measure ./measure
COPY qa_engine ./qa_engine
COPY knowledge ./knowledge
COPY actions ./actions
COPY admin ./admin
RUN pip install --no-cache-dir -e ".[offline]" && kate bot build-encoder

FROM rasa/rasa:3.6.21-full
USER root
# the same pins as ./kate.sh's .venv-rasa (RASA_EXTRAS)
RUN pip install --no-cache-dir onnxruntime==1.23.2 tokenizers==0.23.3 py3langid==0.2.2
WORKDIR /app
COPY --chown=1001:0 bot/ /app/
COPY --from=encoder --chown=1001:0 /kate/models/multilingual-e5-small-onnx /opt/kate-nlu-encoder
ENV KATE_NLU_ENCODER=/opt/kate-nlu-encoder
USER 1001
RUN rasa train --config config.yml --domain domain.yml --data data --out models --fixed-model-name kate
ENV PYTHONPATH=/app
EXPOSE 5005
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/', timeout=4)" || exit 1
CMD ["run", "--model", "models/kate.tar.gz", "--endpoints", "endpoints.yml", \
     "--credentials", "credentials.yml", "--port", "5005", "--cors", "*"]
