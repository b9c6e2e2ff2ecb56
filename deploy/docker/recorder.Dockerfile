# syntax=docker/dockerfile:1
# Image of the compliance recorder. Build from the repository root:
#   docker build -f deploy/docker/recorder.Dockerfile -t e2ee-sfu/recorder:dev .
# Settings come from the environment (deploy/README.md, "Compliance recording"): its identity
# (`recorder enroll`, identity.json 0600) is mounted at RECORDER_STATE_DIR, the archive is a
# volume at RECORDER_ARCHIVE_DIR, and only the organization's PUBLIC key (`age1…`) is given
# (RECORDER_ARCHIVE_RECIPIENT): the key that opens the archive never comes near this image.

FROM rust:1.95-slim-bookworm AS build
# Build tools for crates with C and C++ parts (libwebm); versions follow the pinned base image.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p recorder --bin recorder \
 && install -D -m 0755 target/release/recorder /out/recorder

# busybox's static wget runs the HEALTHCHECK in an image that has no shell.
FROM busybox:1.37-musl AS wget

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=wget /bin/wget /usr/local/bin/wget
COPY --from=build /out/recorder /usr/local/bin/recorder
ENV RECORDER_STATE_DIR=/var/lib/recorder/state \
    RECORDER_ARCHIVE_DIR=/var/lib/recorder/archive \
    RECORDER_METRICS_LISTEN=0.0.0.0:9464
EXPOSE 9464/tcp
USER 65532:65532
# SIGTERM finishes every session (manifest written) within --shutdown-timeout-s.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9464/healthz"]
ENTRYPOINT ["/usr/local/bin/recorder"]
CMD ["serve"]
