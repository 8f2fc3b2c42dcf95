# The trainyard image: the API, the workers, the reconciler and `trainyard migrate`.
#   docker build -t trainyard .                                  # CPU: numpy, scikit-learn and tensorflow-cpu (Keras)
#   docker build -t trainyard-gpu --build-arg EXTRAS=gpu .        # GPU workers: tensorflow[and-cuda]
#   docker build -t trainyard-proxy -f deploy/proxy.Dockerfile .  # the nginx in front of the API
# EXTRAS picks pyproject.toml's extras: "keras" (default) lets CPU workers train Keras jobs and the API answer
# predict for them; "" gives numpy and scikit-learn only (half the size); "gpu" brings CUDA and cuDNN as pip
# wheels (the NVIDIA driver comes from the host, through the NVIDIA Container Toolkit).
# One stage on purpose: the classic builder (no BuildKit) builds every stage that comes before its target, so a
# CPU build next to a GPU stage used to build the GPU stage too.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRAINYARD_HOME=/var/lib/trainyard
RUN useradd --create-home --uid 10001 trainyard \
    && mkdir -p /var/lib/trainyard && chown trainyard /var/lib/trainyard
WORKDIR /app
# The dependencies first, from pyproject.toml alone, so that a change to the code or the README reuses these
# layers: the base dependencies (shared by every image, whatever its EXTRAS), then those of the extras.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); \
print(*p['build-system']['requires'], *p['project']['dependencies'], sep='\n')" > /tmp/base.txt \
    && pip install -r /tmp/base.txt
ARG EXTRAS=keras
RUN python -c "import sys, tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); \
sys.stdout.write(''.join(d + '\n' for e in sys.argv[1].split(',') if e for d in p['project']['optional-dependencies'][e]))" \
    "$EXTRAS" > /tmp/extras.txt \
    && if [ -s /tmp/extras.txt ]; then pip install -r /tmp/base.txt -r /tmp/extras.txt; fi \
    && rm /tmp/base.txt /tmp/extras.txt
COPY README.md ./
COPY api ./api
COPY client ./client
COPY core ./core
COPY migrations ./migrations
COPY store ./store
COPY worker ./worker
COPY examples ./examples
# Editable, so migrations/ stays beside store/ (store.migrate finds it there).
RUN pip install --no-deps --no-build-isolation -e .
USER trainyard
EXPOSE 8000
CMD ["trainyard", "api", "--host", "0.0.0.0", "--port", "8000"]
