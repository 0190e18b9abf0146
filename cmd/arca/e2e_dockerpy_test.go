package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
)

// dockerPyScript drives the daemon with docker-py (Debian's python3-docker):
// an SDK that reads the upgraded socket itself and is strict about shapes.
const dockerPyScript = `
import sys, time, docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1])
img = sys.argv[2]
assert c.ping()
out = c.containers.run(img, ["sh", "-c", "echo hi"], remove=True)
assert out == b"hi\n", out
ct = c.containers.run(img, ["sh", "-c", "echo bg; cat"], detach=True, stdin_open=True, labels={"suite": "dockerpy"})
for _ in range(50):
    if ct.logs() == b"bg\n":
        break
    time.sleep(0.1)
assert ct.logs() == b"bg\n", ct.logs()
assert [x.id for x in c.containers.list(filters={"label": "suite=dockerpy"})] == [ct.id]
for _ in range(5):
    r = ct.exec_run(["echo", "exec ok"])
    assert r.exit_code == 0 and r.output == b"exec ok\n", r
r = ct.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"], demux=True)
assert r.exit_code == 3 and r.output == (b"out\n", b"err\n"), r
# attach with logs and no stream returns (it hung). Its content is checked
# with the Go client (TestAttachLogsNoStream): docker-py takes the raw
# socket from under http.client's buffer, so bytes that arrive with the
# 101 are lost to it when the engine answers before it reads the headers.
assert isinstance(ct.attach(stdout=True, stderr=True, logs=True, stream=False), bytes)
ct.stop(timeout=1)
ct.reload()
assert ct.status == "exited", ct.status
ct.remove()
print("ok")
`

func TestDockerPy(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	if err := exec.Command("python3", "-c", "import docker").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-docker is missing (make deps installs it): %v", err)
		}
		t.Skipf("python3-docker: %v", err)
	}
	out, err := exec.Command("python3", "-c", dockerPyScript, d.Socket(), img).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("docker-py: %v\n%s", err, out)
	}
}
