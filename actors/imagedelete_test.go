package actors

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"

	"github.com/arcavm/arca/messages"
)

// askImages sends m to the images actor and fails the test on an error
// unless wantErr says what it should contain.
func askImages(t *testing.T, sys *System, m any, wantErr string) any {
	t.Helper()
	res, err := sys.Root.RequestFuture(sys.Images, m, 10*time.Second).Result()
	if e, ok := res.(error); ok {
		err = e
	}
	switch {
	case wantErr == "" && err != nil:
		t.Fatalf("%T: %v", m, err)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Fatalf("%T: error %v, want %q", m, err, wantErr)
	}
	return res
}

// stepConfig is a build step's record, as the classic builder makes one.
func stepConfig(instruction string) *container.Config {
	return &container.Config{Cmd: []string{"/bin/sh", "-c", "#(nop) ", instruction}}
}

// chain makes a tagged base image and, on it, one image per step, each
// the parent of the next, as a classic build leaves them; it answers
// their IDs, base first.
func chain(t *testing.T, sys *System, base string, steps ...string) []string {
	t.Helper()
	ids := []string{}
	if base != "" {
		r := askImages(t, sys, &messages.AddLayerImage{OS: "linux", Architecture: "amd64", Tag: base}, "").(*messages.AddLayerImageReply)
		ids = append(ids, r.ID.String())
	}
	for _, s := range steps {
		parent := ""
		if len(ids) > 0 {
			parent = ids[len(ids)-1]
		}
		cfg := container.Config{Env: []string{"STEP=" + s}}
		r := askImages(t, sys, &messages.AddLayerImage{
			Parent: digestOf(parent), Config: cfg, CreatedBy: strings.Join(stepConfig(s).Cmd, " "),
			ContainerConfig: stepConfig(s), Build: true,
		}, "").(*messages.AddLayerImageReply)
		ids = append(ids, r.ID.String())
	}
	return ids
}

func listed(t *testing.T, sys *System, all bool, filters map[string][]string) []string {
	t.Helper()
	r := askImages(t, sys, &messages.ListImages{All: all, Filters: filters}, "").(*messages.ListImagesReply)
	var ids []string
	for _, s := range r.Images {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }

func deletedIDs(resp []image.DeleteResponse) (untagged, deleted []string) {
	for _, d := range resp {
		if d.Untagged != "" {
			untagged = append(untagged, d.Untagged)
		}
		if d.Deleted != "" {
			deleted = append(deleted, d.Deleted)
		}
	}
	return untagged, deleted
}

func TestImageParentsListAndProbe(t *testing.T) {
	sys, _ := startTestTree(t)
	ids := chain(t, sys, "base:1", "ENV A=1", "ENV B=1")
	base, mid, top := ids[0], ids[1], ids[2]

	if got := listed(t, sys, false, nil); !slices.Equal(got, sorted(base, top)) {
		t.Errorf("images: %q, want the base and the head (the intermediate one hidden)", got)
	}
	if got := listed(t, sys, true, nil); !slices.Equal(got, sorted(ids...)) {
		t.Errorf("images -a: %q, want all", got)
	}
	if got := listed(t, sys, true, map[string][]string{"dangling": {"true"}}); !slices.Equal(got, []string{top}) {
		t.Errorf("dangling: %q, want the head only", got)
	}
	if got := listed(t, sys, true, map[string][]string{"dangling": {"false"}}); !slices.Equal(got, []string{base}) {
		t.Errorf("dangling=false: %q, want the tagged one", got)
	}
	du := askImages(t, sys, &messages.ImageDiskUsage{}, "").(*messages.ImageDiskUsageReply)
	if len(du.Images) != 2 {
		t.Errorf("system df lists %d images, want the 2 docker images lists", len(du.Images))
	}
	r := askImages(t, sys, &messages.ListImages{All: true}, "").(*messages.ListImagesReply)
	for _, s := range r.Images {
		if want := map[string]string{base: "", mid: base, top: mid}[s.ID]; s.ParentID != want {
			t.Errorf("%s: ParentId %q, want %q", s.ID, s.ParentID, want)
		}
	}
	in := askImages(t, sys, &messages.InspectImage{Name: top}, "").(*messages.InspectImageReply)
	if in.Parent != mid {
		t.Errorf("inspect Parent %q, want %q", in.Parent, mid)
	}
	h := askImages(t, sys, &messages.ImageHistory{Name: top}, "").(*messages.ImageHistoryReply)
	var hist []string
	for _, item := range h.History {
		hist = append(hist, item.ID)
	}
	if !slices.Equal(hist, []string{top, mid, base}) {
		t.Errorf("history IDs %q, want each step's image", hist)
	}

	probe := func(parent, instruction string) string {
		return askImages(t, sys, &messages.ProbeBuildCache{Parent: parent, Config: *stepConfig(instruction)}, "").(*messages.ProbeBuildCacheReply).ID
	}
	if got := probe(base, "ENV A=1"); got != mid {
		t.Errorf("probe of the first step: %q, want %q", got, mid)
	}
	if got := probe(mid, "ENV B=1"); got != top {
		t.Errorf("probe of the second step: %q, want %q", got, top)
	}
	for _, miss := range [][2]string{{base, "ENV B=1"}, {mid, "ENV B=2"}, {top, "ENV B=1"}} {
		if got := probe(miss[0], miss[1]); got != "" {
			t.Errorf("probe of %q on %s: %q, want a miss", miss[1], miss[0], got)
		}
	}
}

func TestImageRemoveWithParents(t *testing.T) {
	env := newTestEnv(t)
	sys, err := Start(env)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			sys.Stop()
		}
	})
	ids := chain(t, sys, "base:1", "ENV A=1", "ENV B=1", "ENV C=1")
	base, a, b, c := ids[0], ids[1], ids[2], ids[3]
	// A second build's branch off a, and a tag on the last step.
	branch := askImages(t, sys, &messages.AddLayerImage{Parent: digestOf(a), ContainerConfig: stepConfig("ENV X=1"), Build: true}, "").(*messages.AddLayerImageReply).ID.String()
	askImages(t, sys, &messages.TagImage{Source: c, Target: "docker.io/library/app:1"}, "")

	// A parent cannot go, even forced.
	askImages(t, sys, &messages.RemoveImage{Name: a, Force: true}, "conflict: unable to delete "+a[7:19]+" (cannot be forced) - image has dependent child images")
	// Its last tag can: the image stays, as an intermediate one.
	askImages(t, sys, &messages.TagImage{Source: b, Target: "docker.io/library/mid:1"}, "")
	r := askImages(t, sys, &messages.RemoveImage{Name: "mid:1"}, "").(*messages.RemoveImageReply)
	if u, d := deletedIDs(r.Deleted); !slices.Equal(u, []string{"mid:1"}) || len(d) != 0 {
		t.Errorf("rmi of a parent's tag: untagged %q, deleted %q", u, d)
	}

	// The tagged head goes with its parents up to the one another child
	// keeps.
	r = askImages(t, sys, &messages.RemoveImage{Name: "app:1"}, "").(*messages.RemoveImageReply)
	if u, d := deletedIDs(r.Deleted); !slices.Equal(u, []string{"app:1"}) || !slices.Equal(d, []string{c, b}) {
		t.Errorf("rmi app:1: untagged %q, deleted %q, want %s and %s", u, d, c, b)
	}
	if got := listed(t, sys, true, nil); !slices.Equal(got, sorted(base, a, branch)) {
		t.Errorf("images left: %q", got)
	}

	// The same index comes back from the store after a restart.
	sys.Stop()
	stopped = true
	sys2, err := Start(env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys2.Stop)
	if got := listed(t, sys2, false, nil); !slices.Equal(got, sorted(base, branch)) {
		t.Errorf("images after a restart: %q, want a hidden as before", got)
	}

	// Prune takes the dangling branch and the parent it alone kept, not
	// the tagged base.
	p := askImages(t, sys2, &messages.PruneImages{}, "").(*messages.PruneImagesReply)
	if _, d := deletedIDs(p.Report.ImagesDeleted); !slices.Equal(d, []string{branch, a}) {
		t.Errorf("prune deleted %q, want %s then %s", d, branch, a)
	}
	if got := listed(t, sys2, true, nil); !slices.Equal(got, []string{base}) {
		t.Errorf("images after prune: %q", got)
	}
}

func digestOf(id string) digest.Digest { return digest.Digest(id) }
