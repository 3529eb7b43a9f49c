# The sidecar image: one static binary and two empty directories, nothing else. Build the
# binary first (no registry is needed, the image starts from scratch):
#   make image    # = CGO_ENABLED=0 go build -o bin/sidecar ./cmd/sidecar && docker build .
FROM scratch
COPY bin/sidecar /sidecar
# The catalog and control socket (mount a volume here), and the default local target. Both
# belong to uid 65532 so that the image also runs without root: see "Running without root"
# in the README (user: "65532:<gid of /var/run/docker.sock>").
COPY --chown=65532:65532 bin/image-dirs/ /
LABEL docker-backup.sidecar="true"
VOLUME ["/var/lib/docker-backup"]
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["/sidecar", "healthcheck"]
ENTRYPOINT ["/sidecar"]
