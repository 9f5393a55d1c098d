# syntax=docker/dockerfile:1
#
# The vigie image for registries and clusters:
#   docker build -t <registry>/vigie:0.1.0 .
# Two stages: the release build on rust:1.95-bookworm, then
# gcr.io/distroless/cc-debian12:nonroot (glibc, libgcc_s and the CA bundle, no shell)
# running as the `nonroot` user 65532, the user charts/vigie's securityContext expects.
#
# Building it needs both base images from their registries, which the dev/CI machines
# cannot reach, so it is not built there: the tests use scripts/build-image.sh instead,
# which packs the host's release build, the shared libraries it links and the CA bundle
# into an equivalent FROM-scratch image. Keep the two in step (entrypoint, port, /data).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# BuildKit cache mounts keep the crate registry and the target directory between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin vigie \
 && strip -o /vigie target/release/vigie \
 && mkdir /data

FROM gcr.io/distroless/cc-debian12:nonroot
# The base image has a CA bundle too; this one is the builder's, the same one
# scripts/build-image.sh copies (rustls reads it for HTTPS scrapes and receivers).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /vigie /vigie
# A /data writable by the nonroot user for `docker run` without a volume; Kubernetes and
# the Swarm stack mount a volume there.
COPY --from=build --chown=65532:65532 /data /data
ENV VIGIE_DATA_DIR=/data
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/vigie"]
CMD ["run"]
