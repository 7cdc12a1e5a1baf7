package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// runConfig is `worker run`'s configuration, read from the environment so a
// Kubernetes pod spec can set it.
type runConfig struct {
	Schema               string        // RIVER_SCHEMA: River's schema ("" = search path)
	Queues               []string      // WORKER_QUEUES: comma list (default "default")
	MaxWorkers           int           // MAX_WORKERS: per queue (default 10)
	HeartbeatStore       string        // HEARTBEAT_STORE: table (default), metadata or none
	HeartbeatMetadataKey string        // HEARTBEAT_METADATA_KEY: for the metadata store (default health_check_at)
	HeartbeatInterval    time.Duration // HEARTBEAT_INTERVAL: Go duration (default 2s)
	ExitWhenIdle         time.Duration // EXIT_WHEN_IDLE: exit 0 once idle this long (default 0: never)
	JobTimeout           time.Duration // JOB_TIMEOUT: River's JobTimeout (default 0: no timeout)
	RescueStuckJobsAfter time.Duration // RESCUE_STUCK_JOBS_AFTER: River's rescuer (default 0: River's default)
	ShutdownTimeout      time.Duration // SHUTDOWN_TIMEOUT: graceful stop before cancelling jobs (default 10s)
	FetchPollInterval    time.Duration // FETCH_POLL_INTERVAL: River's FetchPollInterval (default 0: River's 1s)
	Tame                 bool          // WORKER_TAME: finish hang, crash, eat, stall and freeze jobs at once
}

func runConfigFromEnv(getenv func(string) string) (runConfig, error) {
	cfg := runConfig{
		Schema:               getenv("RIVER_SCHEMA"),
		Queues:               []string{"default"},
		MaxWorkers:           10,
		HeartbeatStore:       "table",
		HeartbeatMetadataKey: "health_check_at",
		HeartbeatInterval:    2 * time.Second,
		ShutdownTimeout:      10 * time.Second,
	}
	if v := getenv("WORKER_QUEUES"); v != "" {
		cfg.Queues = nil
		for _, q := range strings.Split(v, ",") {
			if q = strings.TrimSpace(q); q != "" {
				cfg.Queues = append(cfg.Queues, q)
			}
		}
		if len(cfg.Queues) == 0 {
			return cfg, fmt.Errorf("WORKER_QUEUES=%q names no queue", v)
		}
	}
	if v := getenv("WORKER_TAME"); v != "" {
		parsed, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("WORKER_TAME=%q: want true or false", v)
		}
		cfg.Tame = parsed
	}
	if v := getenv("MAX_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("MAX_WORKERS=%q: want a positive integer", v)
		}
		cfg.MaxWorkers = n
	}
	if v := getenv("HEARTBEAT_STORE"); v != "" {
		switch strings.ToLower(v) {
		case "table", "metadata", "none":
			cfg.HeartbeatStore = strings.ToLower(v)
		default:
			return cfg, fmt.Errorf("HEARTBEAT_STORE=%q: want table, metadata or none", v)
		}
	}
	if v := getenv("HEARTBEAT_METADATA_KEY"); v != "" {
		cfg.HeartbeatMetadataKey = v
	}
	durations := []struct {
		name string
		dest *time.Duration
	}{
		{"HEARTBEAT_INTERVAL", &cfg.HeartbeatInterval},
		{"EXIT_WHEN_IDLE", &cfg.ExitWhenIdle},
		{"JOB_TIMEOUT", &cfg.JobTimeout},
		{"RESCUE_STUCK_JOBS_AFTER", &cfg.RescueStuckJobsAfter},
		{"SHUTDOWN_TIMEOUT", &cfg.ShutdownTimeout},
		{"FETCH_POLL_INTERVAL", &cfg.FetchPollInterval},
	}
	for _, d := range durations {
		v := getenv(d.name)
		if v == "" {
			continue
		}
		parsed, err := time.ParseDuration(v)
		if err != nil || parsed < 0 {
			return cfg, fmt.Errorf("%s=%q: want a non-negative Go duration such as 2s", d.name, v)
		}
		*d.dest = parsed
	}
	if cfg.HeartbeatInterval <= 0 {
		return cfg, fmt.Errorf("HEARTBEAT_INTERVAL must be positive")
	}
	return cfg, nil
}
