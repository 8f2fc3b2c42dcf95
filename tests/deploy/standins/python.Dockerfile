# Stand-in for python:3.11-slim: Debian bookworm's Python 3.11 as a virtualenv in /usr/local, so `python` and
# `pip` are on PATH and pip installs where the official image's does (/usr/local/lib/python3.11/site-packages).
FROM trainyard-standin/debian:bookworm
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local \
    && printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > /etc/pip.conf
ENV PYTHON_VERSION=3.11
CMD ["python3"]
