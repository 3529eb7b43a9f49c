package wire

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/verify"
)

// The wire types carry every field, under the same JSON names as the engine's types: a
// plugin and a sidecar of different versions still understand each other.
func TestRoundTrips(t *testing.T) {
	s := artifact.Summary{Key: "p/s/k", Project: "p", Service: "s", Job: "j", Container: "c", Strategy: "volume",
		CreatedAt: time.Unix(1e9, 0).UTC(), DurationMS: 5, Size: 10, RawSize: 20, SHA256: "ab", Encrypted: true, KeyID: "id", Untrusted: "why"}
	if got := ToSummary(FromSummary(s)); !reflect.DeepEqual(got, s) {
		t.Errorf("summary round trip: %+v", got)
	}
	sameJSON(t, s, FromSummary(s))
	r := &verify.Report{Backup: "k", Service: "p/s", Strategy: "volume", Image: "img", ImageID: "sha256:1", Started: time.Unix(2e9, 0).UTC(),
		Duration: 1.5, Passed: false, Checks: []verify.Check{{Name: "files", Expected: "1", Found: "2", Note: "n"}}, Notes: []string{"a"}, Warnings: []string{"w"}}
	if got := ToReport(FromReport(r)); !reflect.DeepEqual(got, r) {
		t.Errorf("report round trip: %+v", got)
	}
	sameJSON(t, r, FromReport(r))
	m := &artifact.Manifest{Artifact: "p/s/k", Project: "p", Service: "s", Strategy: "volume", Size: 3, RawSize: 4, SHA256: "cd",
		Signature: &artifact.Signature{KeyID: "id"}}
	var fromManifest map[string]any
	b, _ := json.Marshal(m)
	_ = json.Unmarshal(b, &fromManifest)
	w := FromManifest(m)
	if w.Key != m.Artifact || w.SHA256 != m.SHA256 || w.Size != 3 || w.RawSize != 4 || w.KeyID != "id" || fromManifest["artifact"] != w.Key {
		t.Errorf("FromManifest = %+v", w)
	}
}

func sameJSON(t *testing.T, a, b any) {
	t.Helper()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("JSON differs:\n%s\n%s", ja, jb)
	}
}

// Nothing converts to nothing, at both edges.
func TestNil(t *testing.T) {
	if FromManifest(nil) != nil || FromReport(nil) != nil || ToReport(nil) != nil {
		t.Error("nil converts to something")
	}
}

// A backup made or restored is sent with its manifest's fields under the manifest's own JSON
// names; whether it is encrypted and which key signed it, as a listing says them.
func TestFromManifest(t *testing.T) {
	m := &artifact.Manifest{FormatVersion: 2, Artifact: "shop/db/k.sql.zst", Strategy: "postgres", Project: "shop", Service: "db", Job: "nightly",
		Container: "shop-db-1", Image: "postgres:16", CreatedAt: time.Unix(1e9, 0).UTC(), DurationMS: 7, Size: 3, RawSize: 4, SHA256: "cd",
		Compression: artifact.Zstd}
	for _, tc := range []struct {
		name      string
		edit      func(*artifact.Manifest)
		encrypted bool
		keyID     string
	}{
		{"unsigned, plain", func(*artifact.Manifest) {}, false, ""},
		{"signed", func(m *artifact.Manifest) {
			m.Signature = &artifact.Signature{Scheme: artifact.SchemeEd25519, KeyID: "k1", Value: "sig"}
		}, false, "k1"},
		{"encrypted", func(m *artifact.Manifest) {
			m.Encryption = &artifact.Encryption{Scheme: artifact.EncryptionAge, Recipients: []string{"age1x"}}
		}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := *m
			tc.edit(&m)
			w := FromManifest(&m)
			if w.Encrypted != tc.encrypted || w.KeyID != tc.keyID {
				t.Errorf("encrypted %v, key %q", w.Encrypted, w.KeyID)
			}
			var fromManifest, fromWire map[string]any
			b, _ := json.Marshal(&m)
			_ = json.Unmarshal(b, &fromManifest)
			b, _ = json.Marshal(w)
			_ = json.Unmarshal(b, &fromWire)
			for k, v := range fromWire {
				if k == "encrypted" || k == "key_id" {
					continue
				}
				if !reflect.DeepEqual(fromManifest[k], v) {
					t.Errorf("%s: the wire says %v, the manifest %v", k, v, fromManifest[k])
				}
			}
			// As the plugin reads it, it is the listing's summary of the manifest (but for
			// why it is not trusted: the sidecar says that of listed backups only).
			s := artifact.Summarize(&m, nil)
			s.Untrusted = ""
			if got := ToSummary(*w); got != s {
				t.Errorf("ToSummary(FromManifest) = %+v, want %+v", got, s)
			}
		})
	}
}
