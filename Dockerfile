# syntax=docker/dockerfile:1
#
# The tandem server: one binary (`tandem`, which also runs the built-in echo agent
# as `tandem echo-agent`) on Debian slim, as a non-root user.
#
#   docker build -t tandem .
#   docker run -p 8080:8080 tandem            # SQLite in /var/lib/tandem
#   docker compose up                         # with Postgres, see docker-compose.yml

ARG RUST_VERSION=1.95

# The workspace reduced to its manifests and empty sources: all the dependencies
# need. Its output changes only when a manifest does, so the dependency layer
# below stays cached while only the code changes.
FROM rust:${RUST_VERSION}-bookworm AS skeleton
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN find crates -type f ! -name Cargo.toml -delete \
 && for manifest in crates/*/Cargo.toml; do \
      dir="${manifest%/Cargo.toml}"; \
      mkdir -p "$dir/src" && touch "$dir/src/lib.rs"; \
      sed -n 's/^path *= *"\(.*\)"/\1/p' "$manifest" | while read -r target; do \
        mkdir -p "$dir/$(dirname "$target")" && echo 'fn main() {}' > "$dir/$target"; \
      done; \
    done

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY --from=skeleton /src/ ./
RUN cargo build --release --locked -p tandem
COPY crates crates
COPY migrations migrations
# The real sources may be older than the empty ones just built: make cargo see them.
RUN find crates -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p tandem \
 && install -m 0755 target/release/tandem /usr/local/bin/tandem

FROM debian:bookworm-slim
# ca-certificates: roots for https agent endpoints (OpenAI-compatible profiles).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --uid 10001 --create-home \
      --home-dir /var/lib/tandem --shell /usr/sbin/nologin tandem
COPY --from=builder /usr/local/bin/tandem /usr/local/bin/tandem
USER 10001:10001
# The default database, sqlite://tandem.db, lives here; set DATABASE_URL for Postgres.
WORKDIR /var/lib/tandem
ENV TANDEM_LISTEN=0.0.0.0:8080 \
    TANDEM_LOG_FORMAT=json
EXPOSE 8080
# No curl in the image: bash's /dev/tcp asks /healthz on the default port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# SIGTERM stops it gracefully: no new connections, requests in flight finish,
# event streams end so clients resume elsewhere.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tandem"]
CMD ["serve"]
