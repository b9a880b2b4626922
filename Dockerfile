# syntax=docker/dockerfile:1
# gitinit: a glibc binary with libgit2, libcurl, libssh2, OpenSSL and zlib built in (vendored,
# static); it needs only glibc, libgcc_s and libm, which distroless/cc provides, with CA
# certificates and no shell. musl was measured (bench/compare_builds.py, same run): 1.13x slower
# full clones, no better depth-1, same size and memory, and mimalloc does not help (libgit2, zlib
# and OpenSSL allocate through musl's malloc); so glibc.

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin gitinit \
 && install -D -m 0755 target/release/gitinit /out/gitinit \
 && ln -s gitinit /out/polyaxon

FROM gcr.io/distroless/cc-debian12:nonroot
# `polyaxon initializer git` is Polyaxon's init-container command: the link makes this image a
# drop-in. /etc/ssl/certs comes with the base image.
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
WORKDIR /workspace
ENTRYPOINT ["/usr/local/bin/gitinit"]
CMD ["--help"]
