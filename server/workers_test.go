package server

import (
	"net/http"
	"testing"
)

// TestWorkers: a handler runs to its end before run returns, a worker
// that finished waits for the next one (and keeps its stack), and a
// handler's panic is raised again on the caller's goroutine with its own
// value, as net/http expects (http.ErrAbortHandler included).
func TestWorkers(t *testing.T) {
	p := newWorkers(1)
	n := 0
	p.run(func() { n++ })
	if n != 1 {
		t.Fatalf("after one job: ran %d", n)
	}
	w := <-p.idle // the worker waits for the next job
	p.idle <- w
	p.run(func() { n++ })
	if n != 2 || <-p.idle != w {
		t.Fatal("the waiting worker did not take the next job")
	}
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("panic %v, want http.ErrAbortHandler", v)
		}
	}()
	p.run(func() { panic(http.ErrAbortHandler) })
	t.Fatal("the handler's panic was not raised")
}
