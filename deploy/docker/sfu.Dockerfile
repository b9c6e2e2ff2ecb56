# syntax=docker/dockerfile:1
# Image of the SFU. Build from the repository root (the workspace is the build context):
#   docker build -f deploy/docker/sfu.Dockerfile -t e2ee-sfu/sfu:dev .
# Settings come from the environment (deploy/README.md, section 1). The UDP media port must be
# published as UDP and SFU_ADVERTISED_ADDRESS set to the address clients reach it on.

FROM rust:1.95-slim-bookworm AS build
# Build tools for crates with C parts; versions follow the pinned base image.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p sfu --bin sfu \
 && install -D -m 0755 target/release/sfu /out/sfu

# busybox's static wget runs the HEALTHCHECK in an image that has no shell.
FROM busybox:1.37-musl AS wget

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=wget /bin/wget /usr/local/bin/wget
COPY --from=build /out/sfu /usr/local/bin/sfu
ENV SFU_BIND_ADDRESS=0.0.0.0 \
    SFU_HTTP_PORT=7880 \
    SFU_UDP_PORT=7882 \
    SFU_LOG=info
EXPOSE 7880/tcp 7882/udp 7881/tcp
USER 65532:65532
# SIGTERM drains: /readyz turns 503, peers are given SFU_DRAIN_TIMEOUT_SECONDS to leave.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:7880/healthz"]
ENTRYPOINT ["/usr/local/bin/sfu"]
