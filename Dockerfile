# loanflow container image: build the release binary, then run it on a slim Debian as a
# non-root user. Works with the classic builder and with BuildKit (no BuildKit-only syntax).

FROM rust:1-bookworm AS builder
WORKDIR /src
# The build embeds config/default.toml and assets/ (include_str!) and migrations/
# (embed_migrations!); .ci/run checks that these COPY lines bring all the build needs.
# Vendored OpenSSL needs perl and make: both are in the rust:bookworm image.
COPY Cargo.toml Cargo.lock ./
COPY config ./config
COPY migrations ./migrations
COPY assets ./assets
COPY src ./src
RUN cargo build --release --locked \
    && install -m 0755 target/release/loanflow /usr/local/bin/loanflow

FROM debian:bookworm-slim AS runtime
# ca-certificates for TLS to PostgreSQL/RabbitMQ; curl for the container health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin loanflow \
    && mkdir -p /app/data \
    && chown loanflow:loanflow /app/data
WORKDIR /app
COPY --from=builder /usr/local/bin/loanflow /usr/local/bin/loanflow
# Read at start from the working directory (over the embedded defaults); env vars win over both.
COPY config ./config
ENV LOANFLOW__HTTP__HOST=0.0.0.0
# The default SQLite database is data/loanflow.db, i.e. /app/data/loanflow.db.
VOLUME ["/app/data"]
USER loanflow
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health/ready > /dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/loanflow"]
