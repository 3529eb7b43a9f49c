package image

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

var meta = Meta{Version: "v1.2.3", Revision: "abc", Source: "https://example.invalid/src", Licenses: "NOASSERTION",
	Created: time.Unix(1700000000, 0)}

func images(t *testing.T) ([]v1.Image, []v1.Platform) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sidecar")
	if err := os.WriteFile(bin, []byte("not really a binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	var imgs []v1.Image
	var ps []v1.Platform
	for _, s := range []string{"linux/amd64", "linux/arm/v7"} {
		p, err := Platform(s)
		if err != nil {
			t.Fatal(err)
		}
		img, err := Sidecar(bin, p, meta)
		if err != nil {
			t.Fatal(err)
		}
		imgs, ps = append(imgs, img), append(ps, p)
	}
	return imgs, ps
}

// Same inputs, same bytes: the images, the docker archive and the OCI archive.
func TestReproducible(t *testing.T) {
	dir := t.TempDir()
	write := func(n string) (string, string) {
		imgs, ps := images(t)
		da, oa := filepath.Join(dir, n+".tar"), filepath.Join(dir, n+".oci.tar")
		if err := WriteDockerArchive(da, "docker-backup-sidecar:v1.2.3", imgs[0]); err != nil {
			t.Fatal(err)
		}
		if err := WriteOCIArchive(oa, "v1.2.3", Index(imgs, ps, meta), meta.Created); err != nil {
			t.Fatal(err)
		}
		return da, oa
	}
	a1, o1 := write("one")
	a2, o2 := write("two")
	for _, pair := range [][2]string{{a1, a2}, {o1, o2}} {
		b1, _ := os.ReadFile(pair[0])
		b2, _ := os.ReadFile(pair[1])
		if len(b1) == 0 || !bytes.Equal(b1, b2) {
			t.Errorf("%s and %s differ", pair[0], pair[1])
		}
	}
	b, _ := os.ReadFile(a1)
	if !bytes.Contains(b, []byte(`"RepoTags":["docker-backup-sidecar:v1.2.3"]`)) {
		t.Errorf("the docker archive's manifest does not tag docker-backup-sidecar:v1.2.3")
	}
}

func TestSidecarConfig(t *testing.T) {
	imgs, _ := images(t)
	cf, err := imgs[1].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.Architecture != "arm" || cf.Variant != "v7" || cf.OS != "linux" || c.User != User ||
		strings.Join(c.Healthcheck.Test, " ") != "CMD /sidecar healthcheck" || c.Labels["org.opencontainers.image.created"] != "2023-11-14T22:13:20Z" ||
		!cf.Created.Equal(meta.Created) {
		t.Errorf("config: %+v", cf)
	}
	if _, err := Platform("linux"); err == nil || !strings.Contains(err.Error(), `platform "linux"`) {
		t.Errorf("Platform(linux) = %v", err)
	}
}

// The OCI archive pushed to a registry is the same index, by digest, under every tag.
func TestPush(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	imgs, ps := images(t)
	idx := Index(imgs, ps, meta)
	want, _ := idx.Digest()
	oa := filepath.Join(t.TempDir(), "sidecar.oci.tar")
	if err := WriteOCIArchive(oa, "v1.2.3", idx, meta.Created); err != nil {
		t.Fatal(err)
	}
	repo := strings.TrimPrefix(srv.URL, "http://") + "/sidecar"
	d, err := Push(oa, repo, []string{"v1.2.3", "latest"}, name.Insecure)
	if err != nil || d != want.String() {
		t.Fatalf("Push = %s, %v; want %s", d, err, want)
	}
	for _, tag := range []string{"v1.2.3", "latest"} {
		ref, _ := name.ParseReference(repo+":"+tag, name.Insecure)
		got, err := remote.Index(ref)
		if err != nil {
			t.Fatal(err)
		}
		if gd, _ := got.Digest(); gd != want {
			t.Errorf("%s is %s, want %s", tag, gd, want)
		}
	}
	if _, err := Push(filepath.Join(t.TempDir(), "none.tar"), repo, []string{"x"}); err == nil {
		t.Error("pushed a missing archive")
	}
}
