// Package artifact defines what a backup is on a target: a compressed, checksummed data file
// and a small JSON manifest stored beside it that describes it completely, so a directory or
// bucket of artifacts can be listed and restored without any database.
package artifact

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
)

// FormatVersion is the manifest format this build writes and the newest it reads: 2 adds the
// chunk list (Chunks) and Ed25519 signatures; 1 is still read.
const FormatVersion = 2

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

	Size    int64  `json:"size"`     // bytes stored on the target
	RawSize int64  `json:"raw_size"` // bytes before compression
	SHA256  string `json:"sha256"`   // of the stored bytes, hex
	// Chunks lets a restore verify the stored bytes piece by piece as it reads them, so
	// that only verified bytes ever reach a strategy; nil in format 1.
	Chunks      *Chunks     `json:"chunks,omitempty"`
	Compression Compression `json:"compression"`
	// Encryption is reserved for encrypted artifacts; nil means the data is not encrypted.
	Encryption *Encryption `json:"encryption,omitempty"`

	Tool Tool `json:"tool"`
	// Source holds what the strategy recorded about the data: tool versions, database, paths.
	Source map[string]string `json:"source,omitempty"`
	// Contents is what the backup holds, counted as it was made; nil when the strategy
	// counts nothing (or an older version made it).
	Contents *Contents `json:"contents,omitempty"`

	// Signature authenticates the manifest (and through its SHA-256, the artifact): see
	// SigningKey. Nil for an unsigned manifest.
	Signature *Signature `json:"signature,omitempty"`

	// canonical is the signed form of the manifest as it was read (see canonicalize).
	canonical []byte
}

// MaxManifestSize bounds a manifest read from a target: a real one is a few KiB (up to about
// 1 MiB with MaxCounted tables), and a forged giant must not cost memory.
const MaxManifestSize = 2 << 20

// FutureSkew is how far ahead of the local clock a backup's creation time may be (clocks of
// hosts sharing a target differ a little) before it counts as dated in the future: such a
// backup is never "latest" and never counted by retention.
const FutureSkew = 5 * time.Minute

// InFuture reports whether the manifest claims a creation time after now (plus FutureSkew).
func (m *Manifest) InFuture(now time.Time) bool { return m.CreatedAt.After(now.Add(FutureSkew)) }

// Encryption describes how an artifact is encrypted: its scheme and who can decrypt it
// (public keys, SSH key fingerprints, or "scrypt" for a passphrase — never a secret).
type Encryption struct {
	Scheme     string   `json:"scheme"`
	Recipients []string `json:"recipients,omitempty"`
}

// EncryptionAge is the one encryption scheme: age (filippo.io/age), applied after compression.
const EncryptionAge = "age"

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
	case m.Encryption != nil && m.Encryption.Scheme != EncryptionAge:
		return fmt.Errorf("artifact is encrypted with %q, which this build cannot decrypt (it reads %s)", m.Encryption.Scheme, EncryptionAge)
	}
	if m.Chunks != nil {
		if err := m.Chunks.validate(m.Size); err != nil {
			return err
		}
	}
	if _, err := ParseCompression(string(m.Compression)); err != nil {
		return err
	}
	return m.validateNames()
}

// Bounds of what a manifest names: a listing keeps these fields of every backup, and prints
// them, so a forged manifest may neither pad them nor carry terminal control sequences.
const (
	maxName = 255
	maxKey  = 1024
)

// nameField is one field validateNames checks.
type nameField struct {
	name, value string
	max         int
}

// validateNames refuses names longer than real ones are, or holding control characters.
func (m *Manifest) validateNames() error {
	fields := []nameField{
		{"artifact", m.Artifact, maxKey}, {"strategy", m.Strategy, maxName}, {"project", m.Project, maxName},
		{"service", m.Service, maxName}, {"job", m.Job, maxName}, {"container", m.Container, maxName},
		{"image", m.Image, maxKey}, {"image_id", m.ImageID, maxName},
	}
	if m.Signature != nil {
		fields = append(fields, nameField{"signature key_id", m.Signature.KeyID, 64}, nameField{"signature scheme", m.Signature.Scheme, 32})
	}
	for _, f := range fields {
		if len(f.value) > f.max {
			return fmt.Errorf("manifest %s is %d bytes long (at most %d)", f.name, len(f.value), f.max)
		}
		if i := strings.IndexFunc(f.value, isControl); i >= 0 {
			return fmt.Errorf("manifest %s holds a control character (%q)", f.name, f.value[i:i+1])
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// Marshal encodes the manifest as indented JSON.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Unmarshal decodes and validates a manifest, keeping its signed form for VerifySignature.
func Unmarshal(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("manifest is more than the %d bytes a manifest can be (not one this tool wrote)", MaxManifestSize)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c, err := canonicalize(b)
	if err != nil {
		return nil, err
	}
	m.canonical = c
	return &m, nil
}

// KeyParts are what a new artifact's key is made of.
type KeyParts struct {
	Project, Service string
	Job              string // the sidecar job; empty for a backup made by hand
	Strategy, Ext    string
	Compression      Compression
	Encrypted        bool // the key gets ".age"
	At               time.Time
}

// Key builds the key of a new artifact:
//
//	PROJECT/SERVICE/SERVICE[-JOB]-STRATEGY-20060102T150405.000Z-RANDOM.EXT.COMPRESSION[.age]
//
// Keys sort by time within a service; the job name and eight random hex digits make two
// backups started in the same millisecond (two jobs, two hosts) never collide. Parts that
// could escape the directory are replaced.
func Key(k KeyParts) string {
	stamp := k.At.UTC().Format("20060102T150405.000Z")
	name := safePart(k.Service)
	if k.Job != "" {
		name += "-" + safePart(k.Job)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name = fmt.Sprintf("%s-%s-%s-%s.%s.%s", name, safePart(k.Strategy), stamp, hex.EncodeToString(b), k.Ext, k.Compression.Extension())
	if k.Encrypted {
		name += "." + EncryptionAge
	}
	return Dir(k.Project, k.Service) + "/" + name
}

// RepositoryDir is the key prefix of a target's repository of incremental snapshots
// (docs/repository-format.md): listings of full backups pass over it.
const RepositoryDir = "_repository"

// Dir is the directory of a service's artifacts: project/service ("standalone/NAME" for a
// container outside compose).
func Dir(project, service string) string {
	if project == "" {
		project = "standalone"
	}
	return safePart(project) + "/" + safePart(service)
}

// ProjectDir is the directory of a project's artifacts: every Dir of the project is below it.
func ProjectDir(project string) string { return strings.TrimSuffix(Dir(project, "_"), "_") }

// CheckKey reports whether key (as a target lists it, possibly below a prefix) is where a
// backup of the manifest's project and service belongs: a manifest that claims another
// service than its place on the target is refused.
func (m *Manifest) CheckKey(key string) error {
	want := Dir(m.Project, m.Service) + "/"
	if m.Project == "" && m.Service == "" {
		want = Dir("", m.Container) + "/"
	}
	dir := path.Dir(key) + "/"
	if dir != want && !strings.HasSuffix(dir, "/"+want) {
		return fmt.Errorf("the manifest of %s says it is a backup of %s, which lives under %s: %w", key, m.Describe(), want, ErrMislabelled)
	}
	return nil
}

// ErrMislabelled is wrapped when a manifest's project or service does not match its key.
var ErrMislabelled = errors.New("manifest does not match its place on the target")

// ErrCorrupt is wrapped when an artifact does not match its manifest.
var ErrCorrupt = errors.New("artifact does not match its manifest")

// Describe names the backed-up service for messages: "project/service".
func (m *Manifest) Describe() string { return ServiceName(m.Project, m.Service, m.Container) }

// ServiceName names a service for people, as manifests and messages do: "project/service",
// the service alone outside a project, else "container NAME".
func ServiceName(project, service, container string) string {
	switch {
	case project != "" && service != "":
		return project + "/" + service
	case service != "":
		return service
	}
	return "container " + container
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
