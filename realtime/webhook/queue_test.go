package webhook

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// recorder records the jobs of a test in the order they ran or failed.
type recorder struct {
	mu     sync.Mutex
	ran    []int
	failed []int
	errs   []error
	done   chan struct{}
}

func newRecorder() *recorder { return &recorder{done: make(chan struct{}, 100)} }

func (r *recorder) job(c *Client, n int, run func()) Job {
	return Job{
		Client: c,
		Run: func() {
			if run != nil {
				run()
			}
			r.mu.Lock()
			r.ran = append(r.ran, n)
			r.mu.Unlock()
			r.done <- struct{}{}
		},
		Fail: func(err error) {
			r.mu.Lock()
			r.failed = append(r.failed, n)
			r.errs = append(r.errs, err)
			r.mu.Unlock()
			r.done <- struct{}{}
		},
	}
}

func (r *recorder) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Fatal("a job neither ran nor failed")
		}
	}
}

func (r *recorder) result() (ran, failed []int, errs []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.ran...), append([]int(nil), r.failed...), append([]error(nil), r.errs...)
}

func TestQueueOrderAndBound(t *testing.T) {
	c := newTestClient(t, Config{})
	r := newRecorder()
	var q Queue
	gate := make(chan struct{})
	var running, most int
	var mu sync.Mutex
	run := func() {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		<-gate
		mu.Lock()
		running--
		mu.Unlock()
	}
	if !q.Push(r.job(c, 0, run), 3) {
		t.Fatal("the first job refused")
	}
	// Job 0 may be running or waiting: wait until it runs, so the bound
	// counts jobs 1 to 3 only.
	for q.Len() != 0 {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 3; i++ {
		if !q.Push(r.job(c, i, run), 3) {
			t.Fatalf("job %d refused under the bound", i)
		}
	}
	if q.Push(r.job(c, 4, run), 3) {
		t.Fatal("a job over the bound was queued")
	}
	close(gate)
	r.wait(t, 4)
	ran, failed, _ := r.result()
	if len(failed) != 0 || len(ran) != 4 || ran[0] != 0 || ran[1] != 1 || ran[2] != 2 || ran[3] != 3 {
		t.Fatalf("ran %v, failed %v, want 0 1 2 3 in order", ran, failed)
	}
	if most != 1 {
		t.Fatalf("%d jobs of one queue ran at once", most)
	}
	// The drainer ended with the queue empty; a new push starts another.
	if !q.Push(r.job(c, 5, nil), 3) {
		t.Fatal("a job refused on an idle queue")
	}
	r.wait(t, 1)
}

func TestQueueHandOff(t *testing.T) {
	old := newTestClient(t, Config{CloseGrace: 50 * time.Millisecond})
	cur := newTestClient(t, Config{})
	r := newRecorder()
	var q Queue
	started, release := make(chan struct{}), make(chan struct{})
	q.Push(r.job(old, 1, func() { close(started); <-release }), 10)
	<-started
	// Queued after a reload: the newest job belongs to the new client.
	q.Push(r.job(old, 2, nil), 10)
	q.Push(r.job(cur, 3, nil), 10)
	closed := make(chan struct{})
	go func() {
		old.Close()
		close(closed)
	}()
	for !old.Stopping() {
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-closed
	r.wait(t, 3)
	ran, failed, _ := r.result()
	if len(failed) != 0 || len(ran) != 3 || ran[0] != 1 || ran[1] != 2 || ran[2] != 3 {
		t.Fatalf("ran %v, failed %v, want 1 2 3 handed to the new client", ran, failed)
	}
}

func TestQueueStopping(t *testing.T) {
	c := newTestClient(t, Config{CloseGrace: 50 * time.Millisecond})
	r := newRecorder()
	var q Queue
	started, release := make(chan struct{}), make(chan struct{})
	q.Push(r.job(c, 1, func() { close(started); <-release }), 10)
	<-started
	q.Push(r.job(c, 2, nil), 10)
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	for !c.Stopping() {
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-closed
	// A push on a closed client fails at once.
	q.Push(r.job(c, 3, nil), 10)
	r.wait(t, 3)
	ran, failed, errs := r.result()
	if len(ran) != 1 || ran[0] != 1 || len(failed) != 2 || failed[0] != 2 || failed[1] != 3 {
		t.Fatalf("ran %v, failed %v, want 1 run and 2 3 failed", ran, failed)
	}
	for _, err := range errs {
		var we *Error
		if !errors.As(err, &we) || we.Reason != "server stopping" {
			t.Fatalf("failure %v, want server stopping", err)
		}
	}
}
