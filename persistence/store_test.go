package persistence

import (
	"io"
	"log/slog"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestStoreRoundTrip(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	s, err := OpenStore(dir, false, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutContainer(&ContainerRecord{ID: "c1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutContainer(&ContainerRecord{ID: "c2", Name: "two"}); err != nil {
		t.Fatal(err)
	}
	img := &ImageRecord{ID: digest.FromString("cfg"), RepoTags: []string{"docker.io/library/x:latest"}}
	if err := s.PutImage(img); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteContainer("c1"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Reopen: what was acknowledged is there.
	s, err = OpenStore(dir, false, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cs, err := s.Containers()
	if err != nil || len(cs) != 1 || cs[0].ID != "c2" || cs[0].Name != "two" {
		t.Fatalf("containers after reopen = %+v, %v", cs, err)
	}
	is, err := s.Images()
	if err != nil || len(is) != 1 || is[0].ID != img.ID || is[0].RepoTags[0] != img.RepoTags[0] {
		t.Fatalf("images after reopen = %+v, %v", is, err)
	}
}

func TestStoreInMemory(t *testing.T) {
	s, err := OpenStore("", true, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutContainer(&ContainerRecord{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	cs, _ := s.Containers()
	if len(cs) != 1 {
		t.Fatalf("got %d containers", len(cs))
	}
}
