# syntax=docker/dockerfile:1
# One image for every Tapedeck service; the command picks the service:
#   docker run IMAGE                      -> python -m services.submitter (the default)
#   docker run IMAGE services.clipper     -> python -m services.clipper
# Services: services.submitter, services.clipper, services.audio_agent, services.merger,
# services.lifecycle, services.webhooks; one-shot: services.topics (create the topics).
# Settings come from the environment (README "Pointing at your own Kafka, MongoDB and S3",
# .env.example); none are baked in here except where the container differs from a laptop.

# ---------------------------------------------------------------- build: the virtualenv
# The base image is pinned to an exact release (Python 3.11.14 on Debian 13); update both
# stages together.
FROM python:3.11.14-slim-trixie AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /app/.venv
# The dependencies first, read from pyproject.toml's [project] list (so this layer is
# rebuilt only when they change), then the project itself without them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && /app/.venv/bin/pip install -r /tmp/requirements.txt
COPY README.md ./
COPY schemas ./schemas
COPY services ./services
RUN /app/.venv/bin/pip install --no-deps . \
 && /app/.venv/bin/python -m compileall -q /app/.venv/lib

# ---------------------------------------------------------------- runtime
FROM python:3.11.14-slim-trixie AS runtime
# ffmpeg/ffprobe for every media step, espeak-ng for the offline voiceover provider.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg espeak-ng \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 tapedeck \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp tapedeck
COPY --from=build /app/.venv /app/.venv
# The health check of every service, compose's bucket step, and the demo (`make run`'s
# scripts/demo.py, run inside the compose network by `docker compose run --rm demo`).
COPY deploy/docker/healthcheck.py deploy/docker/create_bucket.py /app/deploy/docker/
COPY scripts/demo.py scripts/production_demo.py /app/scripts/
WORKDIR /app
# API_HOST: a container must listen beyond its own loopback. HOME and TMPDIR: /tmp, the
# one writable place when the root filesystem is read-only (an emptyDir on Kubernetes).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    API_HOST=0.0.0.0 \
    API_PORT=8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=6s --start-period=60s --retries=4 \
  CMD ["python", "/app/deploy/docker/healthcheck.py"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m"]
CMD ["services.submitter"]
