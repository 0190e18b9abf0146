package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
)

// TestSystemDF: docker system df and df -v with real numbers: a volume
// holding a 1 MiB file shows about 1 MB and RefCount 1 while a container
// uses it, the image counts its container, the container its writable
// layer; and the API's type parameter.
func TestSystemDF(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	n := testenv.Name(t)
	d.Docker(t, "volume", "create", n).Must(t)
	defer d.Docker(t, "volume", "rm", "-f", n)
	d.Docker(t, "run", "-d", "--name", n, "-v", n+":/data", img, "sh", "-c",
		"dd if=/dev/zero of=/data/f bs=1024 count=1024 && dd if=/dev/zero of=/big bs=1024 count=512 && sleep 300").Must(t)
	defer d.Docker(t, "rm", "-f", n)
	d.Docker(t, "exec", n, "sh", "-c", "while [ ! -s /big ]; do sleep 0.1; done; sync").Must(t)

	out := d.Docker(t, "system", "df").Must(t).Stdout
	for _, want := range []string{"Images", "Containers", "Local Volumes", "Build Cache"} {
		if !strings.Contains(out, want) {
			t.Errorf("system df lacks %q:\n%s", want, out)
		}
	}
	verbose := d.Docker(t, "system", "df", "-v").Must(t).Stdout
	vline := lineWith(verbose, n+" ")
	// VOLUME NAME, LINKS, SIZE
	if f := strings.Fields(vline); len(f) != 3 || f[1] != "1" || f[2] != "1.049MB" {
		t.Errorf("df -v volume line %q in:\n%s", vline, verbose)
	}
	cid := strings.TrimSpace(d.Docker(t, "inspect", "-f", "{{.Id}}", n).Must(t).Stdout)
	if cline := lineWith(verbose, cid[:12]); !strings.Contains(cline, "kB") && !strings.Contains(cline, "MB") {
		t.Errorf("df -v container line %q", cline)
	}

	// The API itself: UsageData, the image's container count, SizeRw.
	var du struct {
		LayersSize int64
		Images     []struct {
			ID                           string
			Containers, Size, SharedSize int64
		}
		Containers []struct {
			Id         string
			SizeRw     int64
			SizeRootFs int64
		}
		Volumes []struct {
			Name      string
			UsageData struct{ Size, RefCount int64 }
		}
		BuildCache []any
	}
	_, _, raw := call(t, d, "GET", "/system/df", "")
	if err := json.Unmarshal([]byte(raw), &du); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	imgID := strings.TrimSpace(d.Docker(t, "inspect", "-f", "{{.Image}}", n).Must(t).Stdout)
	var sum int64
	for _, i := range du.Images {
		sum += i.Size - i.SharedSize
		if i.ID == imgID && (i.Containers < 1 || i.Size <= 0) {
			t.Errorf("image %+v", i)
		}
	}
	if du.LayersSize <= 0 || du.LayersSize < sum {
		t.Errorf("LayersSize %d, images' own sizes %d", du.LayersSize, sum)
	}
	found := false
	for _, c := range du.Containers {
		if c.Id == cid {
			found = true
			if c.SizeRw < 512<<10 || c.SizeRootFs <= c.SizeRw {
				t.Errorf("container sizes %+v", c)
			}
		}
	}
	for _, v := range du.Volumes {
		if v.Name == n {
			found = found && v.UsageData.RefCount == 1 && v.UsageData.Size == 1<<20
			if v.UsageData.RefCount != 1 || v.UsageData.Size != 1<<20 {
				t.Errorf("volume usage %+v", v.UsageData)
			}
		}
	}
	if !found || du.BuildCache == nil {
		t.Errorf("container or volume missing, or BuildCache not an array: %s", raw)
	}

	// type= asks for some kinds only; the rest are null.
	if _, _, raw := call(t, d, "GET", "/v1.51/system/df?type=volume", ""); !strings.Contains(raw, `"Images":null`) || !strings.Contains(raw, `"Name":"`+n+`"`) {
		t.Errorf("type=volume: %s", raw)
	}
	if code, _, body := call(t, d, "GET", "/v1.51/system/df?type=disks", ""); code != 400 || !strings.Contains(body, "unknown object type: disks") {
		t.Errorf("bad type: %d %s", code, body)
	}

	// Once the container is gone, nothing uses the volume.
	d.Docker(t, "rm", "-f", n).Must(t)
	if vline := lineWith(d.Docker(t, "system", "df", "-v").Must(t).Stdout, n+" "); !strings.HasPrefix(strings.Join(strings.Fields(vline), " "), n+" 0 ") {
		t.Errorf("after rm: %q", vline)
	}
}

// lineWith is the first line of out containing s.
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
