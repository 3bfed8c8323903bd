# syntax=docker/dockerfile:1
# Image of the evm-score-oracle service, built reproducibly:
#   docker buildx build --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) \
#     --output type=image,name=majus/evm-score-oracle,push=true,rewrite-timestamp=true .
#
# Base: python:3.11.10-slim-bookworm pinned by the digest published in the
# public repository nalabelle/build (images/digests.Dockerfile, a Renovate-kept
# list of digests). Check it with
# `docker buildx imagetools inspect python:3.11.10-slim-bookworm` before a release.
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${PYTHON_IMAGE} AS builder
ARG SOURCE_DATE_EPOCH=0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
# NOTE: the build backend (setuptools>=69) comes unpinned from PyPI here. It
# only builds this project's pure-Python wheel and never reaches the final stage.
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG SOURCE_DATE_EPOCH=0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORACLE_KEY_FILE=/app/ecdsa.sec
WORKDIR /app
# Binary wheels only, checked against the lock's hashes: no compiler is needed
# and a changed upload on PyPI fails the build. No .pyc files are written, so
# no build time ends up in the image.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-compile --only-binary=:all: --require-hashes --no-deps -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock
COPY --from=builder /wheels /tmp/wheels
RUN pip install --no-compile --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
# The key file is mounted read-only by docker-compose.yml, so the service can
# run as root without being able to change it.
EXPOSE 3000
ENTRYPOINT ["evm-score-oracle", "serve"]
