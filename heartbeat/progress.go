package heartbeat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// MaxProgressBytes bounds a progress payload's JSON. Progress is a heartbeat,
// not a result store: the operator only shows it (truncated).
const MaxProgressBytes = 4096

var (
	// ErrNotInJob: Progress was called with a context that does not come from
	// a job worked through the heartbeat middleware.
	ErrNotInJob = errors.New("heartbeat: context is not a job worked through the heartbeat middleware")
	// ErrJobReturned: Progress was called after the job's Work returned.
	ErrJobReturned = errors.New("heartbeat: the job's Work has already returned")
	// ErrProgressTooLarge: the payload's JSON exceeds MaxProgressBytes. The
	// progress itself is still recorded, without the payload.
	ErrProgressTooLarge = fmt.Errorf("heartbeat: progress payload larger than %d bytes; recorded without it", MaxProgressBytes)
)

type progressKey struct{}

// Progress records that the job's logic advanced, with a small JSON payload
// (nil for none). It proves what a timer-driven beat cannot: that the work
// moves, not just the process. It never blocks on the database: the latest
// payload is handed to the job's heartbeat goroutine, which writes progress
// at most once per second (calls in between are coalesced, the latest payload
// wins) and flushes what is pending when Work returns. A failed write is
// logged and retried, never returned here.
func Progress(ctx context.Context, payload any) error {
	p, ok := ctx.Value(progressKey{}).(*pendingProgress)
	if !ok {
		return ErrNotInJob
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("heartbeat: progress payload: %w", err)
	}
	var result error
	switch {
	case string(raw) == "null":
		raw = nil
	case len(raw) > MaxProgressBytes:
		raw = nil
		result = ErrProgressTooLarge
	}
	if !p.offer(raw) {
		return ErrJobReturned
	}
	return result
}

// pendingProgress is the hand-off between Progress (any goroutine of the job)
// and the job's heartbeat goroutine.
type pendingProgress struct {
	mu      sync.Mutex
	pending bool
	payload []byte
	closed  bool
	wake    chan struct{} // capacity 1: "something is pending"
}

func newPendingProgress() *pendingProgress {
	return &pendingProgress{wake: make(chan struct{}, 1)}
}

// offer replaces any pending payload with this one; false once closed.
func (p *pendingProgress) offer(payload []byte) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	p.pending, p.payload = true, payload
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns the pending payload, if any, and clears it.
func (p *pendingProgress) take() (payload []byte, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	payload, ok = p.payload, p.pending
	p.pending, p.payload = false, nil
	return payload, ok
}

func (p *pendingProgress) hasPending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending
}

// restore puts back a payload whose write failed, unless a newer one arrived.
func (p *pendingProgress) restore(payload []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.pending {
		p.pending, p.payload = true, payload
	}
}

// close refuses further offers (Work has returned).
func (p *pendingProgress) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}
