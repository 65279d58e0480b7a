package webhook

import "sync"

// Job is one call waiting in a Queue.
type Job struct {
	// Client owns the goroutine that runs the job; after a reload the
	// newest job's Client takes the queue over.
	Client *Client
	// Run makes the call and applies its reply.
	Run func()
	// Fail reports a job that will not run (its Client stopped).
	Fail func(error)
}

// Queue keeps one socket's calls in order (FIFO). A goroutine drains it and
// exists only while it is not empty. When the Client of the running drainer
// stops (a reload or a shutdown), what is left is handed to a drainer of
// the newest job's Client, or fails with "server stopping" when that is
// the same Client. The zero Queue is ready to use.
type Queue struct {
	mu      sync.Mutex
	jobs    []Job
	running bool
}

// Push queues j unless limit jobs are waiting, and starts the drainer.
func (q *Queue) Push(j Job, limit int) bool {
	q.mu.Lock()
	if len(q.jobs) >= limit {
		q.mu.Unlock()
		return false
	}
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	q.start(j.Client)
	return true
}

// Len is the number of jobs waiting (the one running not included).
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.jobs)
}

// start runs a drainer owned by c unless one runs. When c is closed the
// waiting jobs fail at once.
func (q *Queue) start(c *Client) {
	q.mu.Lock()
	if q.running || len(q.jobs) == 0 {
		q.mu.Unlock()
		return
	}
	q.running = true
	q.mu.Unlock()
	if c.Go(func() { q.drain(c) }) {
		return
	}
	q.failAll()
}

// failAll fails every waiting job and marks the queue idle.
func (q *Queue) failAll() {
	q.mu.Lock()
	jobs := q.jobs
	q.jobs = nil
	q.running = false
	q.mu.Unlock()
	for _, j := range jobs {
		j.Fail(&Error{Reason: "server stopping"})
	}
}

// drain runs the jobs in order. When its owner stops, it hands what is
// left to a drainer of the newest job's Client and ends.
func (q *Queue) drain(owner *Client) {
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		if owner.Stopping() {
			next := q.jobs[len(q.jobs)-1].Client
			q.running = false
			q.mu.Unlock()
			if next != owner {
				q.start(next)
			} else {
				q.mu.Lock()
				jobs := q.jobs
				q.jobs = nil
				q.mu.Unlock()
				for _, j := range jobs {
					j.Fail(&Error{Reason: "server stopping"})
				}
			}
			return
		}
		j := q.jobs[0]
		q.jobs[0] = Job{}
		q.jobs = q.jobs[1:]
		q.mu.Unlock()
		j.Run()
	}
}
