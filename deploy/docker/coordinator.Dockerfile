# syntax=docker/dockerfile:1
# The coordinator: a small runtime image with one static-ish binary (glibc, no libtorch).
#
#   docker build -f deploy/docker/coordinator.Dockerfile -t REGISTRY/sweep-coordinator:TAG .
#
# Built from the repository root (the build context); .dockerignore keeps target/ and runs/ out.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the coordinator's crates are compiled: the worker (and libtorch) are not needed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sweep-coordinator --bin coordinator \
 && install -D -m 0755 target/release/coordinator /out/coordinator

# distroless/cc: glibc, libgcc and CA certificates, no shell, user 65532 (nonroot).
FROM ${RUNTIME_IMAGE}
COPY --from=build /out/coordinator /usr/local/bin/coordinator
USER 65532:65532
WORKDIR /var/lib/sweep
# gRPC (workers, `coordinator status`, grpc.health.v1) and the web view with /metrics.
EXPOSE 50051 8080
ENTRYPOINT ["/usr/local/bin/coordinator"]
