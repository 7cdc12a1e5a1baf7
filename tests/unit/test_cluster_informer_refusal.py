"""What the log says when the apiserver refuses an informer's listing or watch."""

import pytest
from kubernetes.client.exceptions import ApiException

from lifeguard.cluster.informer import describe_refusal


@pytest.mark.parametrize(
    ("status", "reason", "said", "hint"),
    [
        (403, "Forbidden", "HTTP 403 Forbidden", "may not list and watch them"),
        (401, "Unauthorized", "HTTP 401 Unauthorized", "credentials were refused"),
        (500, "Internal Server Error", "HTTP 500 Internal Server Error", None),
        (429, "Too Many Requests", "HTTP 429 Too Many Requests", None),
    ],
)
def test_a_refusal_names_its_status_and_what_waiting_will_not_end(
    status: int, reason: str, said: str, hint: str | None
) -> None:
    text = describe_refusal(ApiException(status=status, reason=reason))

    assert text.startswith(said)
    if hint is None:
        assert text == said  # an outage's answer: waiting ends it
    else:
        assert hint in text
