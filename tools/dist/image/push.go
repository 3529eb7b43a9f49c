package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Push copies the multi-platform index of an OCI archive (WriteOCIArchive) to repo under
// each tag, with the credentials of the docker CLI's configuration (docker login). It
// returns the index's digest: the same in every registry.
func Push(archive, repo string, tags []string, opts ...name.Option) (string, error) {
	if len(tags) == 0 {
		return "", errors.New("push: no tags given")
	}
	dir, err := os.MkdirTemp("", "oci-layout-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := untar(archive, dir); err != nil {
		return "", err
	}
	idx, err := readIndex(dir)
	if err != nil {
		return "", fmt.Errorf("%s: %w", archive, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	auth := remote.WithAuthFromKeychain(authn.DefaultKeychain)
	for i, tag := range tags {
		ref, err := name.NewTag(repo+":"+tag, opts...)
		if err != nil {
			return "", fmt.Errorf("image reference %s:%s: %w", repo, tag, err)
		}
		if i == 0 {
			err = remote.WriteIndex(ref, idx, auth)
		} else {
			err = remote.Tag(ref, idx, auth)
		}
		if err != nil {
			return "", fmt.Errorf("pushing %s: %w", ref, err)
		}
	}
	return d.String(), nil
}

// readIndex returns the one image index an OCI layout's index.json names.
func readIndex(dir string) (v1.ImageIndex, error) {
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the OCI layout: %w", err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 || !m.Manifests[0].MediaType.IsIndex() {
		return nil, fmt.Errorf("the OCI layout's index.json names %d manifests: want one multi-platform index", len(m.Manifests))
	}
	return top.ImageIndex(m.Manifests[0].Digest)
}

// untar unpacks the regular files and directories of an archive into dir (nothing outside it).
func untar(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", archive, err)
		}
		name := path.Clean(h.Name)
		if name == "." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
			return fmt.Errorf("reading %s: entry %q is outside the layout", archive, h.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(dst, 0o755)
		case tar.TypeReg:
			err = writeFile(dst, tr)
		default:
			err = fmt.Errorf("entry %q is not a file or directory", h.Name)
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", archive, err)
		}
	}
}

func writeFile(dst string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
