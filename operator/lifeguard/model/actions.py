"""What to do about each cause: an action, an optional escalation, and retry details."""

from typing import Self

from pydantic import ConfigDict, Field, model_validator

from lifeguard.model.base import ApiModel, Duration
from lifeguard.model.enums import Action, Backoff, Cause
from lifeguard.model.rules import Rule, check, crd_rules

ESCALATION_DELAY = "2m"


class ActionRule(ApiModel):
    """The response to one cause: `action` at once; `then` if the job still runs `after` later."""

    model_config = ConfigDict(json_schema_extra=lambda schema: schema.update(crd_rules(*_RULES)))

    action: Action = Field(
        description=(
            "What to do at once. Retry: queue the job again, as `backoff` says (or discard it"
            " when attempts are exhausted). Cancel: ask the worker to cancel it through River."
            " RestartPod: evict the pod that runs it. Discard: finalize it as discarded. None:"
            " only report."
        )
    )
    then: Action | None = Field(
        None, description="The escalation when the job is still running `after` the action."
    )
    after: Duration | None = Field(
        None,
        description="How long to wait for the action to work before `then`. Required with then.",
    )
    count_attempt: bool = Field(
        True,
        description=(
            "Whether a retry uses up one of the job's max_attempts. False refunds the attempt,"
            " for failures that were not the job's fault."
        ),
    )
    backoff: Backoff = Field(
        Backoff.RIVER,
        description=(
            "When a retried job runs again. Immediate: at once: the job is made available, as"
            " River's JobRetry does, and idle workers of its queue are woken. River: retryable"
            " after River's default retry backoff (attempt^4 seconds, with jitter)."
        ),
    )
    max_infra_retries: int = Field(
        5,
        ge=0,
        le=100,
        description=(
            "For a rule whose retries refund the attempt (countAttempt false, as"
            " infrastructureDeath's default): how many attempts Lifeguard may refund per job;"
            " beyond it retries count again, so a job cannot loop forever."
        ),
    )

    @model_validator(mode="after")
    def _escalation_complete(self) -> Self:
        return check(self, _RULES)


_RULES: tuple[Rule[ActionRule], ...] = (
    Rule(
        "!has(self.then) || has(self.after)",
        "after is required when then is set",
        lambda rule: rule.then is None or rule.after is not None,
        ".after",
    ),
    Rule(
        "!has(self.after) || has(self.then)",
        "after is only meaningful together with then",
        lambda rule: rule.after is None or rule.then is not None,
        ".after",
    ),
    Rule(
        "!has(self.then) || (self.then != self.action && self.then != 'None')",
        "then must be an action other than action and None",
        lambda rule: rule.then is None or rule.then not in (rule.action, Action.NONE),
        ".then",
    ),
)


def _rule(
    action: Action,
    *,
    then: Action | None = None,
    count_attempt: bool = True,
    backoff: Backoff = Backoff.RIVER,
) -> ActionRule:
    after = ESCALATION_DELAY if then is not None else None
    return ActionRule(
        action=action, then=then, after=after, count_attempt=count_attempt, backoff=backoff
    )


class ActionsSpec(ApiModel):
    """One rule per cause of the verdict table (Healthy and Starting never act)."""

    infrastructure_death: ActionRule = Field(
        _rule(Action.RETRY, count_attempt=False, backoff=Backoff.IMMEDIATE),
        description=(
            "The pod died for a reason outside the job (evicted, preempted, node lost, deleted,"
            " killed). Default: retry at once without counting the attempt, up to"
            " maxInfraRetries times."
        ),
    )
    resource_exhausted: ActionRule = Field(
        _rule(Action.RETRY, backoff=Backoff.IMMEDIATE),
        description="The container was OOMKilled. Default: retry at once, counting the attempt.",
    )
    application_crash: ActionRule = Field(
        _rule(Action.RETRY),
        description=(
            "The container exited non-zero on its own. Default: retry with River's backoff,"
            " counting the attempt."
        ),
    )
    unresponsive: ActionRule = Field(
        _rule(Action.RESTART_POD, then=Action.RETRY),
        description=(
            "The pod runs on a ready node but the job's beats stopped (frozen process)."
            " Default: restart the pod, then retry the job if it is still running after 2m."
        ),
    )
    stuck: ActionRule = Field(
        _rule(Action.CANCEL, then=Action.RESTART_POD),
        description=(
            "Beats are fresh but progress stopped beyond progressTimeout. Default: cancel the"
            " job through River, then restart its pod if it is still running after 2m. The job"
            " ends cancelled: River never retries a job whose cancel was requested, and"
            " neither does Lifeguard."
        ),
    )
    overdue: ActionRule = Field(
        _rule(Action.CANCEL, then=Action.RETRY),
        description=(
            "The job ran longer than maxRuntime (or the adaptive limit). Default: cancel it"
            " through River; if it is still running after 2m, end the attempt. It ends"
            " cancelled: a retry of a job whose cancel was requested finalizes it as cancelled,"
            " as River's rescuer does."
        ),
    )
    stale: ActionRule = Field(
        _rule(Action.RETRY),
        description=(
            "Beats are stale and no pod can be attributed (a worker outside the cluster or a"
            " custom client ID). Default: retry with River's backoff, counting the attempt."
        ),
    )

    def for_cause(self, cause: Cause) -> ActionRule | None:
        """The rule for a cause; None for causes that never act (Healthy, Starting)."""
        rules = {
            Cause.INFRASTRUCTURE_DEATH: self.infrastructure_death,
            Cause.RESOURCE_EXHAUSTED: self.resource_exhausted,
            Cause.APPLICATION_CRASH: self.application_crash,
            Cause.UNRESPONSIVE: self.unresponsive,
            Cause.STUCK: self.stuck,
            Cause.OVERDUE: self.overdue,
            Cause.STALE: self.stale,
        }
        return rules.get(cause)
