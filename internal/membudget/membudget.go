// Package membudget sets the Go heap's soft limit of the plugin from what its streams hold: a
// base for the compression pipeline (the zstd frames in flight and the encoders' state, ≈ 20
// MiB live on two cores, see docs/benchmarks.md) and the buffers a command's targets add (an
// S3 upload's part). Without a limit the collector lets the heap grow to twice what is live;
// with one near what is live it runs all the time. GOMEMLIMIT, when set, is obeyed instead.
package membudget

import (
	"os"
	"runtime/debug"
)

// Base is the limit with no target buffer: the plugin's in-place volume backup to a directory
// peaks at ≈ 46–47 MiB of resident memory with it (the binary's own pages are ≈ 17 MiB of that);
// at 28 MiB the collector runs all the time (≈ 180 cycles for a 443 MB volume instead of 10).
const Base = 30 << 20

// Repository is the limit of work on a snapshot repository (incremental backups, their
// restores, check, export): the first incremental backup of the bench's 950 MB volume peaks at
// 118–121 MiB of the plugin's resident memory with it (130 MiB at 100 MiB, with no less CPU
// time; 111 MiB at 80 MiB, with 5 % more), about 62 MiB of it live: the chunker's buffer, chunks
// being hashed, compressed and packed, one pack filling and one being stored.
const Repository = 88 << 20

// SetRepository makes the limit Repository plus extra bytes of buffers; it does nothing when
// GOMEMLIMIT is set.
func SetRepository(extra int64) { Set(Repository - Base + extra) }

// Set makes the limit Base plus extra bytes of buffers; it does nothing when GOMEMLIMIT is
// set.
func Set(extra int64) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(Base + max(extra, 0))
}
