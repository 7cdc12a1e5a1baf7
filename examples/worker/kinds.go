package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/river-lifeguard/lifeguard/heartbeat"
	"github.com/riverqueue/river"
)

// The job kinds of the example worker. Each one plays a way a real job can
// behave (or misbehave), so the operator can be tested against real River
// workers rather than simulated rows.

// SleepArgs: a healthy job that runs for a while in steps of
// ProgressEverySeconds (default 1 s), reports progress after each step, and
// resumes from the last step an earlier attempt reported (heartbeat.ResumeFrom).
// LogSteps logs every step done, so tests can count steps done twice.
// OOMAtStep and FreezeAtStep make a run that did not resume eat memory until
// it is killed, or SIGSTOP its own process, once that step is done: a run that
// resumes from an earlier attempt's checkpoint goes on healthy.
type SleepArgs struct {
	Seconds              float64 `json:"seconds"`
	ProgressEverySeconds float64 `json:"progress_every_seconds,omitempty"`
	LogSteps             bool    `json:"log_steps,omitempty"`
	OOMAtStep            int     `json:"oom_at_step,omitempty"`
	FreezeAtStep         int     `json:"freeze_at_step,omitempty"`
}

func (SleepArgs) Kind() string { return "sleep" }

// HangArgs: a job that blocks until its context is cancelled, or forever
// (deaf to cancellation, as a buggy job is) when IgnoreCancel is set.
type HangArgs struct {
	IgnoreCancel bool `json:"ignore_cancel,omitempty"`
}

func (HangArgs) Kind() string { return "hang" }

// CrashArgs: a job that takes the whole process down with a non-zero exit code.
type CrashArgs struct {
	ExitCode     int     `json:"exit_code,omitempty"`
	AfterSeconds float64 `json:"after_seconds,omitempty"`
}

func (CrashArgs) Kind() string { return "crash" }

// EatArgs: a job that allocates and touches memory until it is killed.
type EatArgs struct {
	MBPerStep int `json:"mb_per_step,omitempty"`
	StepMS    int `json:"step_ms,omitempty"`
}

func (EatArgs) Kind() string { return "eat" }

// StallArgs: stuck business logic. The job reports progress for a while, then
// stops progressing while the process (and its heartbeat) stays alive.
type StallArgs struct {
	ProgressForSeconds float64 `json:"progress_for_seconds,omitempty"`
	IgnoreCancel       bool    `json:"ignore_cancel,omitempty"`
}

func (StallArgs) Kind() string { return "stall" }

// FreezeArgs: a frozen process. The job stops its own process with SIGSTOP;
// nothing in it runs (no heartbeat either) until someone sends SIGCONT.
type FreezeArgs struct {
	AfterSeconds float64 `json:"after_seconds,omitempty"`
}

func (FreezeArgs) Kind() string { return "freeze" }

// kinds maps each kind name to a decoder of its JSON args, for `worker insert`.
var kinds = map[string]func([]byte) (river.JobArgs, error){
	"sleep":  decodeArgs[SleepArgs],
	"hang":   decodeArgs[HangArgs],
	"crash":  decodeArgs[CrashArgs],
	"eat":    decodeArgs[EatArgs],
	"stall":  decodeArgs[StallArgs],
	"freeze": decodeArgs[FreezeArgs],
}

func kindNames() string {
	names := make([]string, 0, len(kinds))
	for name := range kinds {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// decodeArgs parses strictly: a misspelt field is an error, not a silent default.
func decodeArgs[T river.JobArgs](raw []byte) (river.JobArgs, error) {
	var args T
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&args); err != nil {
		return nil, fmt.Errorf("args for kind %q: %w", args.Kind(), err)
	}
	return args, nil
}

// tame, set by WORKER_TAME, makes this worker finish the misbehaving kinds
// (hang, crash, eat, stall, freeze) at once: tests start a tame pod to show
// that a rescued job completes on another worker.
var tame bool

func newWorkers(logger *slog.Logger) *river.Workers {
	workers := river.NewWorkers()
	river.AddWorker(workers, &sleepWorker{logger: logger})
	river.AddWorker(workers, &hangWorker{})
	river.AddWorker(workers, &crashWorker{logger: logger})
	river.AddWorker(workers, &eatWorker{logger: logger})
	river.AddWorker(workers, &stallWorker{})
	river.AddWorker(workers, &freezeWorker{logger: logger})
	return workers
}

type sleepWorker struct {
	river.WorkerDefaults[SleepArgs]
	logger *slog.Logger
}

// sleepProgress is the sleep job's checkpoint: steps done of steps.
type sleepProgress struct {
	Step  int `json:"step"`
	Steps int `json:"steps"`
}

func (w *sleepWorker) Work(ctx context.Context, job *river.Job[SleepArgs]) error {
	total := seconds(job.Args.Seconds)
	every := seconds(job.Args.ProgressEverySeconds)
	if every <= 0 {
		every = time.Second
	}
	steps := int((total + every - 1) / every)
	var done sleepProgress
	resumed, err := heartbeat.ResumeFrom(job.JobRow, &done)
	if err != nil {
		return err
	}
	start := min(max(done.Step, 0), steps)
	if resumed {
		w.logger.Info("sleep job resumes", "job_id", job.ID, "attempt", job.Attempt, "from_step", start, "steps", steps)
	}
	reportProgress(ctx, sleepProgress{Step: start, Steps: steps})
	for step := start + 1; step <= steps; step++ {
		// The last step takes what is left of the total.
		length := min(every, total-time.Duration(step-1)*every)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(length):
		}
		if job.Args.LogSteps {
			w.logger.Info("sleep step done", "job_id", job.ID, "attempt", job.Attempt, "step", step)
		}
		// Sleeping is durable work as soon as it is done: the step is a checkpoint.
		reportProgress(ctx, sleepProgress{Step: step, Steps: steps})
		if !resumed && step == job.Args.OOMAtStep {
			// Give the checkpoint a moment to be written (at most once a second), then die.
			time.Sleep(1500 * time.Millisecond)
			eatUntilKilled(ctx, w.logger, job.ID, 16, 50*time.Millisecond)
			return ctx.Err()
		}
		if !resumed && step == job.Args.FreezeAtStep {
			time.Sleep(1500 * time.Millisecond)
			w.logger.Warn("sleep job stops its own process (SIGSTOP)", "job_id", job.ID, "step", step)
			if err := syscall.Kill(os.Getpid(), syscall.SIGSTOP); err != nil {
				return fmt.Errorf("freeze: %w", err)
			}
		}
	}
	return nil
}

type hangWorker struct {
	river.WorkerDefaults[HangArgs]
}

func (w *hangWorker) Work(ctx context.Context, job *river.Job[HangArgs]) error {
	if tame {
		return nil
	}
	if job.Args.IgnoreCancel {
		select {}
	}
	<-ctx.Done()
	return ctx.Err()
}

type crashWorker struct {
	river.WorkerDefaults[CrashArgs]
	logger *slog.Logger
}

func (w *crashWorker) Work(ctx context.Context, job *river.Job[CrashArgs]) error {
	if tame {
		return nil
	}
	code := job.Args.ExitCode
	if code <= 0 || code > 255 {
		code = 3
	}
	time.Sleep(seconds(job.Args.AfterSeconds))
	w.logger.Error("crash job exits the process", "job_id", job.ID, "exit_code", code)
	os.Exit(code)
	return nil
}

type eatWorker struct {
	river.WorkerDefaults[EatArgs]
	logger *slog.Logger
}

func (w *eatWorker) Work(ctx context.Context, job *river.Job[EatArgs]) error {
	if tame {
		return nil
	}
	stepMB := job.Args.MBPerStep
	if stepMB <= 0 {
		stepMB = 16
	}
	step := time.Duration(job.Args.StepMS) * time.Millisecond
	if step <= 0 {
		step = 100 * time.Millisecond
	}
	eatUntilKilled(ctx, w.logger, job.ID, stepMB, step)
	return ctx.Err()
}

// eatUntilKilled allocates and touches stepMB every step until the job's
// context ends (or, under a memory limit, the kernel kills the process).
func eatUntilKilled(ctx context.Context, logger *slog.Logger, jobID int64, stepMB int, step time.Duration) {
	var eaten [][]byte
	for {
		chunk := make([]byte, stepMB<<20)
		// Touch every page so the memory is resident, not just reserved.
		for i := 0; i < len(chunk); i += 4096 {
			chunk[i] = 1
		}
		eaten = append(eaten, chunk)
		logger.Info("eat job holds memory", "job_id", jobID, "mb", len(eaten)*stepMB)
		select {
		case <-ctx.Done():
			return
		case <-time.After(step):
		}
	}
}

type stallWorker struct {
	river.WorkerDefaults[StallArgs]
}

func (w *stallWorker) Work(ctx context.Context, job *river.Job[StallArgs]) error {
	if tame {
		return nil
	}
	progressUntil := time.Now().Add(seconds(job.Args.ProgressForSeconds))
	for step := 0; time.Now().Before(progressUntil); step++ {
		reportProgress(ctx, map[string]any{"step": step})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Second, time.Until(progressUntil))):
		}
	}
	// From here on the logic is stuck: no more progress, while the process
	// (and the middleware's beats) stay alive.
	if job.Args.IgnoreCancel {
		select {}
	}
	<-ctx.Done()
	return ctx.Err()
}

type freezeWorker struct {
	river.WorkerDefaults[FreezeArgs]
	logger *slog.Logger
}

func (w *freezeWorker) Work(ctx context.Context, job *river.Job[FreezeArgs]) error {
	if tame {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(seconds(job.Args.AfterSeconds)):
	}
	w.logger.Warn("freeze job stops its own process (SIGSTOP)", "job_id", job.ID, "pid", os.Getpid())
	if err := syscall.Kill(os.Getpid(), syscall.SIGSTOP); err != nil {
		return fmt.Errorf("freeze: %w", err)
	}
	// Continued by SIGCONT: the job finishes normally.
	return nil
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}
