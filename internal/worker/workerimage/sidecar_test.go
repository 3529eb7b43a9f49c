package workerimage

import (
	"context"
	"errors"
	"io"
	"iter"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker-backup/docker-backup/internal/version"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

// imageEngine is an engine with some images, by reference (tag, ID or name@digest), that
// records pulls; a pull of a name in pullable adds it.
type imageEngine struct {
	arch     string
	images   map[string]image.InspectResponse
	pullable map[string]image.InspectResponse
	pulled   []string
}

func (e *imageEngine) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	if in, ok := e.images[ref]; ok {
		return client.ImageInspectResult{InspectResponse: in}, nil
	}
	return client.ImageInspectResult{}, cerrdefs.ErrNotFound.WithMessage("no such image: " + ref)
}

func (e *imageEngine) ImagePull(_ context.Context, ref string, _ client.ImagePullOptions) (client.ImagePullResponse, error) {
	e.pulled = append(e.pulled, ref)
	in, ok := e.pullable[ref]
	if !ok {
		return nil, errors.New("manifest unknown")
	}
	e.images[ref] = in
	return pullResponse{io.NopCloser(strings.NewReader(""))}, nil
}

func (e *imageEngine) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	return client.SystemInfoResult{Info: system.Info{OSType: "linux", Architecture: e.arch}}, nil
}

func (e *imageEngine) ImageImport(context.Context, client.ImageImportSource, string, client.ImageImportOptions) (client.ImageImportResult, error) {
	return nil, errors.New("no import in this test")
}

func (e *imageEngine) ImageList(context.Context, client.ImageListOptions) (client.ImageListResult, error) {
	return client.ImageListResult{}, nil
}

func (e *imageEngine) ImageRemove(context.Context, string, client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	return client.ImageRemoveResult{}, nil
}

type pullResponse struct{ io.ReadCloser }

func (pullResponse) JSONMessages(context.Context) iter.Seq2[jsonstream.Message, error] {
	return func(func(jsonstream.Message, error) bool) {}
}
func (pullResponse) Wait(context.Context) error { return nil }

func digest(c string) string { return "sha256:" + strings.Repeat(c, 64) }

func sidecar(id, arch, variant string, repoDigests ...string) image.InspectResponse {
	return image.InspectResponse{ID: id, Os: "linux", Architecture: arch, Variant: variant, RepoDigests: repoDigests}
}

func TestSidecarImage(t *testing.T) {
	ctx := context.Background()
	pins := version.Pins{Index: digest("a"), Images: map[string][]string{
		"linux/amd64": {digest("b"), digest("c")}, "linux/arm/v7": {digest("d")},
	}}
	find := func(e *imageEngine, rel Release) (Image, error) { return SidecarImage(e, rel, nil)(ctx) }
	wantErr := func(err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("no error; want one saying %q", parts)
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not say %q", err, p)
			}
		}
	}

	// A development build uses no sidecar image, whatever is on the engine.
	e := &imageEngine{arch: "x86_64", images: map[string]image.InspectResponse{"docker-backup-sidecar:dev": sidecar(digest("b"), "amd64", "")}}
	_, err := find(e, Release{Version: "dev"})
	wantErr(err, `development build (version "dev")`)
	_, err = find(e, Release{Version: "v1.2.3-dirty"})
	wantErr(err, "development build")

	// Nothing on the engine, nowhere to pull from: how to load it.
	e = &imageEngine{arch: "armv7l", images: map[string]image.InspectResponse{}}
	_, err = find(e, Release{Version: "v1.2.3", Pins: pins})
	wantErr(err, "docker-backup-sidecar:v1.2.3 for linux/arm/v7 is not on the engine", "docker load -i sidecar-linux-arm-v7.tar")

	// Without pins, the tag of the version (for the engine's platform) serves, by its ID.
	e = &imageEngine{arch: "aarch64", images: map[string]image.InspectResponse{"docker-backup-sidecar:v1.2.3": sidecar(digest("e"), "arm64", "v8")}}
	img, err := find(e, Release{Version: "v1.2.3"})
	if err != nil || img.Ref != digest("e") || strings.Join(img.Entrypoint, " ") != "/sidecar "+Command {
		t.Fatalf("unpinned tag: %+v, %v", img, err)
	}
	// ... but not an image of another platform.
	e.arch = "x86_64"
	_, err = find(e, Release{Version: "v1.2.3"})
	wantErr(err, "is for linux/arm64, the engine runs linux/amd64")

	// With pins: another build under the tag is refused; the pinned image found by its ID serves.
	e = &imageEngine{arch: "x86_64", images: map[string]image.InspectResponse{"docker-backup-sidecar:v1.2.3": sidecar(digest("f"), "amd64", "")}}
	_, err = find(e, Release{Version: "v1.2.3", Pins: pins})
	wantErr(err, "is not the sidecar image of this release v1.2.3", "sidecar-linux-amd64.tar")
	e.images[digest("c")] = sidecar(digest("c"), "amd64", "")
	if img, err = find(e, Release{Version: "v1.2.3", Pins: pins}); err != nil || img.Ref != digest("c") {
		t.Fatalf("pinned ID: %+v, %v", img, err)
	}
	// A pinned repo digest (the containerd image store's ID is the manifest's digest) serves too.
	e = &imageEngine{arch: "x86_64", images: map[string]image.InspectResponse{
		"docker-backup-sidecar:v1.2.3": sidecar(digest("9"), "amd64", "", "registry.invalid/sidecar@"+digest("a"))}}
	if img, err = find(e, Release{Version: "v1.2.3", Pins: pins}); err != nil || img.Ref != digest("9") {
		t.Fatalf("pinned repo digest: %+v, %v", img, err)
	}

	// Not on the engine, a repository known: pulled by the pinned index digest, then checked.
	src := "registry.invalid/docker-backup-sidecar@" + digest("a")
	e = &imageEngine{arch: "x86_64", images: map[string]image.InspectResponse{},
		pullable: map[string]image.InspectResponse{src: sidecar(digest("b"), "amd64", "")}}
	rel := Release{Version: "v1.2.3", Pins: pins, Repository: "registry.invalid/docker-backup-sidecar"}
	if desc := DescribePluginImage(ctx, e, rel); !strings.Contains(desc, src+", pulled on first use") || len(e.pulled) != 0 {
		t.Errorf("describe before the pull: %q (pulls %q)", desc, e.pulled)
	}
	if img, err = find(e, rel); err != nil || img.Ref != digest("b") || strings.Join(e.pulled, " ") != src {
		t.Fatalf("pulled: %+v, %v (pulls %q)", img, err, e.pulled)
	}
	// A pulled image that is not the release's is refused.
	e = &imageEngine{arch: "x86_64", images: map[string]image.InspectResponse{},
		pullable: map[string]image.InspectResponse{src: sidecar(digest("7"), "amd64", "")}}
	_, err = find(e, rel)
	wantErr(err, "is not the sidecar image of this release")
}

// PluginImage falls back to the sidecar image when this program cannot be its own worker
// (here: the engine's architecture is another), and says both reasons when neither serves.
func TestPluginImageFallsBack(t *testing.T) {
	ctx := context.Background()
	e := &imageEngine{arch: "s390x", images: map[string]image.InspectResponse{}}
	rel := Release{Version: "v1.2.3"}
	_, err := PluginImage(e, rel, nil)(ctx)
	if err == nil || !strings.Contains(err.Error(), "the engine runs linux/s390x") && !strings.Contains(err.Error(), "dynamically linked") ||
		!strings.Contains(err.Error(), "docker-backup-sidecar:v1.2.3 for linux/s390x is not on the engine") {
		t.Fatalf("neither: %v", err)
	}
	e.images["docker-backup-sidecar:v1.2.3"] = sidecar(digest("5"), "s390x", "")
	img, err := PluginImage(e, rel, nil)(ctx)
	if err != nil || img.Ref != digest("5") {
		t.Fatalf("fallback: %+v, %v", img, err)
	}
	if d := DescribePluginImage(ctx, e, rel); !strings.HasPrefix(d, "the sidecar image docker-backup-sidecar:v1.2.3 (sha256:555555555555, not pinned") {
		t.Errorf("describe: %q", d)
	}
}
