package workerimage

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// ImageRepository names the images SelfImage imports ("docker-backup-worker:HASH").
const ImageRepository = "docker-backup-worker"

// ImageEngine is the part of the Engine API SelfImage uses.
type ImageEngine interface {
	ImageInspect(ctx context.Context, image string, options ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageImport(ctx context.Context, source client.ImageImportSource, ref string, options client.ImageImportOptions) (client.ImageImportResult, error)
	ImageList(ctx context.Context, options client.ImageListOptions) (client.ImageListResult, error)
	ImageRemove(ctx context.Context, image string, options client.ImageRemoveOptions) (client.ImageRemoveResult, error)
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
}

// SelfImage returns the Runner.Image of a process that is its own worker (the plugin): its
// executable, imported once as a one-file image "docker-backup-worker:HASH" with the Engine's
// image import — no registry involved. It needs a static executable and an engine that runs
// Linux on the same architecture; otherwise it says why. Older worker images are removed
// after an import.
func SelfImage(engine ImageEngine, log *slog.Logger) func(ctx context.Context) (Image, error) {
	return func(ctx context.Context) (Image, error) {
		exe, err := os.Executable()
		if err != nil {
			return Image{}, fmt.Errorf("finding this program's executable: %w", err)
		}
		sum, size, err := executableID(exe)
		if err != nil {
			return Image{}, err
		}
		img := Image{Ref: ImageRepository + ":" + sum[:16], Entrypoint: []string{"/docker-backup", Command}}
		if _, err := engine.ImageInspect(ctx, img.Ref); err == nil {
			return img, nil
		} else if !cerrdefs.IsNotFound(err) {
			return Image{}, fmt.Errorf("looking for the worker image: %w", err)
		}
		if err := canServe(ctx, engine, exe); err != nil {
			return Image{}, err
		}
		if err := importBinary(ctx, engine, exe, size, img); err != nil {
			return Image{}, err
		}
		if log != nil {
			log.Info("imported the worker image (once per version of this program)", "image", img.Ref)
		}
		removeOthers(ctx, engine, img.Ref)
		return img, nil
	}
}

// canServe says why the executable cannot be a worker on the engine: it needs a static
// Linux executable of the engine's architecture.
func canServe(ctx context.Context, engine interface {
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
}, exe string) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("this program is %s/%s: a worker runs in a Linux container", runtime.GOOS, runtime.GOARCH)
	}
	if err := checkStatic(exe); err != nil {
		return err
	}
	info, err := engine.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("asking the engine for its platform: %w", err)
	}
	if info.Info.OSType != "linux" || goArch(info.Info.Architecture) != runtime.GOARCH {
		return fmt.Errorf("the engine runs %s/%s, this program is %s/%s", info.Info.OSType, info.Info.Architecture, runtime.GOOS, runtime.GOARCH)
	}
	return nil
}

// executableID names the executable for its image's tag (64 hex digits) and gives its size:
// from the Go build ID the linker stores in it — hashes of what it was built from and of what
// it holds, read in microseconds where hashing the whole file takes about 20 ms — or, for an
// executable without the linker's usual one (a custom -buildid), from the file's SHA-256.
func executableID(file string) (string, int64, error) {
	info, err := os.Stat(file)
	if err != nil {
		return "", 0, fmt.Errorf("reading this program's executable: %w", err)
	}
	if id, ok := goBuildID(file); ok {
		sum := sha256.Sum256([]byte("go build ID " + id))
		return hex.EncodeToString(sum[:]), info.Size(), nil
	}
	return fileHash(file)
}

// goBuildID reads the Go build ID note of an ELF executable; ok only for one of the four
// parts `go build` writes (action and content IDs of the package and of the link).
func goBuildID(file string) (string, bool) {
	f, err := elf.Open(file)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sec := f.Section(".note.go.buildid")
	if sec == nil || sec.Size > 1024 {
		return "", false
	}
	b, err := sec.Data()
	if err != nil || len(b) < 16 {
		return "", false
	}
	// The note: name size, description size, type 4, the name "Go\x00\x00", the ID.
	bo := f.ByteOrder
	nameSize, descSize, typ := bo.Uint32(b), bo.Uint32(b[4:]), bo.Uint32(b[8:])
	if nameSize != 4 || typ != 4 || string(b[12:16]) != "Go\x00\x00" || int(descSize) > len(b)-16 {
		return "", false
	}
	id := string(b[16 : 16+descSize])
	parts := strings.Split(id, "/")
	if len(parts) != 4 {
		return "", false
	}
	for _, p := range parts {
		if len(p) != 20 || strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return "", false
		}
	}
	return id, true
}

func fileHash(file string) (string, int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, fmt.Errorf("reading this program's executable: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("reading this program's executable: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// checkStatic refuses an executable that needs a dynamic loader: the image holds nothing else.
func checkStatic(exe string) error {
	f, err := elf.Open(exe)
	if err != nil {
		return fmt.Errorf("reading this program's executable: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (build it with CGO_ENABLED=0 for a worker container)", exe)
		}
	}
	return nil
}

// goArch maps the engine's architecture (uname -m) to Go's name.
func goArch(a string) string {
	switch a {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	case "armv7l", "armv6l", "arm":
		return "arm"
	case "i386", "i686":
		return "386"
	}
	return a
}

func importBinary(ctx context.Context, engine ImageEngine, exe string, size int64, img Image) error {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(func() error {
			f, err := os.Open(exe)
			if err != nil {
				return err
			}
			defer f.Close()
			tw := tar.NewWriter(pw)
			if err := tw.WriteHeader(&tar.Header{Name: "docker-backup", Mode: 0o755, Size: size, Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			if _, err := io.CopyN(tw, f, size); err != nil {
				return err
			}
			return tw.Close()
		}())
	}()
	entry, _ := json.Marshal(img.Entrypoint)
	res, err := engine.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, img.Ref, client.ImageImportOptions{
		Changes: []string{"ENTRYPOINT " + string(entry), "LABEL " + LabelWorker + "=image"},
		Message: "docker-backup worker",
	})
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("importing the worker image: %w", err)
	}
	defer res.Close()
	sc := bufio.NewScanner(res)
	for sc.Scan() {
		var msg struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) == nil && msg.Error != "" {
			return fmt.Errorf("importing the worker image: %s", msg.Error)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("importing the worker image: %w", err)
	}
	if _, err := engine.ImageInspect(ctx, img.Ref); err != nil {
		return fmt.Errorf("importing the worker image: %w", err)
	}
	return nil
}

// removeOthers removes the worker images of other versions (those in use stay).
func removeOthers(ctx context.Context, engine ImageEngine, keep string) {
	list, err := engine.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", ImageRepository)})
	if err != nil {
		return
	}
	for _, im := range list.Items {
		for _, tag := range im.RepoTags {
			if tag != keep && strings.HasPrefix(tag, ImageRepository+":") {
				_, _ = engine.ImageRemove(ctx, tag, client.ImageRemoveOptions{})
			}
		}
	}
}
