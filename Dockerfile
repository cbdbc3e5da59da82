# wssh in a container: built with Rust and Node (for xterm.js), run on a small Debian with a
# shell for the sessions. No registry is reachable from the project's machines, so this file
# is kept plain enough to check by reading.
#
#   docker build -t wssh .
#   docker run -p 28080:28080 -v wssh-data:/data wssh
#   (the first admin's password is printed in `docker logs` once)

FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p wssh --locked \
 && cp target/release/wssh /wssh \
 && /wssh completions bash > /wssh.bash && /wssh man > /wssh.1

FROM debian:bookworm-slim
# A shell and the usual tools for the sessions; certificates for `wssh connect https://…`.
RUN apt-get update && apt-get install -y --no-install-recommends bash ca-certificates less procps tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --shell /bin/bash --uid 10001 wssh \
 && install -d -o wssh -g wssh -m 0700 /data
COPY --from=build /wssh /usr/local/bin/wssh
COPY --from=build /wssh.bash /usr/share/bash-completion/completions/wssh
COPY --from=build /wssh.1 /usr/local/share/man/man1/wssh.1
USER wssh
WORKDIR /home/wssh
VOLUME /data
EXPOSE 28080
ENV WSSH_DATA_DIR=/data
# tini reaps the shells' orphans; wssh listens on every interface inside the container, and
# says loudly that it is plain HTTP: put TLS in front (docs/deploy.md).
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/wssh", "serve"]
CMD ["--listen", ":28080"]
