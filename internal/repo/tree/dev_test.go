package tree

import "testing"

func TestDevRoundTrip(t *testing.T) {
	for _, c := range [][2]uint64{{0, 0}, {1, 3}, {8, 1}, {259, 65537}, {0xfff, 0xff}, {0x1000, 0x100}, {0xfffff000, 0xffffff00}} {
		dev := Mkdev(c[0], c[1])
		if Major(dev) != c[0] || Minor(dev) != c[1] {
			t.Errorf("Mkdev(%d, %d) = %#x: major %d, minor %d", c[0], c[1], dev, Major(dev), Minor(dev))
		}
	}
	// Linux's encoding of /dev/null (1, 3) and /dev/sda1 (8, 1).
	if Mkdev(1, 3) != 0x103 || Mkdev(8, 1) != 0x801 {
		t.Errorf("Mkdev(1, 3) = %#x, Mkdev(8, 1) = %#x", Mkdev(1, 3), Mkdev(8, 1))
	}
}
