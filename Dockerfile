# Encore images, from one file:
#   docker build -t encore .                      # the server and worker (default target)
#   docker build -t encore-trainer --target trainer .   # the offline jobs
# The serving image holds no training libraries (implicit, scikit-learn, matplotlib).
# docker-compose.yml beside this file wires Redis (AOF), server, worker and trainer.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md settings.py campaigns.example.yaml ./
COPY models ./models
COPY campaigns ./campaigns
COPY state ./state
COPY server ./server
COPY training ./training
RUN pip install --no-cache-dir '.'

FROM build AS build-trainer
# Versions are pinned by the ranges in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir '.[train]'

FROM python:3.11-slim AS runtime
# libgomp: FAISS and the BLAS behind numpy use OpenMP. Unpinned on purpose: Debian's
# stable updates are security fixes.
# hadolint ignore=DL3008
RUN useradd --create-home --uid 10001 encore \
    && apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /models /data /etc/encore \
    && chown encore:encore /models /data
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MODELS_DIR=/models \
    DATA_DIR=/data \
    OPENBLAS_NUM_THREADS=1 \
    CAMPAIGNS_FILE=/etc/encore/campaigns.yaml
COPY campaigns.example.yaml /etc/encore/campaigns.yaml
WORKDIR /home/encore

FROM runtime AS trainer
COPY --from=build-trainer /opt/venv /opt/venv
USER 10001
ENTRYPOINT ["python", "-m", "training"]
CMD ["--help"]

FROM runtime AS server
COPY --from=build /opt/venv /opt/venv
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=2s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["python", "-m", "server", "--host", "0.0.0.0", "--port", "8000"]
