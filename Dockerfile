# syntax=docker/dockerfile:1
# One image with every Careline binary (careline-router, careline-presence, careline-notifications,
# careline-email-intake, careline-chat-gateway, careline-survey-dispatcher, careline-console,
# careline-campaigns, careline-operator, and the `careline` CLI that the chart's tenants Job runs). One
# image because the services share nearly all their code: one build, one scan, one tag to pin
# in the chart; each Deployment picks its binary with `command`.
#
#   docker build -t ghcr.io/careline/careline:0.1.0 .

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM docker.io/library/rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
# Every binary of the workspace except the benchmark driver (package careline-loadtest); tests
# are not built. The registry and target caches make rebuilds incremental; a benchmark binary
# left in the target cache by another build is not copied.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --workspace --bins --exclude careline-loadtest \
    && mkdir -p /out \
    && find target/release -maxdepth 1 -type f -perm -u+x -name 'careline*' \
        ! -name careline-bench -exec cp {} /out/ \; \
    && ls -l /out

# glibc + libgcc + CA certificates, no shell, no package manager; uid 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# gRPC: router 50051, presence 50052, email-intake 50053, notifications 50054, chat 50055,
# survey 50056, console 50057, campaigns 50058, operator 50059; HTTP: chat 8090, survey page 8091, floor view
# 8092; SMTP in 2525; metrics 9464.
EXPOSE 50051 50052 50053 50054 50055 50056 50057 50058 50059 2525 8090 8091 8092 9464
# No default service: run `careline-router`, `careline-presence`, ... (the chart sets it).
CMD ["careline", "--help"]
