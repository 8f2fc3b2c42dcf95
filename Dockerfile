# One image for the API, the CPU workers, the reconciler and `trainyard migrate` (target `cpu`, the default),
# and one for GPU workers (target `gpu`: TensorFlow with its CUDA libraries, which stay out of the CPU extras).
#   docker build -t trainyard .                      # CPU: numpy, scikit-learn and tensorflow-cpu (Keras jobs)
#   docker build -t trainyard-gpu --target gpu .     # GPU worker: tensorflow[and-cuda]
# The NVIDIA driver comes from the host (NVIDIA Container Toolkit); CUDA and cuDNN come as pip wheels.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRAINYARD_HOME=/var/lib/trainyard
RUN useradd --create-home --uid 10001 trainyard \
    && mkdir -p /var/lib/trainyard && chown trainyard /var/lib/trainyard
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY client ./client
COPY core ./core
COPY migrations ./migrations
COPY store ./store
COPY worker ./worker
COPY examples ./examples

# The reverse proxy in front of the API (docker-compose.yml's `proxy`): Debian's nginx on the same Debian
# as the other images, run unprivileged on port 8080 (8443 for TLS); deploy/nginx.conf says why each setting.
FROM python:${PYTHON_VERSION}-slim AS proxy
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/nginx.conf /etc/nginx/nginx.conf
USER www-data
EXPOSE 8080 8443
CMD ["nginx", "-e", "stderr", "-g", "daemon off;"]

FROM base AS gpu
# Editable, so migrations/ stays beside store/ (store.migrate finds it there).
RUN pip install -e ".[gpu]"
USER trainyard
CMD ["trainyard", "worker", "--queues", "gpu"]

FROM base AS cpu
ARG EXTRAS=keras
RUN pip install -e ".[${EXTRAS}]"
USER trainyard
EXPOSE 8000
CMD ["trainyard", "api", "--host", "0.0.0.0", "--port", "8000"]
