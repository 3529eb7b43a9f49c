package strategy

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"maps"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// feed writes s to c in small pieces, as a stream arrives.
func feed(t *testing.T, c Count, b []byte) *artifact.Contents {
	t.Helper()
	for len(b) > 0 {
		n := min(len(b), 7)
		if _, err := c.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	got, err := c.Contents()
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMySQLCount(t *testing.T) {
	dump := "-- MariaDB dump\n" +
		"USE `shop`;\n" +
		"CREATE TABLE `items` (\n  `id` int NOT NULL\n);\n" +
		"CREATE TABLE `empty` (\n  `id` int\n);\n" +
		"INSERT INTO `items` VALUES (1,'a (b); c'),(2,'it\\'s'),(3,'x''y'),\n(4,0x28293B);\n" +
		"INSERT INTO `items` VALUES (5,NULL);\n" +
		"INSERT INTO `items` VALUES\n(6,'x'),\n(7,'y\\n');\n" +
		"USE `we``ird`;\n" +
		"CREATE TABLE `t` (`a` int);\n" +
		"INSERT INTO `t` VALUES (1),(2);\n" +
		"/*!50001 CREATE TABLE `v` (\n  `a` int\n) */;\n"
	got := feed(t, (&MySQL{}).NewCount(), []byte(dump))
	want := map[string]int64{"shop.items": 7, "shop.empty": 0, "we`ird.t": 2}
	if !maps.Equal(got.Tables, want) {
		t.Fatalf("counted %v, want %v", got.Tables, want)
	}
}

func TestPostgresCount(t *testing.T) {
	dump := "SET x = 1;\nCOPY public.items (id, name) FROM stdin;\n1\ta\n2\tb\\nc\n\\.\n" +
		"COPY public.\"Empty\" (id) FROM stdin;\n\\.\n"
	got := feed(t, (&Postgres{}).NewCount(), []byte(dump))
	want := map[string]int64{"public.items": 2, `public."Empty"`: 0}
	if !maps.Equal(got.Tables, want) {
		t.Fatalf("counted %v, want %v", got.Tables, want)
	}
	c := (&Postgres{}).NewCount()
	_, _ = c.Write([]byte("COPY public.items (id) FROM stdin;\n1\n"))
	if _, err := c.Contents(); err == nil {
		t.Fatal("a dump cut inside COPY data was counted without an error")
	}
}

// rdb builds an RDB file from its parts.
type rdb struct{ bytes.Buffer }

func (r *rdb) length(n int) {
	switch {
	case n < 64:
		r.WriteByte(byte(n))
	case n < 1<<14:
		r.WriteByte(0x40 | byte(n>>8))
		r.WriteByte(byte(n))
	default:
		r.WriteByte(0x80)
		_ = binary.Write(r, binary.BigEndian, uint32(n))
	}
}
func (r *rdb) str(s string) { r.length(len(s)); r.WriteString(s) }

func TestRDBKeys(t *testing.T) {
	var r rdb
	r.WriteString("REDIS0011")
	r.WriteByte(0xFA)
	r.str("redis-ver")
	r.str("7.2.4")
	r.WriteByte(0xFA) // an integer-encoded aux value
	r.str("ctime")
	r.Write([]byte{0xC2, 1, 2, 3, 4})
	r.WriteByte(0xFE)
	r.length(0)
	r.WriteByte(0xFB)
	r.length(5)
	r.length(1)
	r.WriteByte(0) // string
	r.str("k1")
	r.str(strings.Repeat("v", 100))
	r.WriteByte(0xFC) // expiring string
	r.Write(make([]byte, 8))
	r.WriteByte(0)
	r.str("k2")
	r.Write([]byte{0xC0, 7}) // int8-encoded value
	r.WriteByte(2)           // set of 2
	r.str("s")
	r.length(2)
	r.str("a")
	r.str("b")
	r.WriteByte(5) // zset2
	r.str("z")
	r.length(1)
	r.str("m")
	r.Write(make([]byte, 8))
	r.WriteByte(18) // quicklist 2
	r.str("l")
	r.length(1)
	r.length(2)
	r.str("listpack-bytes")
	r.WriteByte(16) // hash listpack
	r.str("h")
	r.Write([]byte{0xC3}) // LZF: compressed 3, uncompressed 10
	r.length(3)
	r.length(10)
	r.Write([]byte{1, 2, 3})
	r.WriteByte(0xFE)
	r.length(3)
	r.WriteByte(0)
	r.str("other")
	r.str("x")
	r.WriteByte(0xFF)
	r.Write(make([]byte, 8))

	keys, expiring, err := rdbKeys(bytes.NewReader(r.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"db0": 6, "db3": 1}; !maps.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	if want := map[string]int64{"db0": 1}; !maps.Equal(expiring, want) {
		t.Fatalf("expiring %v, want %v", expiring, want)
	}
	if _, _, err := rdbKeys(bytes.NewReader(r.Bytes()[:r.Len()-20])); err == nil {
		t.Fatal("a cut RDB was counted")
	}
	var unknown rdb
	unknown.WriteString("REDIS0012")
	unknown.WriteByte(99)
	unknown.str("k")
	got := feed(t, (&Redis{}).NewCount(), unknown.Bytes())
	if got != nil {
		t.Fatalf("an RDB with an unknown type was counted: %+v", got)
	}
}

// bsonDocument encodes a document of string and boolean fields, in order.
func bsonDocument(fields ...any) []byte {
	var b bytes.Buffer
	for i := 0; i < len(fields); i += 2 {
		name := fields[i].(string)
		switch v := fields[i+1].(type) {
		case string:
			b.WriteByte(0x02)
			b.WriteString(name + "\x00")
			_ = binary.Write(&b, binary.LittleEndian, int32(len(v)+1))
			b.WriteString(v + "\x00")
		case bool:
			b.WriteByte(0x08)
			b.WriteString(name + "\x00")
			if v {
				b.WriteByte(1)
			} else {
				b.WriteByte(0)
			}
		}
	}
	b.WriteByte(0)
	out := binary.LittleEndian.AppendUint32(nil, uint32(b.Len()+4))
	return append(out, b.Bytes()...)
}

func TestMongoArchiveCount(t *testing.T) {
	term := []byte{0xFF, 0xFF, 0xFF, 0xFF}
	var a bytes.Buffer
	a.Write(mongoMagic)
	a.Write(bsonDocument("version", "0.1"))
	for _, ns := range [][2]string{{"shop", "items"}, {"shop", "empty"}, {"admin", "system.users"}} {
		a.Write(bsonDocument("db", ns[0], "collection", ns[1], "metadata", "{}"))
	}
	a.Write(term)
	segment := func(db, coll string, docs int, eof bool) {
		a.Write(bsonDocument("db", db, "collection", coll, "EOF", eof))
		for range docs {
			a.Write(bsonDocument("x", "y"))
		}
		a.Write(term)
	}
	segment("shop", "items", 2, false)
	segment("admin", "system.users", 1, false)
	segment("shop", "items", 3, false)
	segment("shop", "items", 0, true)
	segment("shop", "empty", 0, true)
	got := feed(t, (&Mongo{}).NewCount(), a.Bytes())
	if want := map[string]int64{"shop.items": 5, "shop.empty": 0}; !maps.Equal(got.Collections, want) {
		t.Fatalf("counted %v, want %v", got.Collections, want)
	}
}

type entry struct {
	hdr     tar.Header
	content string
}

func tree(t *testing.T, entries ...entry) *artifact.Contents {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := e.hdr
		h.Size = int64(len(e.content))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(e.content))
	}
	_ = tw.Close()
	return feed(t, (&Volume{}).NewCount(), b.Bytes())
}

func TestTreeDigest(t *testing.T) {
	dir := entry{hdr: tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755}}
	a := entry{hdr: tar.Header{Name: "data/a", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1}, content: "hello"}
	bLink := entry{hdr: tar.Header{Name: "data/b", Typeflag: tar.TypeLink, Linkname: "data/a", Mode: 0o644, Uid: 1}}
	b := entry{hdr: tar.Header{Name: "data/b", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1}, content: "hello"}
	aLink := entry{hdr: tar.Header{Name: "data/a", Typeflag: tar.TypeLink, Linkname: "data/b", Mode: 0o644, Uid: 1}}
	sym := entry{hdr: tar.Header{Name: "data/s", Typeflag: tar.TypeSymlink, Linkname: "a", Mode: 0o777}}

	base := tree(t, dir, a, bLink, sym)
	if base.Files != 4 || base.Bytes != 5 {
		t.Fatalf("counted %d entries of %d bytes, want 4 and 5", base.Files, base.Bytes)
	}
	// Another order, and the hard link's content under its other name: the same tree.
	if other := tree(t, sym, b, aLink, dir); other.Tree != base.Tree {
		t.Fatalf("the same tree in another order digests differently: %s, %s", other.Tree, base.Tree)
	}
	changed := a
	changed.content = "hellO"
	mode := a
	mode.hdr.Mode = 0o600
	owner := a
	owner.hdr.Uid = 2
	target := sym
	target.hdr.Linkname = "b"
	for name, e := range map[string][]entry{"content": {dir, changed, bLink, sym}, "mode": {dir, mode, bLink, sym},
		"owner": {dir, owner, bLink, sym}, "link target": {dir, a, bLink, target}, "missing entry": {dir, a, bLink}} {
		if got := tree(t, e...); got.Tree == base.Tree {
			t.Errorf("a changed %s digests the same", name)
		}
	}
}
