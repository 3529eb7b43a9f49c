// Package checksums writes a release's checksums.txt, in `sha256sum -c` format.
package checksums

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File is the checksums' file name in the release directory.
const File = "checksums.txt"

// Write writes dir/checksums.txt: "<sha256>  <name>" for every other regular file of dir, in
// name order. It refuses a directory holding anything else (a subdirectory, a link).
func Write(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var b strings.Builder
	names := []string{}
	for _, e := range entries {
		if e.Name() == File {
			continue
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("%s: %s is not a regular file: a release directory holds files only", dir, e.Name())
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		sum, err := SHA256(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, n)
	}
	return os.WriteFile(filepath.Join(dir, File), []byte(b.String()), 0o644)
}

// SHA256 is a file's SHA-256 in hex.
func SHA256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", file, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
