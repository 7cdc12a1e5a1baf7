# syntax=docker/dockerfile:1
# The River Lifeguard operator image.
#
#   docker build -t REGISTRY/river-lifeguard:0.1.0 .
#
# Small (python:3.11-slim, a virtualenv without pip or setuptools), non-root (uid 65532), every
# Python dependency pinned with hashes (docker/requirements.lock, from pyproject.toml by
# docker/lock_requirements.py). The entrypoint is the `lifeguard` CLI; the default command is
# `lifeguard run`, and the Helm chart passes `run` with its flags.
# Pin the base image by digest in your own builds (PYTHON_IMAGE=python:3.11-slim@sha256:...).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# The runtime environment: no pip or setuptools inside; the build venv's pip installs into it.
# The build tools live in a venv of their own, never in the system interpreter: a Debian-based
# PYTHON_IMAGE refuses system-wide pip installs (PEP 668); the official image accepts both.
RUN python -m venv --without-pip /opt/lifeguard \
 && python -m venv /opt/build
COPY docker/requirements.lock docker/build-requirements.lock /tmp/
# Wheels only (no compilers in the image) and hashes checked: what was locked is what runs.
RUN /opt/build/bin/pip --python /opt/lifeguard/bin/python install --require-hashes --no-deps \
        --only-binary=:all: -r /tmp/requirements.lock \
 && /opt/build/bin/pip install --require-hashes --no-deps --only-binary=:all: \
        -r /tmp/build-requirements.lock
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# Lifeguard's own wheel, built with the pinned setuptools (no build isolation: nothing
# unpinned is fetched), then installed without dependencies: they are all in the lock.
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation -w /tmp/wheels . \
 && /opt/build/bin/pip --python /opt/lifeguard/bin/python install --no-deps /tmp/wheels/*.whl \
 && /opt/lifeguard/bin/python -c "import lifeguard.cli"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="river-lifeguard" \
      org.opencontainers.image.description="A Kubernetes operator that keeps long-running River jobs honest." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
COPY --from=build /opt/lifeguard /opt/lifeguard
# PYTHONDONTWRITEBYTECODE: the chart mounts the root filesystem read-only (bytecode was
# compiled at install time). PYTHONUNBUFFERED: log lines leave at once.
ENV PATH=/opt/lifeguard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp
# The "nonroot" uid/gid of distroless images; numeric so that runAsNonRoot can verify it. It
# gets a passwd entry: kopf names the operator after the user (getpass), which needs one.
RUN echo "nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin" >> /etc/passwd \
 && echo "nonroot:x:65532:" >> /etc/group
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["lifeguard"]
CMD ["run"]
