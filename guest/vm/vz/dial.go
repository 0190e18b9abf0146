package vz

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// errStopped: the machine ended before the agent answered.
var errStopped = errors.New("the machine stopped")

// dialTimings pace dialAgent; zero values take the defaults.
type dialTimings struct {
	// Attempt is how long one dial may hang before another is started.
	Attempt time.Duration
	// Retry is the pause after a refused dial (the agent not listening yet).
	Retry time.Duration
}

// dialAgent dials until a connection is made, stopped is closed or ctx
// ends. The framework may leave a dial to a port nobody listens on
// unanswered, so a try that hangs is left behind after t.Attempt and a new
// one started; whichever connects first wins and any later connection is
// closed, so exactly one reaches the caller, or none on error.
func dialAgent(ctx context.Context, dial func() (net.Conn, error), stopped <-chan struct{}, t dialTimings) (net.Conn, error) {
	if t.Attempt == 0 {
		t.Attempt = time.Second
	}
	if t.Retry == 0 {
		t.Retry = 20 * time.Millisecond
	}
	var settled atomic.Bool // a connection was taken, or dialAgent gave up
	got := make(chan net.Conn, 1)
	fail := func(err error) (net.Conn, error) {
		if !settled.CompareAndSwap(false, true) {
			// A try won just now: its connection is in got, unwanted.
			(<-got).Close()
		}
		return nil, err
	}
	for {
		tried := make(chan error, 1)
		go func() {
			conn, err := dial()
			if err == nil {
				if settled.CompareAndSwap(false, true) {
					got <- conn
				} else {
					conn.Close()
				}
			}
			tried <- err
		}()
		var retry <-chan time.Time
		select {
		case conn := <-got:
			return conn, nil
		case err := <-tried:
			if err == nil {
				return <-got, nil // this try's connection, or an earlier one's
			}
			retry = time.After(t.Retry)
		case <-time.After(t.Attempt):
			continue
		case <-stopped:
			return fail(errStopped)
		case <-ctx.Done():
			return fail(ctx.Err())
		}
		select {
		case <-retry:
		case conn := <-got: // an earlier, hung try answered
			return conn, nil
		case <-stopped:
			return fail(errStopped)
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
}
