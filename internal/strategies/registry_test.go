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
	if _, err := New("volume", strategy.Options{Exclude: []string{"*.log", "cache/"}}); err != nil {
		t.Errorf("volume with exclusions: %v", err)
	}
	if _, err := New("volume", strategy.Options{Exclude: []string{"[a-"}}); err == nil || !strings.Contains(err.Error(), `"[a-"`) || !strings.Contains(err.Error(), "a trailing / matches directories only") {
		t.Errorf("a bad pattern: %v, want it named with what is allowed", err)
	}
	for _, name := range []string{"postgres", "mariadb", "redis", "sqlite", "mongo"} {
		_, err := New(name, strategy.Options{Exclude: []string{"*.log"}})
		if err == nil || !strings.Contains(err.Error(), "apply to the volume strategy only") || !strings.Contains(err.Error(), "*.log") {
			t.Errorf("%s with exclusions: %v, want them refused", name, err)
		}
	}
}
