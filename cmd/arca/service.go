package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/coreos/go-systemd/v22/activation"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/arcavm/arca/httpfront"
)

// listen returns the listener to serve the Docker API on: the one
// systemd passed (socket activation: LISTEN_FDS, LISTEN_PID, the socket
// unit's ListenStream) if there is one, else a socket the daemon makes
// at path. activated says which: systemd's socket is systemd's, never
// removed by the daemon.
func listen(path string, log *slog.Logger) (ln net.Listener, activated bool, err error) {
	inherited, err := activation.Listeners()
	if err != nil {
		return nil, false, fmt.Errorf("socket activation: %w", err)
	}
	for i, l := range inherited {
		if l == nil {
			continue
		}
		if _, ok := l.(*net.UnixListener); !ok || ln != nil {
			// Not ours to serve: a second socket, or not a stream
			// unix socket. Closed, so systemd sees it unused.
			log.Warn("socket activation: ignoring an inherited descriptor", "fd", 3+i, "addr", l.Addr().String())
			l.Close()
			continue
		}
		ln = l
	}
	if ln != nil {
		if a := ln.Addr().String(); a != path {
			log.Info("socket activation: serving on systemd's socket, not --socket", "socket", a, "flag", path)
		}
		return ln, true, nil
	}
	if len(inherited) > 0 {
		return nil, false, fmt.Errorf("socket activation: none of the %d inherited descriptors is a unix stream socket (the socket unit needs ListenStream=/path)", len(inherited))
	}
	ln, err = httpfront.Listen(path)
	return ln, false, err
}

// notifyReady tells systemd (Type=notify) that the daemon serves. Without
// NOTIFY_SOCKET (not under systemd) it does nothing.
func notifyReady(log *slog.Logger, status string) {
	notify(log, sddaemon.SdNotifyReady+"\nSTATUS="+status+fmt.Sprintf("\nMAINPID=%d", os.Getpid()))
}

// notifyStopping tells systemd the daemon is shutting down on purpose.
func notifyStopping(log *slog.Logger) { notify(log, sddaemon.SdNotifyStopping) }

func notify(log *slog.Logger, state string) {
	sent, err := sddaemon.SdNotify(false, state)
	if err != nil {
		log.Warn("sd_notify", "err", err)
	} else if sent {
		log.Debug("sd_notify", "state", state)
	}
}
