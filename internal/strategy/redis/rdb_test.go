package redis

import (
	"bytes"
	"encoding/binary"
	"maps"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy/strategytest"
)

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
	got := strategytest.Feed(t, (&Strategy{}).NewCount(), unknown.Bytes())
	if got != nil {
		t.Fatalf("an RDB with an unknown type was counted: %+v", got)
	}
}
