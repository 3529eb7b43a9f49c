package postgres

import "testing"

func TestPostgresVersions(t *testing.T) {
	if v := toolVersion("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"); v != "15.18" {
		t.Errorf("toolVersion = %q", v)
	}
	if v := toolVersion("pg_dump (PostgreSQL) 17.2"); v != "17.2" {
		t.Errorf("toolVersion = %q", v)
	}
	if MajorVersion("15.18") != "15" || MajorVersion("9.6.24") != "9" || MajorVersion("17beta1") != "17" {
		t.Error("MajorVersion")
	}
}
