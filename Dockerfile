# The sidecar image: one static binary, nothing else. Build the binary first (no registry
# is needed, the image starts from scratch):
#   make image            # = CGO_ENABLED=0 go build -o bin/sidecar ./cmd/sidecar && docker build .
FROM scratch
COPY bin/sidecar /sidecar
# Runs as root by default to use the mounted Docker socket. To run without root, use
# `user: "65534:<gid of /var/run/docker.sock on the host>"` in compose (see README).
LABEL docker-backup.sidecar="true"
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["/sidecar", "healthcheck"]
ENTRYPOINT ["/sidecar"]
