package plan

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/moby/moby/api/types/container"
)

// Which backup NewRestore takes, and which it refuses: "latest" is the newest backup of this
// very service that a trusted key signed and that is not dated in the future; a backup named
// is taken as named, but must be trusted (or unsigned ones allowed), fit the service's kind
// and, for the sidecar, be the service's own.
func TestNewRestoreSelects(t *testing.T) {
	mine, theirs := keyOf(t, "mine"), keyOf(t, "theirs")
	const latest = -1
	type want struct {
		pick    int    // the index of the backup taken
		err     error  // the error it wraps, instead
		says    string // what the error or a warning says
		trusted bool
	}
	for _, tc := range []struct {
		name          string
		backups       []backup
		ask           int // the index of the backup named, or latest
		allowUnsigned bool
		sameService   bool
		strategies    []string
		want          want
	}{
		{name: "latest is the newest trusted",
			backups: []backup{{project: "shop", service: "db", age: 3 * time.Hour, by: mine}, {project: "shop", service: "db", age: time.Hour, by: mine}},
			ask:     latest, want: want{pick: 1, trusted: true}},
		{name: "a backup named is taken though newer ones exist",
			backups: []backup{{project: "shop", service: "db", age: 3 * time.Hour, by: mine}, {project: "shop", service: "db", age: time.Hour, by: mine}},
			ask:     0, want: want{pick: 0, trusted: true}},
		{name: "latest skips a newer unsigned one",
			backups: []backup{{project: "shop", service: "db", age: 3 * time.Hour, by: mine}, {project: "shop", service: "db", age: time.Hour}},
			ask:     latest, want: want{pick: 0, trusted: true, says: "latest skips"}},
		{name: "latest skips one signed with a key not trusted",
			backups: []backup{{project: "shop", service: "db", age: 3 * time.Hour, by: mine}, {project: "shop", service: "db", age: time.Hour, by: theirs}},
			ask:     latest, want: want{pick: 0, trusted: true, says: "latest skips"}},
		{name: "latest of unsigned backups only is refused",
			backups: []backup{{project: "shop", service: "db", age: time.Hour}},
			ask:     latest, want: want{err: ErrNotTrusted, says: "--allow-unsigned"}},
		{name: "latest of unsigned backups, unsigned allowed",
			backups: []backup{{project: "shop", service: "db", age: time.Hour}}, allowUnsigned: true,
			ask: latest, want: want{pick: 0, says: "is not signed with this tool's key"}},
		{name: "latest with unsigned allowed takes the newest, signed or not",
			backups: []backup{{project: "shop", service: "db", age: 3 * time.Hour, by: mine}, {project: "shop", service: "db", age: time.Hour, by: theirs}}, allowUnsigned: true,
			ask: latest, want: want{pick: 1, says: "not signed with this tool's key"}},
		{name: "an unsigned backup named is refused",
			backups: []backup{{project: "shop", service: "db", age: time.Hour}},
			ask:     0, want: want{err: ErrNotTrusted, says: "its manifest is not signed"}},
		{name: "an unsigned backup named, unsigned allowed",
			backups: []backup{{project: "shop", service: "db", age: time.Hour}}, allowUnsigned: true,
			ask: 0, want: want{pick: 0, says: "restored because unsigned backups are allowed"}},
		{name: "one signed with another key named is refused",
			backups: []backup{{project: "shop", service: "db", age: time.Hour, by: theirs}},
			ask:     0, want: want{err: ErrNotTrusted, says: "trust the public key of the host that made it"}},
		{name: "a tampered manifest is refused even with unsigned allowed",
			backups: []backup{{project: "shop", service: "db", age: time.Hour, by: mine, tamper: func(m *artifact.Manifest) { m.RawSize = 1 << 40 }}}, allowUnsigned: true,
			ask: 0, want: want{err: artifact.ErrBadSignature, says: "tampered with"}},
		{name: "latest never takes one dated in the future",
			backups: []backup{{project: "shop", service: "db", age: 3 * time.Hour, by: mine}, {project: "shop", service: "db", age: -48 * time.Hour, by: mine}},
			ask:     latest, want: want{pick: 0, trusted: true, says: "dated in the future"}},
		{name: "latest of backups dated in the future only is refused",
			backups: []backup{{project: "shop", service: "db", age: -48 * time.Hour, by: mine}},
			ask:     latest, want: want{says: `no backup of service "db"`}},
		{name: "one dated in the future named is taken, with a warning",
			backups: []backup{{project: "shop", service: "db", age: -48 * time.Hour, by: mine}},
			ask:     0, want: want{pick: 0, trusted: true, says: "in the future: check the clocks"}},
		{name: "latest never takes another project's, however new",
			backups: []backup{{project: "shop", service: "db", age: 3 * time.Hour, by: mine}, {project: "blog", service: "db", age: time.Minute, by: mine}},
			ask:     latest, want: want{pick: 0, trusted: true}},
		{name: "latest with only another project's backups says to name it",
			backups: []backup{{project: "blog", service: "db", age: time.Hour, by: mine}},
			ask:     latest, want: want{says: "latest is never another project's"}},
		{name: "another project's named is taken, with a warning",
			backups: []backup{{project: "blog", service: "db", age: time.Hour, by: mine}},
			ask:     0, want: want{pick: 0, trusted: true, says: "is a backup of blog/db, not of shop/db"}},
		{name: "another service's is refused for the sidecar",
			backups: []backup{{project: "shop", service: "web", age: time.Hour, by: mine}}, sameService: true,
			ask: 0, want: want{err: ErrRefused, says: "it is a backup of shop/web"}},
		{name: "another project's is refused for the sidecar",
			backups: []backup{{project: "blog", service: "db", age: time.Hour, by: mine}}, sameService: true,
			ask: 0, want: want{err: ErrRefused, says: "it is a backup of blog/db"}},
		{name: "a kind the service is not backed up with is refused",
			backups: []backup{{project: "shop", service: "db", age: time.Hour, by: mine}}, strategies: []string{"postgres"},
			ask: 0, want: want{err: ErrRefused, says: "is a volume backup, but shop/db (container shop-db-1) is backed up with postgres"}},
		{name: "a kind the service is backed up with is taken",
			backups: []backup{{project: "shop", service: "db", age: time.Hour, by: mine}}, strategies: []string{"postgres", "volume"},
			ask: 0, want: want{pick: 0, trusted: true}},
		{name: "a database backup into a container that is no such server is refused",
			backups: []backup{{project: "shop", service: "db", strategy: "postgres", age: time.Hour, by: mine}},
			ask:     0, want: want{err: ErrRefused, says: "does not look like a postgres server"}},
		{name: "an encrypted backup without an identity is refused",
			backups: []backup{{project: "shop", service: "db", age: time.Hour, by: mine, edit: func(m *artifact.Manifest) {
				m.Encryption = &artifact.Encryption{Scheme: artifact.EncryptionAge, Recipients: []string{"age1someone"}}
			}}},
			ask: 0, want: want{err: crypt.ErrNoIdentity, says: "is encrypted (age) for age1someone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newShelf(t)
			var keys []string
			for _, b := range tc.backups {
				keys = append(keys, s.put(b))
			}
			e := enginetest.New(enginetest.Service("shop", "db", enginetest.WithVolume("data", "/data")))
			spec := RestoreSpec{Target: s.tgt, Backup: Latest, Container: inspect(t, e, "shop-db-1"), Keys: artifact.NewKeyring(mine),
				AllowUnsigned: tc.allowUnsigned, SameService: tc.sameService, Strategies: tc.strategies}
			if tc.ask != latest {
				spec.Backup = keys[tc.ask]
			}
			r, err := NewRestore(context.Background(), spec)
			if tc.want.err != nil || (err != nil && tc.want.says != "") {
				if err == nil {
					t.Fatalf("took %s, want an error saying %q", r.Manifest.Artifact, tc.want.says)
				}
				if tc.want.err != nil && !errors.Is(err, tc.want.err) {
					t.Errorf("error %q does not wrap %v", err, tc.want.err)
				}
				if !strings.Contains(err.Error(), tc.want.says) {
					t.Errorf("error %q does not say %q", err, tc.want.says)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Manifest.Artifact; got != keys[tc.want.pick] {
				t.Errorf("took backup %d, want %d (%s)", slices.Index(keys, got), tc.want.pick, keys[tc.want.pick])
			}
			if r.Trusted != tc.want.trusted {
				t.Errorf("trusted = %v, want %v", r.Trusted, tc.want.trusted)
			}
			if w := strings.Join(r.Warnings, "\n"); !strings.Contains(w, tc.want.says) || (tc.want.says == "" && w != "") {
				t.Errorf("warnings %q, want one saying %q", w, tc.want.says)
			}
			if len(touched(e)) != 0 {
				t.Errorf("planning touched the service: %v", touched(e))
			}
		})
	}
}

// touched are the calls that change a container.
func touched(e *enginetest.Engine) []enginetest.Call {
	return e.Calls("ContainerStop", "ContainerStart", "CopyToContainer", "ContainerRemove")
}

// A container outside compose restores the backups of its own name only: never, as latest,
// those of a compose service of that name.
func TestNewRestoreLatestOfAContainerOutsideCompose(t *testing.T) {
	mine := keyOf(t, "mine")
	s := newShelf(t)
	s.put(backup{project: "shop", service: "mydb", age: time.Minute, by: mine})
	own := s.put(backup{container: "mydb", age: time.Hour, by: mine})
	e := enginetest.New(enginetest.Container("mydb", enginetest.WithVolume("data", "/data")))
	r, err := NewRestore(context.Background(), RestoreSpec{Target: s.tgt, Backup: Latest, Container: inspect(t, e, "mydb"), Keys: artifact.NewKeyring(mine)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Manifest.Artifact != own {
		t.Errorf("took %s, want %s", r.Manifest.Artifact, own)
	}
}

// Within bounds where latest looks: a backup of the service elsewhere on the target (another
// host's prefix) is not taken.
func TestNewRestoreLatestLooksWithin(t *testing.T) {
	mine := keyOf(t, "mine")
	s := newShelf(t)
	want := s.put(backup{project: "shop", service: "db", age: 2 * time.Hour, by: mine})
	e := enginetest.New(enginetest.Service("shop", "db", enginetest.WithVolume("data", "/data")))
	r, err := NewRestore(context.Background(), RestoreSpec{Target: s.tgt, Backup: Latest, Within: "shop/db/", Container: inspect(t, e, "shop-db-1"), Keys: artifact.NewKeyring(mine)})
	if err != nil || r.Manifest.Artifact != want {
		t.Fatalf("took %v, %v", r, err)
	}
	_, err = NewRestore(context.Background(), RestoreSpec{Target: s.tgt, Backup: Latest, Within: "host2/", Container: inspect(t, e, "shop-db-1"), Keys: artifact.NewKeyring(mine)})
	if err == nil || !strings.Contains(err.Error(), `no backup of service "db"`) {
		t.Errorf("latest within another prefix: %v", err)
	}
}

// Where a restore may write: the container's writable volumes and bind mounts, narrowed by
// Allowed (the sidecar's job paths) — never widened: a path of Allowed outside them, above
// them, or in a read-only mount gives nothing.
func TestNewRestoreConfines(t *testing.T) {
	mine := keyOf(t, "mine")
	s := newShelf(t)
	key := s.put(backup{project: "shop", service: "db", age: time.Hour, by: mine})
	e := enginetest.New(enginetest.Service("shop", "db", enginetest.WithVolume("data", "/data"), enginetest.WithBind("/srv/uploads", "/srv/uploads"),
		enginetest.WithMount(container.MountPoint{Type: "bind", Source: "/etc/app", Destination: "/etc/app", RW: false})))
	probes := []string{"/data/x", "/data/sub/x", "/srv/uploads/y", "/etc/app/z", "/etc/passwd", "/srv/other", "/x"}
	for _, tc := range []struct {
		name     string
		allowed  []string
		want     []string // the allowed directories
		writable []string // of probes
	}{
		{"the writable mounts", nil, []string{"/data", "/srv/uploads"}, []string{"/data/x", "/data/sub/x", "/srv/uploads/y"}},
		{"one mount", []string{"/data"}, []string{"/data"}, []string{"/data/x", "/data/sub/x"}},
		{"below a mount", []string{"/data/sub"}, []string{"/data/sub"}, []string{"/data/sub/x"}},
		{"a read-only mount", []string{"/etc/app"}, nil, nil},
		{"outside every mount", []string{"/etc"}, nil, nil},
		{"above a mount", []string{"/srv"}, nil, nil},
		{"the root", []string{"/"}, nil, nil},
		// Kept as given (mountpath.Holder compares prefixes), yet it confines to nothing:
		// every path a strategy checks is clean.
		{"out of a mount by dot-dot", []string{"/data/../etc"}, []string{"/data/../etc"}, nil},
		{"some inside, some not", []string{"/etc", "/srv/uploads"}, []string{"/srv/uploads"}, []string{"/srv/uploads/y"}},
		{"none", []string{}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := inspect(t, e, "shop-db-1")
			r, err := NewRestore(context.Background(), RestoreSpec{Target: s.tgt, Backup: key, Container: c, Keys: artifact.NewKeyring(mine), Allowed: tc.allowed})
			if err != nil {
				t.Fatal(err)
			}
			var writable []string
			for _, p := range probes {
				if strategy.CheckConfined(context.Background(), c, p, r.allowed, "a file") == nil {
					writable = append(writable, p)
				}
			}
			if !slices.Equal(writable, tc.writable) {
				t.Errorf("writable %v, want %v (allowed %v)", writable, tc.writable, r.allowed)
			}
			if !slices.Equal(r.allowed, tc.want) && !(len(r.allowed) == 0 && len(tc.want) == 0) {
				t.Errorf("allowed %v, want %v", r.allowed, tc.want)
			}
		})
	}
}
