package server

// workers runs request handlers on long-lived goroutines. net/http starts
// every HTTP/2 request on a fresh goroutine with a small stack; samd's
// handler path (Connect, the interceptor, the policy engine) outgrows it,
// and the runtime copying stacks as they grew was 8 % of samd's CPU on
// single calls at saturation (docs/profile.md). A worker keeps the stack
// it grew for the requests after. The request's goroutine waits while a
// worker runs its handler, so the handler still runs on one goroutine at
// a time; a panic is carried back and raised again on the request's
// goroutine, where net/http recovers it as before. At most maxIdle
// workers wait for requests; one that finds no room ends.
type workers struct {
	idle chan *worker
}

type worker struct {
	jobs chan func()
	done chan any // what the job panicked with, or nil
}

func newWorkers(maxIdle int) *workers { return &workers{idle: make(chan *worker, maxIdle)} }

// run runs f on a waiting worker, or a new one, and returns when f has.
func (p *workers) run(f func()) {
	var w *worker
	select {
	case w = <-p.idle:
	default:
		w = &worker{jobs: make(chan func()), done: make(chan any)}
		go w.loop(p)
	}
	w.jobs <- f
	if v := <-w.done; v != nil {
		panic(v)
	}
}

func (w *worker) loop(p *workers) {
	for f := range w.jobs {
		w.done <- call(f)
		select {
		case p.idle <- w:
		default:
			return
		}
	}
}

// call runs f and returns what it panicked with, if anything.
func call(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}
