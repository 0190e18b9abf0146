// udpecho answers each UDP datagram on :PORT with "echo:" and the datagram;
// the e2e tests copy it into a container, since busybox has no UDP server.
package main

import (
	"net"
	"os"
)

func main() {
	pc, err := net.ListenPacket("udp", ":"+os.Args[1])
	if err != nil {
		panic(err)
	}
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
	}
}
