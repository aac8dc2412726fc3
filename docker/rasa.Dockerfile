# syntax=docker/dockerfile:1
# The official Rasa 3.6.21 image with Kate's bot: its custom NLU components and socket.io channel fix,
# and a model trained at build time (`rasa train`), so the container starts serving at once.
FROM rasa/rasa:3.6.21-full
WORKDIR /app
COPY --chown=1001:0 bot/ /app/
USER 1001
RUN rasa train --config config.yml --domain domain.yml --data data --out models --fixed-model-name kate
ENV PYTHONPATH=/app
EXPOSE 5005
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/', timeout=4)" || exit 1
CMD ["run", "--model", "models/kate.tar.gz", "--endpoints", "endpoints.yml", \
     "--credentials", "credentials.yml", "--port", "5005", "--cors", "*"]
