package containerlog

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	w, err := OpenWriter(p)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Write(1, []byte("a\nb\npartial"), t0))
	must(w.Write(2, []byte("err\n"), t0.Add(time.Second)))
	must(w.Write(1, []byte("c\n"), t0.Add(2*time.Second)))
	mid := w.Size()
	must(w.Write(1, []byte("late\n"), t0.Add(3*time.Second)))
	must(w.Close())

	read := func(limit int64, f Filter) string {
		var sb strings.Builder
		must(Read(p, limit, f, func(e Entry) error {
			sb.WriteString(e.Stream[:3] + ":" + e.Log)
			return nil
		}))
		return sb.String()
	}
	all := Filter{Stdout: true, Stderr: true, Tail: -1}
	cases := []struct {
		name  string
		limit int64
		f     Filter
		want  string
	}{
		{"all", -1, all, "std:a\nstd:b\nstd:partialstd:err\nstd:c\nstd:late\n"},
		{"stderr only", -1, Filter{Stderr: true, Tail: -1}, "std:err\n"},
		{"tail 2", -1, Filter{Stdout: true, Stderr: true, Tail: 2}, "std:c\nstd:late\n"},
		{"tail 0", -1, Filter{Stdout: true, Stderr: true, Tail: 0}, ""},
		{"limit", mid, all, "std:a\nstd:b\nstd:partialstd:err\nstd:c\n"},
		{"since", -1, Filter{Stdout: true, Stderr: true, Tail: -1, Since: t0.Add(2 * time.Second)}, "std:c\nstd:late\n"},
		{"until", -1, Filter{Stdout: true, Stderr: true, Tail: -1, Until: t0}, "std:a\nstd:b\nstd:partial"},
	}
	for _, c := range cases {
		if got := read(c.limit, c.f); got != c.want {
			t.Errorf("%s: got %q want %q", c.name, got, c.want)
		}
	}
}
