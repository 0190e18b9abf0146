package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

var share = "on"

func args(console string) []string {
	cl := "console=ttyS0 quiet loglevel=3 tsc_early_khz=2096021 tsc=reliable no_timer_check panic=-1 reboot=t rdinit=/init pci=off 8250.nr_uarts=1 i8042.noaux i8042.nokbd i8042.nopnp nomodeset noreplace-smp cryptomgr.notests random.trust_cpu=on rodata=off init_on_alloc=0 arca.disks=2 -- -vm"
	return []string{"-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on", "-accel", "tcg,tb-size=32", "-cpu", "max", "-m", "512M", "-object", "memory-backend-file,id=mem,size=512M,mem-path=/tmp/qw/snap.ram,share="+share, "-machine", "memory-backend=mem", "-smp", "1",
		"-kernel", "/var/cache/arca/kit/current/vmlinux", "-initrd", "/tmp/qw/initrd.cpio", "-append", cl,
		"-chardev", "file,id=console,path=" + console, "-serial", "chardev:console",
		"-drive", "id=image,if=none,format=raw,readonly=on,aio=threads,file=/tmp/qw/img.ext4", "-device", "virtio-blk-device,drive=image,serial=arca-image",
		"-drive", "id=rw,if=none,format=raw,aio=threads,file=/tmp/qw/rw.ext4", "-device", "virtio-blk-device,drive=rw,serial=arca-rw",
		"-chardev", "socket,id=agent,fd=3", "-device", "virtio-serial-device,max_ports=2", "-device", "virtserialport,chardev=agent,name=arca"}
}

func spawn(extra ...string) (*exec.Cmd, net.Conn) {
	fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	g := os.NewFile(uintptr(fds[1]), "g")
	h := os.NewFile(uintptr(fds[0]), "h")
	conn, _ := net.FileConn(h)
	h.Close()
	cmd := exec.Command("/usr/bin/qemu-system-x86_64", append(args("/tmp/qw/snapcon.log"), extra...)...)
	cmd.ExtraFiles = []*os.File{g}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	g.Close()
	return cmd, conn
}

func qmp(path string) (func(string) map[string]any) {
	var c net.Conn
	var err error
	for i := 0; i < 200; i++ {
		if c, err = net.Dial("unix", path); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		panic(err)
	}
	r := bufio.NewReader(c)
	r.ReadString('\n')
	do := func(cmd string) map[string]any {
		fmt.Fprintln(c, cmd)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				panic(err)
			}
			var m map[string]any
			json.Unmarshal([]byte(l), &m)
			if _, ok := m["event"]; ok {
				continue
			}
			return m
		}
	}
	do(`{"execute":"qmp_capabilities"}`)
	return do
}

func main() {
	snap := "/tmp/qw/snap"
	if len(os.Args) < 2 || os.Args[1] == "template" {
		os.Remove("/tmp/qw/qmp.sock")
		t0 := time.Now()
		cmd, _ := spawn("-qmp", "unix:/tmp/qw/qmp.sock,server=on,wait=off")
		for {
			b, _ := os.ReadFile("/tmp/qw/snapcon.log")
			if strings.Contains(string(b), "msg=serving") {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		fmt.Println("template serving after", time.Since(t0))
		q := qmp("/tmp/qw/qmp.sock")
		t1 := time.Now()
		fmt.Println(q(`{"execute":"stop"}`))
		fmt.Println(q(`{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"x-ignore-shared","state":true}]}}`))
		fmt.Println(q(`{"execute":"migrate","arguments":{"uri":"exec:cat > ` + snap + `"}}`))
		for {
			m := q(`{"execute":"query-migrate"}`)
			if s, _ := m["return"].(map[string]any)["status"].(string); s == "completed" || s == "failed" {
				fmt.Println(m)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		fmt.Println("saved in", time.Since(t1))
		cmd.Process.Kill()
		cmd.Wait()
		return
	}
	t0 := time.Now()
	os.Remove("/tmp/qw/qmp2.sock")
	share = "off"
	cmd, conn := spawn("-incoming", "defer", "-qmp", "unix:/tmp/qw/qmp2.sock,server=on,wait=off")
	q := qmp("/tmp/qw/qmp2.sock")
	fmt.Println(time.Since(t0), "qmp up")
	q(`{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"x-ignore-shared","state":true}]}}`)
	fmt.Println(q(`{"execute":"migrate-incoming","arguments":{"uri":"exec:cat `+snap+`"}}`))
	for {
		m := q(`{"execute":"query-migrate"}`)
		if s, _ := m["return"].(map[string]any)["status"].(string); s == "completed" || s == "failed" {
			fmt.Println(time.Since(t0), m)
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	fmt.Println(q(`{"execute":"cont"}`), time.Since(t0))
	cl, err := wire.NewClient(conn)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	err = cl.Ping(ctx)
	fmt.Println("restore ping", err, time.Since(t0))
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS") {
			fmt.Println(l)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
}
