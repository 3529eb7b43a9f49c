package postgres

import (
	"maps"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy/strategytest"
)

func TestPostgresCount(t *testing.T) {
	dump := "SET x = 1;\nCOPY public.items (id, name) FROM stdin;\n1\ta\n2\tb\\nc\n\\.\n" +
		"COPY public.\"Empty\" (id) FROM stdin;\n\\.\n"
	got := strategytest.Feed(t, (&Strategy{}).NewCount(), []byte(dump))
	want := map[string]int64{"public.items": 2, `public."Empty"`: 0}
	if !maps.Equal(got.Tables, want) {
		t.Fatalf("counted %v, want %v", got.Tables, want)
	}
	c := (&Strategy{}).NewCount()
	_, _ = c.Write([]byte("COPY public.items (id) FROM stdin;\n1\n"))
	if _, err := c.Contents(); err == nil {
		t.Fatal("a dump cut inside COPY data was counted without an error")
	}
}
