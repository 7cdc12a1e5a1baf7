"""The verdict table of DESIGN.md §4, one row per behaviour."""

import pytest
from builders import JobBuilder, PodBuilder, node, owner_job, pod, running_job

from lifeguard.model.client_id import client_prefix
from lifeguard.model.enums import Cause
from lifeguard.verdict import decide

H = Cause.HEALTHY
S = Cause.STARTING
INFRA = Cause.INFRASTRUCTURE_DEATH
OOM = Cause.RESOURCE_EXHAUSTED
CRASH = Cause.APPLICATION_CRASH
UNRESPONSIVE = Cause.UNRESPONSIVE
STUCK = Cause.STUCK
OVERDUE = Cause.OVERDUE
STALE = Cause.STALE


def case(name: str, job: JobBuilder, cause: Cause, reason: str) -> object:
    return pytest.param(job, cause, reason, id=name)


HEARTBEATS = [
    case("fresh_beat_on_running_pod_is_healthy", running_job(), H, "BeatFresh"),
    case("beat_exactly_at_threshold_is_still_fresh", running_job().beat_age(30), H, "BeatFresh"),
    case(
        "no_beat_within_startup_grace_is_starting",
        running_job(running_for=20).no_beat(),
        S,
        "NoBeatYet",
    ),
    case(
        "no_beat_past_startup_grace_is_unresponsive",
        running_job(running_for=90).no_beat(),
        UNRESPONSIVE,
        "NoBeatYet",
    ),
    case(
        "no_beat_past_grace_counts_as_stale_even_below_stale_after",
        running_job(running_for=90).no_beat().stale_after(300),
        UNRESPONSIVE,
        "NoBeatYet",
    ),
    case(
        "stale_beat_on_running_pod_on_ready_node_is_unresponsive",
        running_job().beat_age(45),
        UNRESPONSIVE,
        "BeatStale",
    ),
    case(
        "stale_beat_with_unobserved_nodes_is_unresponsive",
        running_job().beat_age(45).node_is(node().not_ready()).nodes_unobserved(),
        UNRESPONSIVE,
        "BeatStale",
    ),
    case(
        "stale_beat_on_node_with_unknown_readiness_is_unresponsive",
        running_job().beat_age(45).node_is(node().ready_unknown()),
        UNRESPONSIVE,
        "BeatStale",
    ),
    case(
        "stale_beat_with_stale_progress_is_unresponsive_not_stuck",
        running_job().beat_age(45).progress_timeout(60).progress_age(600),
        UNRESPONSIVE,
        "BeatStale",
    ),
    case(
        "stale_beat_beyond_max_runtime_is_unresponsive_not_overdue",
        running_job(running_for=7200).beat_age(45).max_runtime(3600),
        UNRESPONSIVE,
        "BeatStale",
    ),
]

NO_POD = [
    case(
        "stale_beat_without_attributable_pod_is_stale",
        running_job().unattributed().beat_age(45),
        STALE,
        "BeatStale",
    ),
    case(
        "fresh_beat_without_attributable_pod_is_healthy",
        running_job().unattributed(),
        H,
        "BeatFresh",
    ),
    case(
        "no_beat_past_grace_without_attributable_pod_is_stale",
        running_job(running_for=90).unattributed().no_beat(),
        STALE,
        "NoBeatYet",
    ),
    case(
        "stale_beat_of_pod_unknown_to_the_cluster_is_stale_no_pod",
        running_job().pod_unknown().beat_age(45),
        STALE,
        "NoPod",
    ),
    case(
        "stale_beat_of_a_pod_the_pod_selector_leaves_out_is_stale_pod_not_selected",
        running_job().pod_not_selected().beat_age(45),
        STALE,
        "PodNotSelected",
    ),
    case(
        "fresh_beat_of_pod_unknown_to_the_cluster_is_healthy",
        running_job().pod_unknown(),
        H,
        "BeatFresh",
    ),
]

POD_DEATH = [
    case(
        "oom_killed_pod_is_resource_exhausted",
        running_job().on(pod().oom_killed()),
        OOM,
        "OOMKilled",
    ),
    case(
        "oom_killed_pod_with_fresh_beat_is_resource_exhausted_at_once",
        running_job().beat_age(1).on(pod().oom_killed()),
        OOM,
        "OOMKilled",
    ),
    case(
        "oom_killed_and_restarted_container_is_resource_exhausted",
        running_job().on(pod().restarted(code=137, reason="OOMKilled")),
        OOM,
        "OOMKilled",
    ),
    case(
        "deleted_pod_whose_container_was_oom_killed_is_resource_exhausted",
        running_job().on(pod().oom_killed().deleted()),
        OOM,
        "OOMKilled",
    ),
    case(
        "oom_kill_before_the_client_started_is_not_this_jobs_death",
        running_job()
        .client_started(590)
        .on(pod().restarted(ago_s=600, code=137, reason="OOMKilled")),
        H,
        "BeatFresh",
    ),
    case(
        "pod_evicted_through_the_eviction_api_is_infrastructure_death",
        running_job().on(pod().killed(15).disrupted("EvictionByEvictionAPI").deleted()),
        INFRA,
        "Evicted",
    ),
    case(
        "pod_evicted_by_the_kubelet_is_evicted_not_killed",
        running_job().on(pod().evicted_by_kubelet()),
        INFRA,
        "Evicted",
    ),
    case(
        "pod_preempted_by_the_scheduler_is_preempted",
        running_job().on(pod().killed(15).disrupted("PreemptionByScheduler").deleted()),
        INFRA,
        "Preempted",
    ),
    case(
        "pod_preempted_by_the_kubelet_is_preempted",
        running_job().on(pod().killed(9).status_reason("Preempting")),
        INFRA,
        "Preempted",
    ),
    case(
        "pod_deleted_by_the_taint_manager_is_node_lost",
        running_job().on(pod().disrupted("DeletionByTaintManager").deleted()),
        INFRA,
        "NodeLost",
    ),
    case(
        "pod_collected_by_pod_gc_is_pod_gc",
        running_job().on(pod().disrupted("DeletionByPodGC").deleted()),
        INFRA,
        "PodGC",
    ),
    case(
        "pod_stopped_by_graceful_node_shutdown_is_node_shutdown",
        running_job().on(pod().killed(15).status_reason("Terminated")),
        INFRA,
        "NodeShutdown",
    ),
    case(
        "deleted_pod_without_a_reason_is_pod_deleted",
        running_job().on(pod().deleted()),
        INFRA,
        "PodDeleted",
    ),
    case(
        "deleted_pod_whose_worker_crashed_on_sigterm_is_pod_deleted_not_crash",
        running_job().on(pod().crashed(1).deleted()),
        INFRA,
        "PodDeleted",
    ),
    case(
        "terminating_pod_whose_containers_stopped_is_pod_deleted",
        running_job().on(pod().exited(0, reason="Completed", phase="Running").terminating()),
        INFRA,
        "PodDeleted",
    ),
    case(
        "sigkill_without_oom_is_killed",
        running_job().on(pod().killed(9)),
        INFRA,
        "Killed",
    ),
    case(
        "sigterm_from_outside_is_killed",
        running_job().on(pod().killed(15)),
        INFRA,
        "Killed",
    ),
    case(
        "non_zero_exit_is_application_crash",
        running_job().on(pod().crashed(1)),
        CRASH,
        "Error",
    ),
    case(
        "segfault_is_application_crash",
        running_job().on(pod().killed(11)),
        CRASH,
        "FatalSignal",
    ),
    case(
        "crash_looping_container_is_application_crash",
        running_job().on(pod().crash_looping(code=2)),
        CRASH,
        "Error",
    ),
    case(
        "container_exiting_zero_under_a_running_job_is_container_exited",
        running_job().on(pod().exited(0, reason="Completed", phase="Succeeded")),
        INFRA,
        "ContainerExited",
    ),
    case(
        "container_restarted_after_clean_exit_is_container_restarted",
        running_job().on(pod().restarted(code=0, reason="Completed")),
        INFRA,
        "ContainerRestarted",
    ),
    case(
        "container_started_after_the_client_is_container_restarted",
        running_job().on(pod().started(ago_s=30)),
        INFRA,
        "ContainerRestarted",
    ),
    case(
        "container_started_a_second_after_the_client_is_not_a_restart",
        running_job().client_started(100).on(pod().started(ago_s=99)),
        H,
        "BeatFresh",
    ),
    case(
        "restart_before_a_client_that_took_the_job_is_not_this_jobs_death",
        running_job().client_started(25).on(pod().restarted(ago_s=30)),
        H,
        "BeatFresh",
    ),
    case(
        "restart_after_attempted_at_counts_when_client_start_is_unknown",
        running_job()
        .client_started(None)
        .on(pod().restarted(ago_s=10, code=137, reason="OOMKilled")),
        OOM,
        "OOMKilled",
    ),
    case(
        "restart_before_attempted_at_is_ignored_when_client_start_is_unknown",
        running_job(running_for=120).client_started(None).on(pod().restarted(ago_s=300)),
        H,
        "BeatFresh",
    ),
    case(
        "tombstone_of_an_earlier_pod_with_the_same_name_is_not_evidence",
        running_job().client_started(20).on(pod("worker-0").deleted(ago_s=60)),
        H,
        "BeatFresh",
    ),
    case(
        "tombstone_of_an_earlier_pod_with_stale_beat_leaves_the_job_stale_no_pod",
        running_job().beat_age(45).client_started(20).on(pod("worker-0").deleted(ago_s=60)),
        STALE,
        "NoPod",
    ),
    case(
        "failed_pod_without_container_statuses_is_pod_failed",
        running_job().on(pod().no_containers().phase("Failed")),
        INFRA,
        "PodFailed",
    ),
    case(
        "sidecar_exit_is_ignored_when_the_worker_container_is_named",
        running_job().worker_is("worker").on(pod().with_sidecar().sidecar_exited()),
        H,
        "BeatFresh",
    ),
]

# Only the worker's container decides: workers.container, else the pod's only container, else
# its kubectl.kubernetes.io/default-container annotation, else its first container.
SIDECARS = [
    case(
        "sidecar_exit_is_not_the_workers_death_when_no_container_is_named",
        running_job().on(pod().with_sidecar().sidecar_exited()),
        H,
        "BeatFresh",
    ),
    case(
        "sidecar_restarting_is_not_the_workers_death",
        running_job().on(pod().with_sidecar().sidecar_restarted(times=4)),
        H,
        "BeatFresh",
    ),
    case(
        "sidecar_oom_kill_is_not_resource_exhausted",
        running_job().on(pod().with_sidecar().sidecar_exited(137, reason="OOMKilled")),
        H,
        "BeatFresh",
    ),
    case(
        "native_sidecar_restarting_is_not_the_workers_death",
        running_job().on(pod().with_sidecar(native=True).sidecar_restarted(times=3)),
        H,
        "BeatFresh",
    ),
    case(
        "sidecar_restart_with_a_stale_beat_is_still_judged_by_the_beat",
        running_job().beat_age(45).on(pod().with_sidecar().sidecar_restarted()),
        UNRESPONSIVE,
        "BeatStale",
    ),
    case(
        "worker_crash_next_to_a_sidecar_is_application_crash",
        running_job().on(pod().crashed(1).with_sidecar()),
        CRASH,
        "Error",
    ),
    case(
        "first_container_is_the_worker_without_annotation",
        running_job().on(pod().exited(1, phase="Running").sidecar_first("proxy")),
        H,
        "BeatFresh",
    ),
    case(
        "annotated_default_container_is_the_worker",
        running_job().on(pod().crashed(1).sidecar_first("proxy", annotated="worker")),
        CRASH,
        "Error",
    ),
    case(
        "named_worker_container_decides_even_when_it_is_not_the_default",
        running_job().worker_is("worker").on(pod().crashed(1).sidecar_first("proxy")),
        CRASH,
        "Error",
    ),
    case(
        "named_container_that_looks_like_a_sidecar_is_the_worker",
        running_job().worker_is("proxy").on(pod().with_sidecar().sidecar_exited()),
        CRASH,
        "Error",
    ),
    case(
        "deleted_pod_whose_sidecar_exited_is_dead_all_the_same",
        running_job().on(pod().with_sidecar().sidecar_exited().deleted()),
        INFRA,
        "PodDeleted",
    ),
    case(
        "evicted_pod_with_a_sidecar_is_evicted",
        running_job().on(
            pod().with_sidecar().killed(15).disrupted("EvictionByEvictionAPI").deleted()
        ),
        INFRA,
        "Evicted",
    ),
]

# Whether an exit ended the job is judged against the attempt, not the process's start.
ATTEMPTS = [
    case(
        "worker_restart_before_the_attempt_began_is_not_this_attempts_death",
        running_job(running_for=10).client_started(600).on(pod().restarted(ago_s=30)),
        H,
        "BeatFresh",
    ),
    case(
        "worker_restart_after_the_attempt_began_is_this_attempts_death",
        running_job(running_for=60).client_started(600).on(pod().restarted(ago_s=30)),
        CRASH,
        "Error",
    ),
]

# Pods owned by a batch/v1 Job: the Job says why the controller deleted them.
JOBS = [
    case(
        "pod_deleted_because_its_job_was_suspended_is_preempted",
        running_job().on(pod().killed(15).deleted()).owned_by(owner_job().suspended()),
        INFRA,
        "Preempted",
    ),
    case(
        "pod_deleted_because_its_job_ran_past_its_deadline_is_deadline_exceeded",
        running_job().on(pod().killed(15).deleted()).owned_by(owner_job().deadline_exceeded()),
        INFRA,
        "DeadlineExceeded",
    ),
    case(
        "pod_deleted_with_its_job_is_job_deleted",
        running_job().on(pod().deleted()).owned_by(owner_job().deleted()),
        INFRA,
        "JobDeleted",
    ),
    case(
        "pod_deleted_while_its_job_runs_on_is_pod_deleted",
        running_job().on(pod().deleted()).owned_by(owner_job()),
        INFRA,
        "PodDeleted",
    ),
    case(
        "eviction_of_a_suspended_jobs_pod_is_still_evicted",
        running_job()
        .on(pod().disrupted("EvictionByEvictionAPI").deleted())
        .owned_by(owner_job().suspended()),
        INFRA,
        "Evicted",
    ),
    case(
        "terminating_pod_of_a_suspended_job_whose_worker_still_runs_is_healthy",
        running_job().on(pod().terminating()).owned_by(owner_job().suspended()),
        H,
        "PodTerminating",
    ),
    case(
        "pod_killed_by_its_own_active_deadline_is_deadline_exceeded",
        running_job().on(pod().killed(9).status_reason("DeadlineExceeded", "Pod was active")),
        INFRA,
        "DeadlineExceeded",
    ),
    case(
        "worker_crash_in_a_job_past_its_backoff_limit_is_application_crash",
        running_job().on(pod().crashed(1)).owned_by(owner_job().failed()),
        CRASH,
        "Error",
    ),
]

# A Job's pod whose name is longer than River keeps in a client ID: the client names a prefix.
LONG_POD_NAME = "nightly-invoice-reconciliation-for-every-tenant-of-the-fleet-29304811-x7k2p"

# Lifeguard's own restart: the pod's death afterwards keeps the cause Lifeguard acted on.
OWN_ACTIONS = [
    case(
        "pod_lifeguard_evicted_is_the_cause_it_was_evicted_for",
        running_job()
        .beat_age(40)
        .lifeguard_restarted()
        .on(pod().killed(15).disrupted("EvictionByEvictionAPI").deleted()),
        UNRESPONSIVE,
        "BeatStale",
    ),
    case(
        "pod_lifeguard_restarted_whose_worker_exited_on_sigterm_is_the_original_cause",
        running_job().beat_age(40).lifeguard_restarted().on(pod().crashed(1).terminating()),
        UNRESPONSIVE,
        "BeatStale",
    ),
    case(
        "pod_lifeguard_restarted_and_no_longer_known_is_the_original_cause",
        running_job().beat_age(40).lifeguard_restarted().pod_unknown(),
        UNRESPONSIVE,
        "BeatStale",
    ),
    case(
        "pod_with_a_long_name_lifeguard_restarted_and_no_longer_known_is_the_original_cause",
        running_job()
        .beat_age(40)
        .lifeguard_restarted(pod_name=LONG_POD_NAME)
        .pod_unknown(client_prefix(LONG_POD_NAME)),
        UNRESPONSIVE,
        "BeatStale",
    ),
    case(
        "stuck_job_whose_pod_lifeguard_restarted_stays_stuck",
        running_job()
        .lifeguard_restarted(cause=Cause.STUCK, reason="ProgressStale")
        .on(pod().deleted()),
        STUCK,
        "ProgressStale",
    ),
    case(
        "oom_kill_after_lifeguards_restart_decision_is_still_resource_exhausted",
        running_job().lifeguard_restarted().on(pod().oom_killed()),
        OOM,
        "OOMKilled",
    ),
    case(
        "death_of_another_pod_than_the_one_lifeguard_restarted_keeps_its_verdict",
        running_job().lifeguard_restarted(pod_name="worker-0").on(pod().deleted()),
        INFRA,
        "PodDeleted",
    ),
    case(
        "pod_lifeguard_evicted_by_name_and_uid_is_the_cause_it_was_evicted_for",
        running_job()
        .lifeguard_restarted(pod_uid="uid-worker-1")
        .on(pod().killed(15).disrupted("EvictionByEvictionAPI").deleted()),
        UNRESPONSIVE,
        "BeatStale",
    ),
    case(
        "death_of_a_successor_of_the_same_name_keeps_its_verdict",
        running_job().lifeguard_restarted(pod_uid="uid-of-its-predecessor").on(pod().deleted()),
        INFRA,
        "PodDeleted",
    ),
    case(
        "pod_lifeguard_is_restarting_while_the_worker_still_runs_is_still_unresponsive",
        running_job().beat_age(40).lifeguard_restarted().on(pod().terminating()),
        UNRESPONSIVE,
        "BeatStale",
    ),
]

# heartbeat.store None: pod evidence and run time only, never the beat.
WITHOUT_BEATS = [
    case(
        "job_without_beats_past_the_startup_grace_is_not_unresponsive",
        running_job(running_for=90).without_beats(),
        H,
        "Running",
    ),
    case(
        "job_without_beats_whose_worker_was_oom_killed_is_resource_exhausted",
        running_job().without_beats().on(pod().oom_killed()),
        OOM,
        "OOMKilled",
    ),
    case(
        "job_without_beats_whose_pod_was_deleted_is_infrastructure_death",
        running_job().without_beats().on(pod().deleted()),
        INFRA,
        "PodDeleted",
    ),
    case(
        "job_without_beats_on_a_lost_node_waits_for_pod_evidence",
        running_job().without_beats().node_is(node().not_ready(300)),
        H,
        "Running",
    ),
    case(
        "job_without_beats_without_an_attributable_pod_is_never_stale",
        running_job(running_for=9999).without_beats().unattributed(),
        H,
        "Running",
    ),
]

TERMINATING = [
    case(
        "terminating_pod_with_running_containers_and_fresh_beat_is_healthy",
        running_job().on(pod().terminating()),
        H,
        "PodTerminating",
    ),
    case(
        "terminating_pod_whose_sidecar_stopped_first_is_not_dead",
        running_job().on(pod().with_sidecar().sidecar_exited(code=0).terminating()),
        H,
        "PodTerminating",
    ),
    case(
        "terminating_pod_with_no_beat_yet_is_starting",
        running_job(running_for=20).no_beat().on(pod().terminating()),
        S,
        "PodTerminating",
    ),
    case(
        "terminating_pod_with_running_containers_and_stale_beat_is_unresponsive",
        running_job().beat_age(45).on(pod().terminating()),
        UNRESPONSIVE,
        "BeatStale",
    ),
    case(
        "terminating_pod_whose_container_restarted_under_the_client_is_dead",
        running_job().on(pod().restarted(code=137, reason="OOMKilled").terminating()),
        OOM,
        "OOMKilled",
    ),
    case(
        "taint_manager_deleting_a_pod_with_stale_beat_is_node_lost_without_node_facts",
        running_job()
        .beat_age(45)
        .nodes_unobserved()
        .on(pod().disrupted("DeletionByTaintManager").terminating()),
        INFRA,
        "NodeLost",
    ),
]

NODES = [
    case(
        "silent_kubelet_lease_and_stale_beat_is_node_lost_before_the_node_is_not_ready",
        running_job().beat_age(45).node_is(node().lease_silent_for(35)),
        INFRA,
        "NodeLost",
    ),
    case(
        "recently_renewed_lease_and_stale_beat_is_unresponsive",
        running_job().beat_age(45).node_is(node().lease_silent_for(5)),
        UNRESPONSIVE,
        "BeatStale",
    ),
    case(
        "silent_kubelet_lease_with_fresh_beat_is_still_healthy",
        running_job().node_is(node().lease_silent_for(35)),
        H,
        "BeatFresh",
    ),
    case(
        "not_ready_node_and_stale_beat_is_node_lost",
        running_job().beat_age(45).node_is(node().not_ready()),
        INFRA,
        "NodeLost",
    ),
    case(
        "not_ready_node_and_no_beat_past_grace_is_node_lost",
        running_job(running_for=90).no_beat().node_is(node().not_ready()),
        INFRA,
        "NodeLost",
    ),
    case(
        "not_ready_node_with_fresh_beat_is_still_healthy",
        running_job().node_is(node().not_ready()),
        H,
        "BeatFresh",
    ),
    case(
        "deleted_node_and_stale_beat_is_node_lost",
        running_job().beat_age(45).node_deleted(),
        INFRA,
        "NodeLost",
    ),
    case(
        "oom_kill_on_a_not_ready_node_is_resource_exhausted",
        running_job().beat_age(45).node_is(node().not_ready()).on(pod().oom_killed()),
        OOM,
        "OOMKilled",
    ),
]

PROGRESS_AND_RUNTIME = [
    case(
        "fresh_beat_and_progress_older_than_timeout_is_stuck",
        running_job().progress_timeout(600).progress_age(900),
        STUCK,
        "ProgressStale",
    ),
    case(
        "fresh_progress_is_healthy",
        running_job().progress_timeout(600).progress_age(30),
        H,
        "BeatFresh",
    ),
    case(
        "no_progress_yet_counts_from_the_start",
        running_job(running_for=900).progress_timeout(600).progress_age(None),
        STUCK,
        "ProgressStale",
    ),
    case(
        "no_progress_yet_within_timeout_is_healthy",
        running_job(running_for=300).progress_timeout(600).progress_age(None),
        H,
        "BeatFresh",
    ),
    case(
        "old_progress_is_not_judged_without_progress_timeout",
        running_job().progress_age(99999),
        H,
        "BeatFresh",
    ),
    case(
        "fresh_beat_beyond_max_runtime_is_overdue",
        running_job(running_for=7200).max_runtime(3600),
        OVERDUE,
        "MaxRuntimeExceeded",
    ),
    case(
        "stuck_job_beyond_max_runtime_is_stuck",
        running_job(running_for=7200).max_runtime(3600).progress_timeout(600).progress_age(900),
        STUCK,
        "ProgressStale",
    ),
    case(
        "job_without_beats_beyond_adaptive_limit_is_overdue",
        running_job(running_for=1000).without_beats().adaptive_limit(600),
        OVERDUE,
        "AdaptiveLimitExceeded",
    ),
    case(
        "job_without_beats_beyond_max_runtime_is_overdue",
        running_job(running_for=1000).without_beats().max_runtime(600),
        OVERDUE,
        "MaxRuntimeExceeded",
    ),
    case(
        "job_without_beats_within_limits_is_healthy",
        running_job(running_for=300).without_beats().adaptive_limit(600),
        H,
        "Running",
    ),
    case(
        "job_without_beats_is_never_stale",
        running_job(running_for=100000).without_beats(),
        H,
        "Running",
    ),
    case(
        "adaptive_limit_does_not_judge_beating_jobs",
        running_job(running_for=1000).adaptive_limit(600),
        H,
        "BeatFresh",
    ),
    case(
        "max_runtime_shorter_than_startup_grace_is_overdue_before_first_beat",
        running_job(running_for=40).no_beat().max_runtime(30),
        OVERDUE,
        "MaxRuntimeExceeded",
    ),
]


@pytest.mark.parametrize(
    ("job", "cause", "reason"),
    HEARTBEATS
    + NO_POD
    + POD_DEATH
    + SIDECARS
    + ATTEMPTS
    + JOBS
    + WITHOUT_BEATS
    + OWN_ACTIONS
    + TERMINATING
    + NODES
    + PROGRESS_AND_RUNTIME,
)
def test_verdict(job: JobBuilder, cause: Cause, reason: str) -> None:
    verdict = decide(job.obs())
    assert (verdict.cause, verdict.reason) == (cause, reason), verdict.message


def test_oom_message_names_container_pod_node_exit_code_and_age() -> None:
    verdict = decide(running_job().on(pod("worker-7f", "n2").oom_killed(ago_s=3)).obs())
    assert (
        verdict.message
        == "container worker of pod worker-7f on node n2 was OOMKilled (exit 137) 3s ago"
    )


def test_unresponsive_message_names_beat_age_and_threshold() -> None:
    verdict = decide(running_job().beat_age(45).on(pod("worker-7f", "n2")).obs())
    assert verdict.message == (
        "pod worker-7f on node n2 is running but its last beat was 45s ago (stale after 30s)"
    )


def test_node_lost_message_names_node_and_how_long_it_is_not_ready() -> None:
    verdict = decide(
        running_job()
        .beat_age(45)
        .on(pod("worker-7f", "n2"))
        .node_is(node("n2").not_ready(90))
        .obs()
    )
    assert verdict.message == (
        "pod worker-7f runs on node n2, which is NotReady (NodeStatusUnknown) for 1m30s;"
        " its last beat was 45s ago (stale after 30s)"
    )


def test_stuck_message_names_progress_age_and_timeout() -> None:
    verdict = decide(running_job().progress_timeout(600).progress_age(900).obs())
    assert verdict.message == (
        "pod worker-1 on node n1 still beats, but its last progress was 15m ago (timeout 10m)"
    )


def test_stale_message_names_the_client_when_no_pod_is_attributable() -> None:
    verdict = decide(running_job().unattributed().beat_age(300).obs())
    assert "client laptop-7" in verdict.message
    assert "5m" in verdict.message


def test_only_healthy_and_starting_never_act() -> None:
    assert not decide(running_job().obs()).acts
    assert not decide(running_job(running_for=5).no_beat().obs()).acts
    assert decide(running_job().beat_age(45).obs()).acts


def test_same_observation_gives_the_same_verdict() -> None:
    obs = running_job().beat_age(45).node_is(node().not_ready()).obs()
    assert decide(obs) == decide(obs)


@pytest.mark.parametrize(
    ("job", "evidence_age"),
    [
        pytest.param(running_job().on(pod().oom_killed(ago_s=3)), 3, id="from_the_container_death"),
        pytest.param(running_job().beat_age(45), 15, id="from_when_the_beat_went_stale"),
        pytest.param(
            running_job(running_for=90).no_beat(), 30, id="from_the_end_of_the_startup_grace"
        ),
        pytest.param(
            running_job().beat_age(100).node_is(node().not_ready(for_=20)),
            20,
            id="from_when_node_loss_became_certain",
        ),
        pytest.param(
            running_job(running_for=4000).max_runtime(3600), 400, id="from_the_runtime_limit"
        ),
        pytest.param(running_job(), None, id="none_for_a_healthy_job"),
    ],
)
def test_evidence_age_counts(job: JobBuilder, evidence_age: float | None) -> None:
    assert decide(job.obs()).evidence_age == evidence_age


def test_a_sidecar_restart_is_named_in_the_message_of_a_healthy_job() -> None:
    verdict = decide(
        running_job().on(pod().with_sidecar("cloud-sql-proxy").sidecar_restarted(times=2)).obs()
    )
    assert verdict.cause is H
    assert verdict.notes == ("sidecar cloud-sql-proxy restarted 2 times, last exited with code 1",)
    assert verdict.message.endswith(
        "; sidecar cloud-sql-proxy restarted 2 times, last exited with code 1"
    )


def test_a_job_killed_by_its_jobs_deadline_names_the_job_and_the_limit() -> None:
    verdict = decide(
        running_job()
        .on(pod("mailer-x7k2p").killed(15).deleted())
        .owned_by(owner_job("mailer").deadline_exceeded(30))
        .obs()
    )
    assert verdict.message == (
        "pod mailer-x7k2p on node n1 was deleted; reason DeadlineExceeded: its Job mailer ran"
        " past activeDeadlineSeconds (30s)"
    )


def test_a_failed_job_is_noted_when_it_did_not_decide_the_verdict() -> None:
    verdict = decide(running_job().on(pod().crashed(1)).owned_by(owner_job().failed()).obs())
    assert verdict.notes == (
        "Job mailer failed (BackoffLimitExceeded): no new pod will replace it",
    )


def test_a_pod_lifeguard_restarted_names_the_original_cause_and_the_restart() -> None:
    verdict = decide(
        running_job()
        .lifeguard_restarted(pod_name="mailer", message="no beat for 31s")
        .on(pod("mailer").killed(15).disrupted("EvictionByEvictionAPI").deleted())
        .obs()
    )
    assert (verdict.cause, verdict.reason) == (UNRESPONSIVE, "BeatStale")
    assert verdict.message == "no beat for 31s; Lifeguard restarted pod mailer"


@pytest.mark.parametrize(
    "lost_pod",
    [
        pytest.param(
            pod("mailer").disrupted("EvictionByEvictionAPI").deleted(),
            id="evicted_on_a_not_ready_node",
        ),
        pytest.param(
            pod("mailer").disrupted("EvictionByEvictionAPI").terminating(),
            id="eviction_pending_on_a_not_ready_node",
        ),
        pytest.param(
            pod("mailer").disrupted("DeletionByTaintManager").deleted(),
            id="the_taint_manager_deleted_the_pod",
        ),
    ],
)
def test_a_node_lost_after_lifeguard_asked_for_a_restart_stays_the_cause(
    lost_pod: PodBuilder,
) -> None:
    # The node died first (the beats stopped), Lifeguard judged Unresponsive and asked for a
    # restart that no kubelet carried out; then the node was declared lost. The truth is the
    # node, whose rule counts or refunds the attempt, and the retry is planned by that rule.
    verdict = decide(
        running_job()
        .beat_age(40)
        .lifeguard_restarted(pod_name="mailer", message="no beat for 31s")
        .on(lost_pod)
        .node_is(node().not_ready(for_=20))
        .obs()
    )
    assert (verdict.cause, verdict.reason) == (INFRA, "NodeLost")
    assert verdict.own_action is None
    assert verdict.message.endswith(
        "; Lifeguard restarted pod mailer for Unresponsive/BeatStale, but its node was lost"
        " before the restart took effect"
    )


def test_a_pod_the_selector_leaves_out_is_not_called_unknown() -> None:
    verdict = decide(running_job().pod_not_selected("canary-1").beat_age(45).obs())
    assert verdict.message.startswith(
        "client worker-1_2026_03_01T10_00_01_000000 maps to pod canary-1, which"
        " workers.podSelector does not select (Lifeguard judges it without its pod);"
    )
