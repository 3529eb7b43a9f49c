package tree

// Measurement is what a measuring walk finds: the entries (directories, files, links: as
// artifact.Contents counts them) and bytes of regular files a backup holds — a group of hard
// links' content once per path, as the archive stores it — and the same of what the
// exclusions leave out.
type Measurement struct {
	Files         int64 `json:"files"`
	Bytes         int64 `json:"bytes"`
	ExcludedFiles int64 `json:"excluded_files"`
	ExcludedBytes int64 `json:"excluded_bytes"`
}
