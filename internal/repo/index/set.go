package index

import (
	"bytes"
	"slices"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Set is a compact set of blob IDs: 32 bytes each, in sorted runs of setRun IDs (no map
// overhead), plus a map of the newest. Not safe for concurrent use.
type Set struct {
	recent map[blob.ID]struct{}
	runs   [][]blob.ID
}

const setRun = 1 << 16

// Add adds id.
func (s *Set) Add(id blob.ID) {
	if s.recent == nil {
		s.recent = map[blob.ID]struct{}{}
	}
	s.recent[id] = struct{}{}
	if len(s.recent) >= setRun {
		run := make([]blob.ID, 0, len(s.recent))
		for id := range s.recent {
			run = append(run, id)
		}
		slices.SortFunc(run, compareIDs)
		s.runs = append(s.runs, run)
		s.recent = nil
		// Runs of similar sizes merge: at most log2(n/setRun)+1 runs to search.
		for n := len(s.runs); n > 1 && len(s.runs[n-2]) <= 2*len(s.runs[n-1]); n = len(s.runs) {
			s.runs = append(s.runs[:n-2], merge(s.runs[n-2], s.runs[n-1]))
		}
	}
}

func compareIDs(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) }

func merge(a, b []blob.ID) []blob.ID {
	out := make([]blob.ID, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if compareIDs(a[0], b[0]) <= 0 {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// Has reports whether id was added.
func (s *Set) Has(id blob.ID) bool {
	if _, ok := s.recent[id]; ok {
		return true
	}
	for _, run := range s.runs {
		if _, ok := slices.BinarySearchFunc(run, id, compareIDs); ok {
			return true
		}
	}
	return false
}
