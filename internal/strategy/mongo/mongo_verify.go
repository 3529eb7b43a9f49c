package mongo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// NewCount counts the documents of each collection in mongodump's archive as it streams (the
// archive format of mongo-tools: a prelude of collection metadata, then segments of BSON
// documents per namespace). The admin, config and local databases and system collections are
// left out: a fresh server has its own.
func (m *Strategy) NewCount() strategy.Count { return strategy.NewStreamCount(mongoArchiveCounts) }

var mongoMagic = []byte{0x6d, 0xe2, 0x99, 0x81}

func mongoCounted(db, coll string) bool {
	return db != "admin" && db != "config" && db != "local" && !strings.HasPrefix(coll, "system.")
}

func mongoArchiveCounts(r io.Reader) (*artifact.Contents, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic := make([]byte, 4)
	if _, err := io.ReadFull(br, magic); err != nil || !bytes.Equal(magic, mongoMagic) {
		return nil, fmt.Errorf("not a mongodump archive (no magic number)")
	}
	out := &artifact.Contents{Collections: map[string]int64{}}
	add := func(db, coll string, n int64) {
		if !mongoCounted(db, coll) {
			return
		}
		var ok bool
		if out.Collections, ok = artifact.Count(out.Collections, db+"."+coll, n); !ok {
			out.Truncated = true
		}
	}
	// The prelude: the header, then one metadata document per collection, then a terminator.
	if _, _, err := bsonDoc(br, false); err != nil {
		return nil, fmt.Errorf("reading the archive header: %w", err)
	}
	for {
		doc, term, err := bsonDoc(br, true)
		if err != nil {
			return nil, fmt.Errorf("reading the archive's collection list: %w", err)
		}
		if term {
			break
		}
		f := bsonFields(doc)
		add(f["db"], f["collection"], 0)
	}
	// Namespace segments: a header, documents up to a terminator; an EOF header ends one.
	for {
		doc, term, err := bsonDoc(br, true)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil || term {
			return nil, fmt.Errorf("reading a namespace header: %v", err)
		}
		f := bsonFields(doc)
		var n int64
		for {
			_, term, err := bsonDoc(br, true)
			if err != nil {
				return nil, fmt.Errorf("reading the documents of %s.%s: %w", f["db"], f["collection"], err)
			}
			if term {
				break
			}
			n++
		}
		if f["EOF"] != "true" {
			add(f["db"], f["collection"], n)
		}
	}
}

// bsonDoc reads one BSON document, or the terminator (0xFFFFFFFF) where allowed. io.EOF
// means the stream ended cleanly before it.
func bsonDoc(r *bufio.Reader, terminator bool) (doc []byte, term bool, err error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, false, err
	}
	n := binary.LittleEndian.Uint32(size[:])
	if n == 0xFFFFFFFF && terminator {
		return nil, true, nil
	}
	if n < 5 || n > 48<<20 {
		return nil, false, fmt.Errorf("a BSON document of %d bytes", n)
	}
	doc = make([]byte, n)
	copy(doc, size[:])
	if _, err := io.ReadFull(r, doc[4:]); err != nil {
		return nil, false, io.ErrUnexpectedEOF
	}
	return doc, false, nil
}

// bsonFields reads a document's top-level string and boolean fields (those the archive's
// headers hold), stopping at any other type.
func bsonFields(doc []byte) map[string]string {
	f := map[string]string{}
	b := doc[4:]
	for len(b) > 1 {
		typ := b[0]
		end := bytes.IndexByte(b[1:], 0)
		if end < 0 {
			return f
		}
		name := string(b[1 : 1+end])
		b = b[2+end:]
		switch typ {
		case 0x02: // string
			if len(b) < 4 {
				return f
			}
			n := int(binary.LittleEndian.Uint32(b))
			if n < 1 || len(b) < 4+n {
				return f
			}
			f[name] = string(b[4 : 4+n-1])
			b = b[4+n:]
		case 0x08: // boolean
			if len(b) < 1 {
				return f
			}
			f[name] = fmt.Sprint(b[0] == 1)
			b = b[1:]
		case 0x10: // int32
			if len(b) < 4 {
				return f
			}
			b = b[4:]
		case 0x12: // int64
			if len(b) < 8 {
				return f
			}
			b = b[8:]
		default:
			return f
		}
	}
	return f
}

// NeedsServer: mongorestore restores into a running server.
func (m *Strategy) NeedsServer() bool { return true }

// mongoCountScript prints "db.collection<TAB>documents" for every counted collection.
const mongoCountScript = `db.adminCommand({listDatabases: 1}).databases.forEach(function (d) {
  if (['admin', 'config', 'local'].includes(d.name)) return;
  const s = db.getSiblingDB(d.name);
  s.getCollectionInfos({type: 'collection'}).forEach(function (c) {
    if (c.name.startsWith('system.')) return;
    print(d.name + '.' + c.name + '\t' + s.getCollection(c.name).countDocuments({}));
  });
});
`

// shell runs a mongosh script in the container, authenticated as the strategy authenticates
// its tools: the credentials are in the script file, never on a command line.
func (m *Strategy) shell(ctx context.Context, c *containers.Container, script string) (string, error) {
	user, password, err := m.credentials(ctx, c)
	if err != nil {
		return "", err
	}
	if user != "" {
		auth, _ := json.Marshal([]string{user, password})
		script = "(function (a) { db.getSiblingDB('admin').auth(a[0], a[1]); })(" + string(auth) + ");\n" + script
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := mongoConfigPrefix + hex.EncodeToString(b) + ".js"
	uid, gid, err := c.ExecUser(ctx)
	if err != nil {
		return "", err
	}
	if err := c.WriteFiles(ctx, mongoConfigDir, containers.File{Name: name, Content: strings.NewReader(script), Size: int64(len(script)), Mode: 0o600, UID: uid, GID: gid}); err != nil {
		return "", fmt.Errorf("writing the shell script: %w", err)
	}
	file := mongoConfigDir + "/" + name
	defer func() { _ = c.RemoveTemp(ctx, file) }()
	var out strings.Builder
	err = c.Exec(ctx, containers.ExecSpec{Cmd: []string{"mongosh", "--quiet", "--norc", file}, Stdout: &out})
	return out.String(), err
}

// Ready waits until the server the image's entrypoint starts last answers: the official
// image's first-start initialisation runs a temporary mongod first, so the container's main
// process must be mongod itself.
func (m *Strategy) Ready(ctx context.Context, c *containers.Container, _ strategy.Source) error {
	return strategy.WaitFor(ctx, c, 3*time.Minute, "the MongoDB server", func(ctx context.Context) error {
		comm, err := c.Output(ctx, "cat", "/proc/1/comm")
		if err != nil {
			return err
		}
		if strings.TrimSpace(comm) != "mongod" {
			return fmt.Errorf("the image's entrypoint (%s) is still initialising", strings.TrimSpace(comm))
		}
		_, err = m.shell(ctx, c, "db.adminCommand({ping: 1});")
		return err
	})
}

// Found counts the documents of the restored collections.
func (m *Strategy) Found(ctx context.Context, c *containers.Container, _ strategy.Source, _ *artifact.Contents) (*artifact.Contents, error) {
	out, err := m.shell(ctx, c, mongoCountScript)
	if err != nil {
		return nil, err
	}
	found := &artifact.Contents{Collections: map[string]int64{}}
	return found, strategy.ParseCounts(out, found.Collections)
}
