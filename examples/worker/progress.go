package main

import (
	"context"

	"github.com/river-lifeguard/lifeguard/heartbeat"
)

// reportProgress tells the heartbeat middleware that the job's logic moved on.
// A worker without the middleware (HEARTBEAT_STORE=none) has nowhere to
// report to, which is fine: progress is optional evidence.
func reportProgress(ctx context.Context, payload any) {
	_ = heartbeat.Progress(ctx, payload)
}
