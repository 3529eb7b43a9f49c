package output

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/docker-backup/docker-backup/internal/detect"
	"github.com/docker-backup/docker-backup/internal/labels"
)

// DetectedService is what detect found of one service.
type DetectedService struct {
	Service    string             `json:"service"`
	Excluded   string             `json:"excluded,omitempty"`
	Container  string             `json:"container"`
	Image      string             `json:"image"`
	Running    bool               `json:"running"`
	Strategies []detect.Candidate `json:"strategies"`
	Labels     map[string]string  `json:"suggested_labels,omitempty"`
	// VolumeSize is the size of what a volume backup of the service holds (services backed
	// up with the volume strategy, unless --no-size); VolumeSizeError why it is unknown.
	VolumeSize      *VolumeSize `json:"volume_size,omitempty"`
	VolumeSizeError string      `json:"volume_size_error,omitempty"`
}

// VolumeSize is the size of a service's paths: walked by the worker as a backup walks them
// (Total, and with exclusions Kept and LeftOut), or else the Engine's figure for each path
// that is a whole named volume (EngineSizes) and Note saying why no more is known.
type VolumeSize struct {
	Paths       []string     `json:"paths"`
	Total       *Amount      `json:"total,omitempty"`
	Exclude     []string     `json:"exclude,omitempty"`
	Kept        *Amount      `json:"kept,omitempty"`
	LeftOut     *Amount      `json:"left_out,omitempty"`
	EngineSizes []EngineSize `json:"engine_sizes,omitempty"`
	Note        string       `json:"note,omitempty"`
}

// Amount is a number of entries (directories, files, links, as a manifest's contents count
// them) and the bytes of regular files among them.
type Amount struct {
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
}

// EngineSize is one path's size as the Engine gives it (a named volume's), or why unknown.
type EngineSize struct {
	Path    string `json:"path"`
	Volume  string `json:"volume,omitempty"`
	Bytes   *int64 `json:"bytes,omitempty"`
	Unknown string `json:"unknown,omitempty"`
}

// Detect prints what detect found of the services of project.
func Detect(w io.Writer, project string, svcs []DetectedService) {
	fmt.Fprintf(w, "Project %s\n", project)
	for _, s := range svcs {
		state := "stopped"
		if s.Running {
			state = "running"
		}
		fmt.Fprintf(w, "\n%s  (container %s, image %s, %s)\n", s.Service, s.Container, s.Image, state)
		if s.Excluded != "" {
			fmt.Fprintf(w, "  not backed up: %s\n", s.Excluded)
			continue
		}
		if len(s.Strategies) == 0 {
			fmt.Fprintln(w, "  nothing to back up: no database recognised and no volumes")
			continue
		}
		sized := false
		for i, c := range s.Strategies {
			mark := " "
			if i == 0 {
				mark = "*"
			}
			fmt.Fprintf(w, "  %s %-9s %s\n", mark, c.Strategy, c.Reason)
			if c.Strategy == "volume" {
				sized = printVolumeSize(w, s.VolumeSize)
			}
		}
		if !sized {
			printVolumeSize(w, s.VolumeSize)
		}
		fmt.Fprintf(w, "  labels to schedule it:\n")
		for _, k := range []string{labels.Enable, labels.Strategy, labels.Schedule} {
			fmt.Fprintf(w, "    %s: %q\n", k, s.Labels[k])
		}
		fmt.Fprintf(w, "  back up now:  docker backup run %s --project %s --to ./backups\n", s.Service, project)
	}
}

// sizeIndent aligns a size under the reason of a strategy's line.
const sizeIndent = "              "

// printVolumeSize prints z under the volume strategy's line; it reports whether there was one.
func printVolumeSize(w io.Writer, z *VolumeSize) bool {
	if z == nil {
		return false
	}
	excl := strings.Join(z.Exclude, ", ")
	if z.Total != nil {
		line := amount(*z.Total)
		if z.Kept != nil && z.LeftOut != nil {
			line += fmt.Sprintf("; with the exclusions (%s): %s (%s files, %s left out)",
				Clean(excl), amount(*z.Kept), Count(z.LeftOut.Files), Bytes(z.LeftOut.Bytes))
		}
		fmt.Fprintln(w, sizeIndent+line)
		return true
	}
	var parts []string
	for _, e := range z.EngineSizes {
		if e.Bytes != nil {
			parts = append(parts, fmt.Sprintf("%s: %s (the Engine's figure for the volume %s)", e.Path, Bytes(*e.Bytes), e.Volume))
		} else {
			parts = append(parts, e.Path+": "+e.Unknown)
		}
	}
	fmt.Fprintln(w, sizeIndent+Clean(strings.Join(parts, "; ")))
	if excl != "" {
		fmt.Fprintf(w, "%ssizes with the exclusions (%s) need the worker: %s\n", sizeIndent, Clean(excl), Clean(z.Note))
	} else {
		fmt.Fprintf(w, "%sfile counts need the worker: %s\n", sizeIndent, Clean(z.Note))
	}
	return true
}

// amount is "1.2GiB in 9,614 files".
func amount(a Amount) string {
	files := "files"
	if a.Files == 1 {
		files = "file"
	}
	return fmt.Sprintf("%s in %s %s", Bytes(a.Bytes), Count(a.Files), files)
}

// Count is n with a comma between each group of three digits: "9,614".
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
