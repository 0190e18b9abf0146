// Package containerlog is the on-host format of a container's output: one
// JSON object per line, as Docker's json-file driver writes it, in files
// rotated as that driver rotates them, so the files are readable by the
// same tools. The daemon owns these files; they are never read from inside
// a guest.
package containerlog

import "time"

// Entry is one line of a container log.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"` // "stdout" or "stderr"
	Time   time.Time `json:"time"`
}

// StreamName maps Docker's stream numbers to json-file's names.
func StreamName(stream int) string {
	if stream == 2 {
		return "stderr"
	}
	return "stdout"
}

// StreamNumber is StreamName's inverse.
func StreamNumber(name string) int {
	if name == "stderr" {
		return 2
	}
	return 1
}
