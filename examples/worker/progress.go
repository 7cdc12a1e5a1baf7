package main

import "context"

// reportProgress tells the heartbeat middleware that the job's logic moved on.
func reportProgress(ctx context.Context, payload any) {}
