# syntax=docker/dockerfile:1
# The worker: CUDA 13 base image plus the libtorch 2.11 libraries the binary links, taken from
# PyPI's torch==2.11.0 wheel (its CUDA libraries come as pip packages: nvidia-*-cu13). The same
# image trains on the CPU (`worker --cpu`) where there is no GPU.
#
#   docker build -f deploy/docker/worker.Dockerfile -t REGISTRY/sweep-worker:TAG .
#
# Built from the repository root. About 4 GB compressed: torch/lib and nvidia/ are most of it.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=nvidia/cuda:13.0.1-base-ubuntu24.04

FROM ${RUST_IMAGE} AS build
ARG TORCH_VERSION=2.11.0
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler python3-venv \
 && rm -rf /var/lib/apt/lists/*
# libtorch as scripts/setup gets it: torch from PyPI in a venv; torch-sys asks its Python where
# the libraries are, and the worker's build script sets an rpath to that folder.
RUN python3 -m venv /opt/torch \
 && /opt/torch/bin/pip install --no-cache-dir --disable-pip-version-check "torch==${TORCH_VERSION}"
ENV LIBTORCH_USE_PYTORCH=1 PATH=/opt/torch/bin:$PATH
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sweep-worker --bin worker \
 && install -D -m 0755 target/release/worker /stage/usr/local/bin/worker
# Only the shared libraries, at the same absolute paths: the worker's rpath names torch/lib, and
# libtorch_cuda finds the CUDA libraries through $ORIGIN/../../nvidia/*/lib (and cuDNN loads its
# parts from there). libtorch_python is Python's binding, which the worker does not load.
RUN site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 && cp -a --parents "$site/torch/lib" "$site/nvidia" /stage/ \
 && rm -f "/stage$site/torch/lib/libtorch_python.so" \
 && find /stage -name '__pycache__' -prune -exec rm -rf {} + \
 && /stage/usr/local/bin/worker --version

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 sweep \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin sweep
COPY --from=build /stage/ /
USER 65532:65532
# Downloads fall back to $HOME/.cache when the data folder is read-only; CUDA keeps its kernel
# cache there too. Kubernetes mounts an emptyDir on /tmp (the root file system is read-only).
ENV HOME=/tmp SWEEP_DATA_DIR=/data
ENTRYPOINT ["/usr/local/bin/worker"]
