package main

import (
	"reflect"
	"testing"
)

func TestSemverTags(t *testing.T) {
	for v, want := range map[string][]string{
		"v1.2.3":                   {"v1.2.3", "v1.2", "v1", "latest"},
		"v1.2.3-rc.1":              {"v1.2.3-rc.1"},
		"v1.2.3-4-gabcdef012345":   {"v1.2.3-4-gabcdef012345"},
		"v0.0.0-20261207-abcdef01": {"v0.0.0-20261207-abcdef01"},
		"":                         nil,
	} {
		if got := semverTags(v); !reflect.DeepEqual(got, want) {
			t.Errorf("semverTags(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestFileName(t *testing.T) {
	for p, want := range map[string]string{
		"linux/arm/v7": "docker-backup-linux-arm-v7", "windows/arm64": "docker-backup-windows-arm64.exe", "darwin/amd64": "docker-backup-darwin-amd64",
	} {
		if got := fileName("docker-backup", p); got != want {
			t.Errorf("fileName(%q) = %q, want %q", p, got, want)
		}
	}
}
