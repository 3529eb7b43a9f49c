package meta

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCompareIsWalkOrder(t *testing.T) {
	// The order a depth-first walk with sorted names meets these paths.
	walk := []string{"a", "a/b", "a/b/c", "a/b.d", "a-b", "a.c", "ab", "b", "b/x/z", "b/x y"}
	shuffled := slices.Clone(walk)
	slices.Reverse(shuffled)
	slices.SortFunc(shuffled, Compare)
	if !slices.Equal(shuffled, walk) {
		t.Fatalf("sorted by Compare: %q, want %q", shuffled, walk)
	}
}

func TestRoundTripMillion(t *testing.T) {
	const n = 1_000_000
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	rec := func(i int) Record {
		return Record{Path: fmt.Sprintf("data/d%04d/f%06d.txt", i/1000, i), Size: int64(i * 7), MTime: time.Unix(1_700_000_000+int64(i), int64(i)),
			CTime: time.Unix(1_700_000_100+int64(i), 5), Inode: uint64(1000 + i), Dev: 2049}
	}
	for i := range n {
		if err := e.Add(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if per := buf.Len() / n; per > 40 {
		t.Fatalf("%d bytes a record, want at most 40", per)
	}
	d := NewDecoder(&buf)
	for i := range n {
		r, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		want := rec(i)
		if r.Path != want.Path || r.Size != want.Size || !r.MTime.Equal(want.MTime) || !r.CTime.Equal(want.CTime) || r.Inode != want.Inode || r.Dev != want.Dev {
			t.Fatalf("record %d: %+v, want %+v", i, r, want)
		}
	}
	if _, err := d.Next(); err != io.EOF {
		t.Fatalf("after the last record: %v, want io.EOF", err)
	}
}

func TestCursor(t *testing.T) {
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	for _, p := range []string{"d/a", "d/c", "d/e/f", "d/g"} {
		if err := e.Add(Record{Path: p, Size: int64(len(p))}); err != nil {
			t.Fatal(err)
		}
	}
	e.Close()
	buf.WriteString("trailing") // what follows the stream is not read by Drain
	c := NewCursor(NewDecoder(&buf))
	for _, q := range []struct {
		p     string
		found bool
	}{{"d/0", false}, {"d/a", true}, {"d/b", false}, {"d/c", true}, {"d/e", false}, {"d/e/f", true}, {"d/z", false}} {
		r, err := c.Find(q.p)
		if err != nil {
			t.Fatal(err)
		}
		if (r != nil) != q.found || (r != nil && r.Path != q.p) {
			t.Fatalf("Find(%q) = %+v, want found=%v", q.p, r, q.found)
		}
	}
	if err := c.Drain(); err != nil {
		t.Fatal(err)
	}
}

func TestEncoderRefusesDisorder(t *testing.T) {
	e := NewEncoder(io.Discard)
	if err := e.Add(Record{Path: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Add(Record{Path: "a"}); err == nil || !strings.Contains(err.Error(), "walk order") {
		t.Fatalf("a record out of order: %v", err)
	}
}

func TestDecoderRefusesBadStreams(t *testing.T) {
	for name, in := range map[string]string{
		"no magic":    "hello\n",
		"bad kind":    Magic + "x",
		"cut":         Magic + "f\x00\x05ab",
		"shared>prev": Magic + "f\x05\x01a",
		"empty rest":  Magic + "f\x00\x00",
		"huge":        Magic + "f\x00\xff\xff\x7f",
		"disorder":    Magic + "f\x00\x01b\x00\x00\x00\x00\x00f\x00\x01a\x00\x00\x00\x00\x00e",
	} {
		d := NewDecoder(strings.NewReader(in))
		var err error
		for err == nil {
			_, err = d.Next()
		}
		if err == io.EOF {
			t.Errorf("%s: the stream was accepted", name)
		}
	}
}
