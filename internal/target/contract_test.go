package target_test

import (
	"testing"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/targettest"
)

func TestLocalContract(t *testing.T) {
	targettest.Contract(t, func(t *testing.T) target.Target {
		l, err := target.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}
