# syntax=docker/dockerfile:1
# Build: the release binary, with dependencies cached between builds.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cargo.toml names the criterion benchmark, so its file must be there for the manifest to load.
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/telnyx-webrtc-credentials /telnyx-webrtc-credentials

# Run: glibc, CA certificates (for the Supabase JWKS over HTTPS) and nothing else; no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /telnyx-webrtc-credentials /usr/local/bin/telnyx-webrtc-credentials
ENV BIND_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 8080
# 65532 is distroless's "nonroot" user; numeric so platforms can verify it is not root.
USER 65532:65532
# Probes: GET /healthz (liveness) and GET /readyz (readiness) on port 8080.
ENTRYPOINT ["/usr/local/bin/telnyx-webrtc-credentials"]
CMD ["serve"]
