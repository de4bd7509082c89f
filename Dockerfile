# Encore server image. Build: docker build -t encore .
# Run:   docker run -p 8000:8000 -e REDIS_URL=redis://redis:6379/0 \
#          -e PUBLIC_API_KEYS=... -e SECRET_API_KEYS=... -v /srv/encore/models:/models encore
# The same image runs the offline jobs: docker run ... encore python -m training train ...

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
COPY settings.py ./
COPY models ./models
COPY campaigns ./campaigns
COPY campaigns.example.yaml ./
COPY state ./state
COPY server ./server
COPY training ./training
RUN pip install --upgrade pip && pip install '.[train]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 encore \
    && apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MODELS_DIR=/models \
    DATA_DIR=/data \
    OPENBLAS_NUM_THREADS=1
COPY --from=build /src/campaigns.example.yaml /etc/encore/campaigns.yaml
ENV CAMPAIGNS_FILE=/etc/encore/campaigns.yaml
RUN mkdir -p /models /data && chown encore:encore /models /data
USER encore
WORKDIR /home/encore
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=2s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["python", "-m", "server", "--host", "0.0.0.0", "--port", "8000"]
