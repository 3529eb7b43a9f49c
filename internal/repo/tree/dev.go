package tree

// Device numbers in a tree (Node.Rdev, Node.Device) are Linux's dev_t, whatever OS reads the
// repository: the data always comes from a Linux container.

// Mkdev is Linux's device number of major and minor (32 bits each), as unix.Mkdev makes it.
func Mkdev(major, minor uint64) uint64 {
	return (major&0xfff)<<8 | (major&0xfffff000)<<32 | minor&0xff | (minor&0xffffff00)<<12
}

// Major is the major number of Linux's device number dev.
func Major(dev uint64) uint64 {
	return (dev>>8)&0xfff | (dev>>32)&0xfffff000
}

// Minor is the minor number of Linux's device number dev.
func Minor(dev uint64) uint64 {
	return dev&0xff | (dev>>12)&0xffffff00
}
