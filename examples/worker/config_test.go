package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRunConfigFromEnv(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, cfg runConfig)
		wantErr string
	}{
		{name: "defaults suit the tests", env: nil, check: func(t *testing.T, cfg runConfig) {
			if !slices.Equal(cfg.Queues, []string{"default"}) || cfg.MaxWorkers != 10 ||
				cfg.HeartbeatStore != "table" || cfg.HeartbeatMetadataKey != "health_check_at" ||
				cfg.HeartbeatInterval != 2*time.Second || cfg.ExitWhenIdle != 0 || cfg.Schema != "" {
				t.Errorf("defaults: %+v", cfg)
			}
		}},
		{name: "queues are a comma list", env: map[string]string{"WORKER_QUEUES": " reports, ,emails "},
			check: func(t *testing.T, cfg runConfig) {
				if !slices.Equal(cfg.Queues, []string{"reports", "emails"}) {
					t.Errorf("queues %q", cfg.Queues)
				}
			}},
		{name: "metadata store with its key and durations", env: map[string]string{
			"HEARTBEAT_STORE": "Metadata", "HEARTBEAT_METADATA_KEY": "alive_at",
			"HEARTBEAT_INTERVAL": "500ms", "EXIT_WHEN_IDLE": "3s", "RIVER_SCHEMA": "jobs",
		}, check: func(t *testing.T, cfg runConfig) {
			if cfg.HeartbeatStore != "metadata" || cfg.HeartbeatMetadataKey != "alive_at" ||
				cfg.HeartbeatInterval != 500*time.Millisecond || cfg.ExitWhenIdle != 3*time.Second ||
				cfg.Schema != "jobs" {
				t.Errorf("parsed: %+v", cfg)
			}
		}},
		{name: "unknown store", env: map[string]string{"HEARTBEAT_STORE": "redis"}, wantErr: "HEARTBEAT_STORE"},
		{name: "bad duration", env: map[string]string{"EXIT_WHEN_IDLE": "3"}, wantErr: "EXIT_WHEN_IDLE"},
		{name: "zero interval", env: map[string]string{"HEARTBEAT_INTERVAL": "0s"}, wantErr: "HEARTBEAT_INTERVAL"},
		{name: "bad max workers", env: map[string]string{"MAX_WORKERS": "0"}, wantErr: "MAX_WORKERS"},
		{name: "no queue", env: map[string]string{"WORKER_QUEUES": " , "}, wantErr: "WORKER_QUEUES"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := runConfigFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}

func TestInsertArgsAreDecodedStrictly(t *testing.T) {
	if _, err := kinds["sleep"]([]byte(`{"seconds": 2, "progress_every_seconds": 0.5}`)); err != nil {
		t.Errorf("valid sleep args: %v", err)
	}
	if _, err := kinds["sleep"]([]byte(`{"secs": 2}`)); err == nil {
		t.Error("a misspelt field was accepted")
	}
	for _, kind := range []string{"sleep", "hang", "crash", "eat", "stall", "freeze"} {
		decode, ok := kinds[kind]
		if !ok {
			t.Errorf("kind %s is missing", kind)
			continue
		}
		args, err := decode([]byte(`{}`))
		if err != nil || args.Kind() != kind {
			t.Errorf("kind %s: args %v err %v", kind, args, err)
		}
	}
}
