# syntax=docker/dockerfile:1
# The dask-aws operator image: `dask-aws operator` on Python 3.11, run as a non-root user.
#
#   docker build -t <registry>/dask-aws-operator:0.1.0 .
#
# Base: an exact Python release and Debian, pinned by digest too (the multi-arch index).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# -- build: a virtual environment with the package and its dependencies (wheels only) --
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ONLY_BINARY=:all: \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/dask-aws
COPY pyproject.toml README.md ./
COPY operator/ operator/
# setuptools builds the project itself from source; every dependency must be a wheel, so
# no compiler is ever needed. pip and setuptools leave the environment afterwards. No extras:
# the local AWS (`dask-aws[local]`, moto) is for development and has no place in the image.
RUN PIP_NO_BINARY=dask-aws /opt/dask-aws/bin/pip install --no-cache-dir . \
    && /opt/dask-aws/bin/python -m compileall -q /opt/dask-aws/lib \
    && /opt/dask-aws/bin/pip uninstall --yes pip setuptools

# -- runtime: the environment, a user, nothing else ------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="dask-aws-operator" \
      org.opencontainers.image.description="Dask clusters on AWS ECS/Fargate: the DaskAwsCluster operator" \
      org.opencontainers.image.licenses="BSD-3-Clause"
RUN groupadd --system --gid 10001 dask \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/dask --create-home \
       --shell /usr/sbin/nologin dask
COPY --from=build /opt/dask-aws /opt/dask-aws
ENV PATH=/opt/dask-aws/bin:${PATH} \
    HOME=/home/dask \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/dask
# Prometheus metrics, and /healthz for the liveness and readiness probes.
EXPOSE 8080 8081
ENTRYPOINT ["dask-aws", "operator"]
