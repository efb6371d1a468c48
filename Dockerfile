# RedReserve: the bot as a container. Config and data live in the /data volume:
#   /data/config.toml   (copy config.example.toml; BOT_TOKEN may come from the environment instead)
#   /data/redreserve.db (SQLite, the default) - or set REDRESERVE_DATABASE__URL for PostgreSQL
# Build:  docker build -t redreserve .
# Run:    docker run -d --name redreserve -v /srv/redreserve:/data -e BOT_TOKEN=... redreserve
# Other commands: docker run --rm -v /srv/redreserve:/data redreserve db upgrade   (see README "Deploying")
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # /healthz and /metrics inside the container; publish the port only where Prometheus needs it.
    REDRESERVE_HTTP__LISTEN=0.0.0.0:8080

WORKDIR /app
# The lock file pins every dependency, so two builds a month apart install the same versions.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
# The source, less what .dockerignore leaves out (tests, benches, local databases and config).
COPY . .
RUN pip install --no-cache-dir --no-deps .

# Not root: the bot needs nothing but its volume.
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin redreserve \
    && mkdir -p /data && chown redreserve /data
USER redreserve
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=8)"

# SIGTERM (docker stop) is a clean stop: the sends in flight finish, the database is closed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["redreserve"]
CMD ["run"]
