# Stand-in for postgres:16-alpine: Debian's PostgreSQL 15, with an entrypoint that creates the cluster from
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB in $PGDATA on first start, as the official image's does.
FROM trainyard-standin/debian:bookworm
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-15 \
    && rm -rf /var/lib/apt/lists/*
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
