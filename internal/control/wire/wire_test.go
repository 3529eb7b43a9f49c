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
