package golden

import "testing"

func TestDiff(t *testing.T) {
	got := Diff("a\nb\nc\n", "a\nB\nc\nd\n")
	want := "  a\n- \"b\"\n+ \"B\"\n  c\n- \"\"\n+ \"d\"\n+ \"\"\n"
	if got != want {
		t.Errorf("Diff:\n%s\nwant\n%s", got, want)
	}
}
