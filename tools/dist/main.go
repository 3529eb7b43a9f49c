// Command dist makes docker-backup's release files (make dist), and the sidecar image of
// `make image`:
//
//	dist build    -out dist -version v1.2.3 ...   every release file (see README "Install")
//	dist image    -binary bin/sidecar -tag T -out F   one platform's `docker load` archive
//	dist push     -archive dist/sidecar.oci.tar -repo R -tags v1.2.3,v1.2,v1,latest
//	dist registry -addr 127.0.0.1:0                an in-memory registry, for the tests
//
// It is its own module (tools/dist/go.mod): none of its dependencies enter the main module
// or the binaries it packages.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/docker-backup/docker-backup/tools/dist/image"
	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(os.Args[1:], log); err != nil {
		fmt.Fprintln(os.Stderr, "dist:", err)
		os.Exit(1)
	}
}

func run(args []string, log *slog.Logger) error {
	if len(args) == 0 {
		return fmt.Errorf("no command: use build, image, push or registry")
	}
	switch args[0] {
	case "build":
		return cmdBuild(args[1:], log)
	case "image":
		return cmdImage(args[1:])
	case "push":
		return cmdPush(args[1:])
	case "registry":
		return cmdRegistry(args[1:])
	}
	return fmt.Errorf("unknown command %q: use build, image, push or registry", args[0])
}

// release holds the flags every command that writes release files shares.
type release struct {
	version, commit, source, license string
	epoch                            int64
}

func (r *release) flags(fs *flag.FlagSet) {
	fs.StringVar(&r.version, "version", "", "the semver (tools/version.sh version)")
	fs.StringVar(&r.commit, "commit", "", "the commit (tools/version.sh commit)")
	fs.Int64Var(&r.epoch, "epoch", -1, "SOURCE_DATE_EPOCH: the commit's time, every file's time")
	fs.StringVar(&r.source, "source", "https://github.com/docker-backup/docker-backup", "the source repository's URL")
	fs.StringVar(&r.license, "license", "NOASSERTION", "the license, an SPDX expression")
}

func (r *release) check() error {
	if r.version == "" || r.epoch < 0 {
		return fmt.Errorf("-version and -epoch are required (see tools/version.sh)")
	}
	return nil
}

func (r *release) meta() image.Meta {
	return image.Meta{Version: r.version, Revision: r.commit, Source: r.source, Licenses: r.license, Created: r.created()}
}

func (r *release) created() time.Time { return time.Unix(r.epoch, 0).UTC() }

func cmdImage(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var r release
	r.flags(fs)
	binary := fs.String("binary", "bin/sidecar", "the static sidecar binary")
	platform := fs.String("platform", "linux/amd64", "the binary's platform")
	tag := fs.String("tag", "", "the image's tag (docker-backup-sidecar:dev)")
	out := fs.String("out", "", "the `docker load` archive to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := r.check(); err != nil {
		return err
	}
	if *tag == "" || *out == "" {
		return fmt.Errorf("image: -tag and -out are required")
	}
	p, err := image.Platform(*platform)
	if err != nil {
		return err
	}
	img, err := image.Sidecar(*binary, p, r.meta())
	if err != nil {
		return err
	}
	return image.WriteDockerArchive(*out, *tag, img)
}

func cmdPush(args []string) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	archive := fs.String("archive", "dist/sidecar.oci.tar", "the OCI layout archive of make dist")
	repo := fs.String("repo", "", "the registry repository (host/path)")
	tags := fs.String("tags", "", "comma-separated tags, the first pushed, the others tagged (default: from -version)")
	version := fs.String("version", "", "the release's semver: tags it, and vX.Y, vX and latest unless a pre-release")
	if err := fs.Parse(args); err != nil {
		return err
	}
	list := semverTags(*version)
	if *tags != "" {
		list = strings.Split(*tags, ",")
	}
	if *repo == "" || len(list) == 0 {
		return fmt.Errorf("push: -repo and -version (or -tags) are required")
	}
	d, err := image.Push(*archive, *repo, list)
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", *repo, d)
	return nil
}

// cmdRegistry serves an in-memory registry (for the tests of make dist and make dist-push)
// and prints its address; it ends on SIGTERM or SIGINT.
func cmdRegistry(args []string) error {
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "the address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: registry.New(registry.Logger(stdlog.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// semverTags are the tags of a release's image: v1.2.3, v1.2, v1 and latest; a pre-release
// or a build between tags (v1.2.3-rc.1, v1.2.3-4-gabc) only its own.
func semverTags(v string) []string {
	if v == "" {
		return nil
	}
	core := strings.TrimPrefix(v, "v")
	parts := strings.Split(core, ".")
	if !strings.HasPrefix(v, "v") || strings.ContainsAny(core, "-+") || len(parts) != 3 {
		return []string{v}
	}
	return []string{v, "v" + parts[0] + "." + parts[1], "v" + parts[0], "latest"}
}
