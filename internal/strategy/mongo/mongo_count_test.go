package mongo

import (
	"bytes"
	"encoding/binary"
	"maps"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy/strategytest"
)

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
	got := strategytest.Feed(t, (&Strategy{}).NewCount(), a.Bytes())
	if want := map[string]int64{"shop.items": 5, "shop.empty": 0}; !maps.Equal(got.Collections, want) {
		t.Fatalf("counted %v, want %v", got.Collections, want)
	}
}
