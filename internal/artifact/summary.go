package artifact

import "time"

// Summary is what a listing keeps of a backup: enough to select, sort, print and prune it —
// a few hundred bytes, whatever the size of the manifest it was read from.
type Summary struct {
	Key       string    `json:"artifact"` // the artifact's key on the target (named as in the manifest)
	Project   string    `json:"project,omitempty"`
	Service   string    `json:"service,omitempty"`
	Job       string    `json:"job,omitempty"`
	Container string    `json:"container,omitempty"`
	Strategy  string    `json:"strategy"`
	CreatedAt time.Time `json:"created_at"`
	// DurationMS is how long the backup took.
	DurationMS int64  `json:"duration_ms"`
	Size       int64  `json:"size"`
	RawSize    int64  `json:"raw_size"`
	SHA256     string `json:"sha256"`
	Encrypted  bool   `json:"encrypted,omitempty"`
	// KeyID names the key that signed the manifest ("" when unsigned).
	KeyID string `json:"key_id,omitempty"`
	// Untrusted says why no trusted key vouches for the backup: unsigned, another key, a
	// bad signature. Empty when a trusted key signed it.
	Untrusted string `json:"untrusted,omitempty"`
	// Snapshot marks an incremental backup: a snapshot in the target's repository (Size is
	// what it added there).
	Snapshot bool `json:"snapshot,omitempty"`
}

// Summarize keeps what a listing needs of m, and whether keys trust it.
func Summarize(m *Manifest, keys *Keyring) Summary {
	s := Summary{
		Key: m.Artifact, Project: m.Project, Service: m.Service, Job: m.Job, Container: m.Container,
		Strategy: m.Strategy, CreatedAt: m.CreatedAt, DurationMS: m.DurationMS, Size: m.Size, RawSize: m.RawSize, SHA256: m.SHA256,
		Encrypted: m.Encryption != nil,
	}
	if m.Signature != nil {
		s.KeyID = m.Signature.KeyID
	}
	if err := keys.Verify(m); err != nil {
		s.Untrusted = err.Error()
	}
	return s
}

// Trusted reports whether a trusted key signed the backup.
func (s Summary) Trusted() bool { return s.Untrusted == "" }

// InFuture reports whether the backup claims a creation time after now (plus FutureSkew).
func (s Summary) InFuture(now time.Time) bool { return s.CreatedAt.After(now.Add(FutureSkew)) }

// Describe names the backed-up service for messages: "project/service".
func (s Summary) Describe() string {
	return ServiceName(s.Project, s.Service, s.Container)
}
