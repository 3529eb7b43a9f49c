package volume

import (
	"reflect"
	"testing"
)

func TestCleanPaths(t *testing.T) {
	got, err := cleanPaths([]string{"/data/sub", "/data", " /config/ ", "/data-x", "/data//y/..", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/config", "/data", "/data-x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cleanPaths = %v, want %v", got, want)
	}
	for _, bad := range []string{"data", "./x", "/", "/.."} {
		if _, err := cleanPaths([]string{bad}); err == nil {
			t.Errorf("cleanPaths(%q) accepted", bad)
		}
	}
}
