// Package artifact defines what a backup is on a target: a compressed, checksummed data file
// and a small JSON manifest stored beside it that describes it completely, so a directory or
// bucket of artifacts can be listed and restored without any database.
package artifact

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// FormatVersion is the manifest format this build writes and the newest it reads.
const FormatVersion = 1

// ManifestSuffix ends the key of every manifest; the artifact's key is the manifest's without it.
const ManifestSuffix = ".manifest.json"

// Manifest describes one artifact.
type Manifest struct {
	FormatVersion int    `json:"format_version"`
	Artifact      string `json:"artifact"` // the artifact's key on the target
	Strategy      string `json:"strategy"`

	Project string `json:"project,omitempty"`
	Service string `json:"service,omitempty"`
	// Job names the sidecar job that made the backup; empty for one made by hand. A job's
	// retention only ever prunes the backups of that job.
	Job       string `json:"job,omitempty"`
	Container string `json:"container"`
	Image     string `json:"image"`
	ImageID   string `json:"image_id,omitempty"`

	CreatedAt  time.Time `json:"created_at"`
	DurationMS int64     `json:"duration_ms"`

	Size        int64       `json:"size"`     // bytes stored on the target
	RawSize     int64       `json:"raw_size"` // bytes before compression
	SHA256      string      `json:"sha256"`   // of the stored bytes, hex
	Compression Compression `json:"compression"`
	// Encryption is reserved for encrypted artifacts; nil means the data is not encrypted.
	Encryption *Encryption `json:"encryption,omitempty"`

	Tool Tool `json:"tool"`
	// Source holds what the strategy recorded about the data: tool versions, database, paths.
	Source map[string]string `json:"source,omitempty"`
}

// Encryption describes how an artifact is encrypted.
type Encryption struct {
	Scheme     string   `json:"scheme"`
	Recipients []string `json:"recipients,omitempty"`
}

// Tool names the program that wrote the artifact.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ManifestKey returns the key of the manifest of the artifact at key.
func ManifestKey(artifactKey string) string { return artifactKey + ManifestSuffix }

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate checks that a manifest read from a target is complete and of a known format.
func (m *Manifest) Validate() error {
	switch {
	case m.FormatVersion < 1 || m.FormatVersion > FormatVersion:
		return fmt.Errorf("manifest format_version %d is not supported by this build (it reads 1 to %d)", m.FormatVersion, FormatVersion)
	case m.Artifact == "":
		return fmt.Errorf("manifest has no artifact key")
	case m.Strategy == "":
		return fmt.Errorf("manifest has no strategy")
	case !sha256Hex.MatchString(m.SHA256):
		return fmt.Errorf("manifest sha256 %q is not 64 lowercase hex digits", m.SHA256)
	case m.Size <= 0:
		return fmt.Errorf("manifest size %d is not positive", m.Size)
	case m.Encryption != nil:
		return fmt.Errorf("artifact is encrypted with %q, which this build cannot decrypt", m.Encryption.Scheme)
	}
	if _, err := ParseCompression(string(m.Compression)); err != nil {
		return err
	}
	return nil
}

// Marshal encodes the manifest as indented JSON.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Unmarshal decodes and validates a manifest.
func Unmarshal(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Key builds the key of a new artifact:
//
//	PROJECT/SERVICE/SERVICE-STRATEGY-20060102T150405.000Z.EXT.COMPRESSION
//
// Keys sort by time within a service; parts that could escape the directory are replaced.
func Key(project, service, strategy, ext string, c Compression, at time.Time) string {
	stamp := at.UTC().Format("20060102T150405.000Z")
	name := fmt.Sprintf("%s-%s-%s.%s.%s", safePart(service), strategy, stamp, ext, c.Extension())
	return Dir(project, service) + "/" + name
}

// Dir is the directory of a service's artifacts: project/service ("standalone/NAME" for a
// container outside compose).
func Dir(project, service string) string {
	if project == "" {
		project = "standalone"
	}
	return safePart(project) + "/" + safePart(service)
}

// safePart makes s usable as one path component: no separators, no control characters,
// no leading dot. Unicode letters are kept.
func safePart(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, s)
	s = strings.TrimLeft(s, ".")
	if s == "" {
		return "_"
	}
	return s
}

// ShortSHA returns the first 12 hex digits of a checksum for display.
func ShortSHA(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// HexSum formats a digest.
func HexSum(b []byte) string { return hex.EncodeToString(b) }
