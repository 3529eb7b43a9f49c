package strategies

import (
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy"
)

func TestNew(t *testing.T) {
	if _, err := New("oracle", strategy.Options{}); err == nil || !strings.Contains(err.Error(), "mongo, mysql, postgres, redis, sqlite, volume") {
		t.Errorf("New(oracle) = %v", err)
	}
	s, err := New("postgres", strategy.Options{User: "u"})
	if err != nil || s.Name() != "postgres" || s.Extension() != "sql" {
		t.Errorf("New(postgres) = %v, %v", s, err)
	}
	if _, err := New("volume", strategy.Options{Paths: []string{"rel"}}); err == nil {
		t.Error("relative volume path accepted")
	}
}
