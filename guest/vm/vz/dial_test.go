package vz

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeConn records whether it was closed.
type fakeConn struct {
	net.Conn
	id     int
	closed atomic.Bool
}

func (c *fakeConn) Close() error { c.closed.Store(true); return nil }

// script is a dialer whose i-th call does plan[i] (past the end: refuse).
type script struct {
	mu    sync.Mutex
	calls int
	plan  []func(id int) (net.Conn, error)
	conns []*fakeConn
}

func (s *script) dial() (net.Conn, error) {
	s.mu.Lock()
	i := s.calls
	s.calls++
	s.mu.Unlock()
	if i >= len(s.plan) {
		return nil, errors.New("connection refused")
	}
	return s.plan[i](i)
}

func (s *script) conn(id int) (net.Conn, error) {
	c := &fakeConn{id: id}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	return c, nil
}

func refuse(int) (net.Conn, error) { return nil, errors.New("connection refused") }

var fast = dialTimings{Attempt: 30 * time.Millisecond, Retry: time.Millisecond}

func TestDialAgent(t *testing.T) {
	t.Run("refused until it listens", func(t *testing.T) {
		s := &script{}
		s.plan = []func(int) (net.Conn, error){refuse, refuse, s.conn}
		conn, err := dialAgent(context.Background(), s.dial, nil, fast)
		if err != nil || conn.(*fakeConn).id != 2 || s.calls != 3 {
			t.Fatalf("conn %v err %v after %d dials", conn, err, s.calls)
		}
	})

	t.Run("a hung dial is left behind, and closed when it answers late", func(t *testing.T) {
		s := &script{}
		release := make(chan struct{})
		lateDone := make(chan struct{})
		s.plan = []func(int) (net.Conn, error){
			func(id int) (net.Conn, error) {
				<-release
				defer close(lateDone)
				return s.conn(id)
			},
			s.conn,
		}
		conn, err := dialAgent(context.Background(), s.dial, nil, fast)
		if err != nil || conn.(*fakeConn).id != 1 {
			t.Fatalf("conn %v err %v", conn, err)
		}
		close(release)
		<-lateDone
		time.Sleep(10 * time.Millisecond) // the loser closes right after it returns
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			if want := c.id != 1; c.closed.Load() != want {
				t.Errorf("conn %d closed = %v, want %v", c.id, c.closed.Load(), want)
			}
		}
	})

	t.Run("a hung dial that answers first wins", func(t *testing.T) {
		s := &script{}
		release := make(chan struct{})
		hang := func(int) (net.Conn, error) { <-release; return nil, errors.New("refused") }
		s.plan = []func(int) (net.Conn, error){
			func(id int) (net.Conn, error) { <-release; return s.conn(id) },
			hang, hang, hang, hang, hang, hang, hang, hang, hang, hang,
		}
		time.AfterFunc(100*time.Millisecond, func() { close(release) })
		conn, err := dialAgent(context.Background(), s.dial, nil, fast)
		if err != nil || conn.(*fakeConn).id != 0 {
			t.Fatalf("conn %v err %v", conn, err)
		}
	})

	t.Run("the machine stops", func(t *testing.T) {
		s := &script{}
		stopped := make(chan struct{})
		time.AfterFunc(20*time.Millisecond, func() { close(stopped) })
		conn, err := dialAgent(context.Background(), s.dial, stopped, fast)
		if !errors.Is(err, errStopped) || conn != nil {
			t.Fatalf("conn %v err %v", conn, err)
		}
	})

	t.Run("a connection made as it gives up is closed", func(t *testing.T) {
		s := &script{}
		release := make(chan struct{})
		done := make(chan struct{})
		s.plan = []func(int) (net.Conn, error){func(id int) (net.Conn, error) {
			<-release
			defer close(done)
			return s.conn(id)
		}}
		stopped := make(chan struct{})
		close(stopped)
		if _, err := dialAgent(context.Background(), s.dial, stopped, dialTimings{Attempt: time.Hour}); !errors.Is(err, errStopped) {
			t.Fatalf("err %v", err)
		}
		close(release)
		<-done
		time.Sleep(10 * time.Millisecond)
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.conns) != 1 || !s.conns[0].closed.Load() {
			t.Errorf("the late connection was not closed")
		}
	})

	t.Run("deadline", func(t *testing.T) {
		s := &script{}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if _, err := dialAgent(ctx, s.dial, nil, fast); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
	})
}
