# The reverse proxy in front of the API (docker-compose.yml's `proxy`): Debian's nginx on the same Debian and
# Python base as the trainyard image (its healthcheck runs python), unprivileged on port 8080 (8443 for TLS);
# deploy/nginx.conf says why each setting. Its own file, so that building it never builds the trainyard image.
#   docker build -t trainyard-proxy -f deploy/proxy.Dockerfile .
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/nginx.conf /etc/nginx/nginx.conf
USER www-data
EXPOSE 8080 8443
CMD ["nginx", "-e", "stderr", "-g", "daemon off;"]
