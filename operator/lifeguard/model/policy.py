"""The JobPolicy resource: spec, and the envelope that kubectl and kopf see."""

from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from lifeguard.model.actions import ActionsSpec
from lifeguard.model.base import ApiModel, Duration
from lifeguard.model.client_id import DEFAULT_CLIENT_ID_PATTERN
from lifeguard.model.duration import parse_duration
from lifeguard.model.enums import Unattributed
from lifeguard.model.heartbeat import BEATLESS_PROBLEM, HeartbeatSpec
from lifeguard.model.limits import AdaptiveSpec, Tier
from lifeguard.model.observation import DEFAULT_CONTAINER_ANNOTATION
from lifeguard.model.rules import Rule, check, checker, crd_rules
from lifeguard.model.safety import SafetySpec
from lifeguard.model.selectors import JobSelector, LabelSelector
from lifeguard.model.status import JobPolicyStatus

GROUP = "lifeguard.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "JobPolicy"
PLURAL = "jobpolicies"
SINGULAR = "jobpolicy"
SHORT_NAMES = ("jp",)
CATEGORIES = ("lifeguard",)

MAX_TIERS = 20

# A container's name (a DNS label).
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Kubernetes object names (a Secret's name is a DNS subdomain).
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Secret data keys.
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
# A PostgreSQL identifier as River accepts a schema name (unquoted).
SCHEMA_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


class SecretKeyRef(ApiModel):
    """A key of a Secret in the policy's namespace."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)] = Field(
        description="The Secret's name, in the JobPolicy's namespace."
    )
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY)] = Field(
        "url", description="The key whose value is the database URL."
    )


class DatabaseSpec(ApiModel):
    """The PostgreSQL database that holds River's tables."""

    secret_ref: SecretKeyRef = Field(
        description=(
            "The Secret key holding a libpq URL (postgres://user:pass@host:5432/db?sslmode=...)."
        )
    )
    schema_: Annotated[str, Field(min_length=1, max_length=63, pattern=SCHEMA_NAME)] | None = Field(
        None,
        alias="schema",
        description="The schema of River's tables. Unset: the connection's search_path.",
    )


NAMES_POD_GROUP: Rule[str] = Rule(
    "self.contains('(?P<pod>')",
    "clientIdPattern must contain a named group (?P<pod>...)",
    lambda pattern: "(?P<pod>" in pattern,
)


class WorkersSpec(ApiModel):
    """Which pods run the policy's workers, and how to find a job's pod from its client ID."""

    pod_selector: LabelSelector = Field(
        description=(
            "Selects the worker pods. Lifeguard only attributes jobs to, and only restarts,"
            " pods this selector matches."
        )
    )
    client_id_pattern: Annotated[
        str,
        Field(min_length=1, max_length=1024, json_schema_extra=crd_rules(NAMES_POD_GROUP)),
        AfterValidator(checker(NAMES_POD_GROUP)),
    ] = Field(
        DEFAULT_CLIENT_ID_PATTERN,
        description=(
            "A regular expression (Python syntax) applied to the River client ID that fetched a"
            " job (the last of attempted_by). Its named group `pod` captures the pod name, with"
            " '.' written as '_'; an optional group `started` captures the client start time as"
            " YYYY_MM_DDTHH_MM_SS_UUUUUU. The default matches River's default client ID"
            " (hostname, at most 60 characters, then the start time)."
        ),
    )
    unattributed: Unattributed = Field(
        Unattributed.IGNORE,
        description=(
            "Jobs whose client ID maps to no pod in any namespace the operator watches (a"
            " worker outside the cluster, a custom client ID, an unwatched namespace). A job"
            " is judged only by a policy in the namespace of the pod that runs it; such a job"
            " has no namespace, so only a policy that says Judge judges it (the oldest such"
            " policy on the same database, if several). Ignore (default) never acts on a job"
            " that may belong to another team, at the price that a dead worker outside the"
            " cluster is left to River's own rescuer. Judge: this policy judges them as"
            " pod-less (Stale when their beats stop)."
        ),
    )
    container: Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)] | None = Field(
        None,
        description=(
            "The name of the container that runs the River client. Only this container's"
            " exits, restarts and OOM kills decide a job's verdict; other containers"
            " (sidecars such as database or mesh proxies and log shippers, including native"
            " sidecars, i.e. init containers with restartPolicy Always) never do by"
            " themselves, they are only noted in verdict messages and `lifeguard explain`."
            " A pod that dies is dead whichever container caused it. Unset: the pod's only"
            " container; else the container named by the pod's"
            f" `{DEFAULT_CONTAINER_ANNOTATION}` annotation; else the pod's first container."
        ),
    )


def _stale_after_ms(heartbeat: str) -> str:
    """CEL: a heartbeat object's effective staleAfter in milliseconds."""
    return (
        f"(has({heartbeat}.staleAfter) ? duration({heartbeat}.staleAfter).getMilliseconds()"
        f" : duration({heartbeat}.interval).getMilliseconds() * {heartbeat}.missedBeats)"
    )


DEFAULT_SCAN_MAX_JOBS = 10_000


class ScanSpec(ApiModel):
    """How much of the database one scan reads."""

    max_jobs: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        DEFAULT_SCAN_MAX_JOBS,
        description=(
            "The most running jobs one scan reads and judges, oldest first (a scan of 100k jobs"
            " takes about a second). Beyond it the Ready condition says how many were left"
            " unread, and the circuit breaker still counts every running job."
        ),
    )


class JobPolicySpec(ApiModel):
    """How Lifeguard watches, judges and rescues one set of River jobs."""

    model_config = ConfigDict(
        json_schema_extra=lambda schema: schema.update(crd_rules(*_SPEC_RULES))
    )

    database: DatabaseSpec = Field(description="Where River's tables are.")
    selector: JobSelector = Field(
        JobSelector(),
        description=(
            "Which running jobs this policy covers. Values within a list are alternatives;"
            " lists combine with AND. Empty: every running job."
        ),
    )
    workers: WorkersSpec = Field(description="The pods that run the jobs.")
    heartbeat: HeartbeatSpec = Field(
        HeartbeatSpec(),
        description=(
            "How workers prove that their process is alive (beats) and that their work moves"
            " (progress), and when a job counts as stale or stuck."
        ),
    )
    tiers: Annotated[list[Tier], Field(max_length=MAX_TIERS)] = Field(
        default_factory=list,
        description=(
            "Thresholds for classes of jobs (e.g. tight for priority 1, loose for batch kinds)."
            " The first tier whose match fits a job wins; unset fields fall back to heartbeat"
            " and maxRuntime."
        ),
    )
    max_runtime: Duration | None = Field(
        None,
        description=(
            "Hard ceiling on a job's run time; beyond it the job is Overdue. Must be longer"
            " than the stale threshold. Unset: no ceiling."
        ),
    )
    adaptive: AdaptiveSpec = Field(
        AdaptiveSpec(), description="Runtime limits learned per kind from completed jobs."
    )
    actions: ActionsSpec = Field(ActionsSpec(), description="What to do about each cause.")
    safety: SafetySpec = Field(
        SafetySpec(), description="Dry run, action rate limit and circuit breaker."
    )
    scan_interval: Duration = Field(
        "5s", description="How often running jobs are scanned and judged."
    )
    scan: ScanSpec = Field(ScanSpec(), description="How much of the database one scan reads.")

    @model_validator(mode="after")
    def _limits_consistent(self) -> Self:
        return check(self, _SPEC_RULES)

    def stale_after_seconds(self) -> float:
        """The policy-wide stale threshold: heartbeat.staleAfter, else interval x missedBeats."""
        return self.heartbeat.stale_after_seconds()


def _seconds(duration: str) -> float:
    return parse_duration(duration)


def _runtime_beyond_stale(spec: JobPolicySpec) -> bool:
    return (
        not spec.heartbeat.beats
        or spec.max_runtime is None
        or _seconds(spec.max_runtime) > spec.stale_after_seconds()
    )


def _tiers_stale_beyond_interval(spec: JobPolicySpec) -> bool:
    interval = _seconds(spec.heartbeat.interval)
    return all(t.stale_after is None or _seconds(t.stale_after) > interval for t in spec.tiers)


def _tiers_progress_at_least_interval(spec: JobPolicySpec) -> bool:
    interval = _seconds(spec.heartbeat.interval)
    return all(
        t.progress_timeout is None or _seconds(t.progress_timeout) >= interval for t in spec.tiers
    )


def _tiers_runtime_beyond_stale(spec: JobPolicySpec) -> bool:
    stale_after = spec.stale_after_seconds()
    return not spec.heartbeat.beats or all(
        t.max_runtime is None or t.stale_after is not None or _seconds(t.max_runtime) > stale_after
        for t in spec.tiers
    )


def _tiers_without_beat_thresholds(spec: JobPolicySpec) -> bool:
    return spec.heartbeat.beats or all(
        t.stale_after is None and t.progress_timeout is None for t in spec.tiers
    )


# Runtime limits are compared with the stale threshold only when workers beat.
_BEATLESS = "self.heartbeat.store == 'None'"

_SPEC_RULES: tuple[Rule[JobPolicySpec], ...] = (
    Rule(
        f"{_BEATLESS} || !has(self.maxRuntime) || duration(self.maxRuntime).getMilliseconds()"
        f" > {_stale_after_ms('self.heartbeat')}",
        "maxRuntime must be longer than heartbeat.staleAfter (or interval x missedBeats)",
        _runtime_beyond_stale,
        ".maxRuntime",
    ),
    Rule(
        "!has(self.tiers) || self.tiers.all(t, !has(t.staleAfter)"
        " || duration(t.staleAfter) > duration(self.heartbeat.interval))",
        "tiers[].staleAfter must be longer than heartbeat.interval",
        _tiers_stale_beyond_interval,
        ".tiers",
    ),
    Rule(
        "!has(self.tiers) || self.tiers.all(t, !has(t.progressTimeout)"
        " || duration(t.progressTimeout) >= duration(self.heartbeat.interval))",
        "tiers[].progressTimeout must be at least heartbeat.interval",
        _tiers_progress_at_least_interval,
        ".tiers",
    ),
    Rule(
        f"{_BEATLESS} || !has(self.tiers) || self.tiers.all(t, !has(t.maxRuntime)"
        " || has(t.staleAfter)"
        f" || duration(t.maxRuntime).getMilliseconds() > {_stale_after_ms('self.heartbeat')})",
        "tiers[].maxRuntime must be longer than the tier's staleAfter (or heartbeat.staleAfter)",
        _tiers_runtime_beyond_stale,
        ".tiers",
    ),
    Rule(
        f"!({_BEATLESS}) || !has(self.tiers)"
        " || self.tiers.all(t, !has(t.staleAfter) && !has(t.progressTimeout))",
        f"tiers[].staleAfter and tiers[].progressTimeout {BEATLESS_PROBLEM}",
        _tiers_without_beat_thresholds,
        ".tiers",
    ),
)


class JobPolicy(ApiModel):
    """The whole resource, as read from a manifest or the apiserver."""

    model_config = ConfigDict(extra="ignore")

    api_version: Literal["lifeguard.dev/v1alpha1"] = "lifeguard.dev/v1alpha1"
    kind: Literal["JobPolicy"] = "JobPolicy"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: JobPolicySpec
    status: JobPolicyStatus | None = None
