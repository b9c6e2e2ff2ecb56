# syntax=docker/dockerfile:1
# Image of the signaling service. Build from the repository root:
#   docker build -f deploy/docker/signaling.Dockerfile -t e2ee-sfu/signaling:dev .
# Settings come from the environment (deploy/README.md, section 1); the web client is embedded
# in the binary.

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
    cargo build --release --locked -p signaling --no-default-features --bin signaling \
 && install -D -m 0755 target/release/signaling /out/signaling

# busybox's static wget runs the HEALTHCHECK in an image that has no shell.
FROM busybox:1.37-musl AS wget

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=wget /bin/wget /usr/local/bin/wget
COPY --from=build /out/signaling /usr/local/bin/signaling
ENV SIGNALING_BIND_ADDRESS=0.0.0.0 \
    SIGNALING_HTTP_PORT=8080 \
    SIGNALING_LOG=info
EXPOSE 8080/tcp
USER 65532:65532
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/signaling"]
CMD ["serve"]
