# syntax=docker/dockerfile:1
#
# latchkey in a container.
#
#   docker build -t latchkey .
#   docker run -p 8080:8080 -v latchkey-data:/var/lib/latchkey latchkey
#
# With no further configuration this runs the embedded setup (SQLite and a generated development
# master key in the /var/lib/latchkey volume). For production pass LATCHKEY__DATABASE__URL,
# LATCHKEY__REDIS__URL, LATCHKEY__SECURITY__MASTER_KEY and LATCHKEY__SERVER__PUBLIC_URL
# (see docs/configuration.md).

# ---- build ----
FROM rust:1-bookworm AS builder

RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY templates ./templates

# The cache mounts keep downloaded crates and compiled dependencies between builds; the binary
# is copied out of the target cache within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/latchkey /usr/local/bin/latchkey

# ---- run ----
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 curl \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 latchkey \
    && useradd --system --uid 10001 --gid latchkey --home-dir /var/lib/latchkey \
        --no-create-home --shell /usr/sbin/nologin latchkey \
    && install -d -o latchkey -g latchkey -m 0750 /var/lib/latchkey

COPY --from=builder /usr/local/bin/latchkey /usr/local/bin/latchkey
COPY --from=builder /src/config/latchkey.example.toml /etc/latchkey/latchkey.example.toml

ENV LATCHKEY__DATA_DIR=/var/lib/latchkey \
    LATCHKEY__SERVER__BIND=0.0.0.0:8080

# Configure with LATCHKEY__* variables, or mount a file and run `serve --config PATH`
# (/etc/latchkey/latchkey.example.toml documents every setting).
WORKDIR /var/lib/latchkey
VOLUME ["/var/lib/latchkey"]
USER 10001:10001
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1

ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
