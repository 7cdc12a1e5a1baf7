"""Pods and batch/v1 Jobs, listed and watched by Lifeguard itself into the inventory's facts.

Not kopf's watches, for two reasons measured with thousands of pods (docs/performance.md). kopf
keeps a worker per object, and during its initial listing every worker holds its object's whole
body (managedFields included) until the listings of all indexed kinds are complete, and each
finished worker wakes every waiting one: 3,000 pods took 93 s to index, and the bodies alive
meanwhile set a resident-memory high-water mark the process keeps. Here a listing comes in
pages of `PAGE_SIZE`, each body becomes its small facts as soon as it is decoded (in the thread
that reads it), and nothing else of it is kept.

Each informer lists its kind (in pages), then watches from the listing's resourceVersion; a
watch that ends (the server's timeout) resumes from the last version seen, one that expired
(410 Gone) lists again, and a listing replaces what the informer fed before: an object gone
from it is delivered as deleted. Until its first listing is complete, `listed` is not called,
so no scan judges with a partial picture.

While an informer is blind, a pod's death waits for the next scan instead of taking the fast
path. The blind spell after an outage is shortest when a request is already waiting at the
apiserver the moment it can serve again: an apiserver whose watch cache refills after an etcd
restart holds a new watch (and a listing) until the cache is ready and then answers at once,
with every event since the watch's resourceVersion. So a request is given time (a watch its
whole period, a page the apiserver's own 60 s deadline), and nothing retries behind the
informer's back: its client has urllib3's retries off, which otherwise made each timed-out page
three more tries (40 s blind after an etcd restart, with 10 s reads).
"""

import asyncio
import contextlib
import copy
import json
import logging
import random
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from lifeguard.cluster.facts import Body, job_facts, pod_facts
from lifeguard.cluster.kube import KubeClient
from lifeguard.model.observation import OwnerJobFacts, PodFacts

log = logging.getLogger(__name__)

# Objects per listing page: the most decoded bodies alive at once while listing.
PAGE_SIZE = 250
# The apiserver ends a watch after this long (with jitter, as client-go does); it is resumed
# from the last resourceVersion seen, so a quiet watch costs one request per period.
WATCH_SECONDS = 240
# (connect, read) seconds of a listing's page: the apiserver answers by its own deadline (60 s),
# at worst with a timeout, and a page waiting for a watch cache to refill is answered as soon as
# it has.
PAGE_TIMEOUT = (5.0, 65.0)
# Between tries after a failure: while a watch is down its pods' deaths wait for the next scan
# instead of taking the fast path, so the wait stays short (one request per 5 s during an
# apiserver outage).
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 5.0

Facts = TypeVar("Facts", PodFacts, OwnerJobFacts)
Key = tuple[str, str]


@dataclass(frozen=True)
class Kind(Generic[Facts]):
    """A kind of object followed: how to list and watch it, and its facts."""

    plural: str
    api: Callable[[kubernetes.client.ApiClient], Any]
    list_everywhere: str
    list_namespaced: str
    facts: Callable[..., Facts]
    # Whether RBAC may forbid it, in which case it is followed as empty (Jobs).
    optional: bool = False


PODS: Kind[PodFacts] = Kind(
    "pods",
    kubernetes.client.CoreV1Api,
    "list_pod_for_all_namespaces",
    "list_namespaced_pod",
    pod_facts,
)
JOBS: Kind[OwnerJobFacts] = Kind(
    "batch/v1 Jobs",
    kubernetes.client.BatchV1Api,
    "list_job_for_all_namespaces",
    "list_namespaced_job",
    job_facts,
    optional=True,
)


@dataclass(frozen=True)
class Sink(Generic[Facts]):
    """Where an informer's facts go, called on the event loop."""

    # An object listed, added or modified.
    put: Callable[[Facts], None]
    # An object deleted (facts with gone=True).
    drop: Callable[[Facts], None]
    # After a listing of `namespace` (None: every namespace), the objects it fed before and
    # no longer holds, by (namespace, name): they were deleted while nobody watched.
    vanished: Callable[[str | None, set[Key]], Iterable[Facts]]
    # Once, after the first complete listing, with the informer's `what`.
    listed: Callable[[str], Awaitable[None]]


def describe_refusal(exc: ApiException) -> str:
    """An answer's status, with what to do when it is a refusal that waiting will not end."""
    said = f"HTTP {exc.status} {exc.reason}"
    if exc.status == 403:
        return (
            f"{said}: the operator's ServiceAccount may not list and watch them (the chart's"
            " watch.namespaces grants it per namespace); no policy is scanned until it can"
        )
    if exc.status == 401:
        return f"{said}: the operator's credentials were refused"
    return said


class _Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class Informer(Generic[Facts]):
    """Lists, then watches, one kind in one namespace (None: all) into a sink, forever."""

    def __init__(
        self,
        kube: KubeClient,
        kind: Kind[Facts],
        sink: Sink[Facts],
        *,
        namespace: str | None = None,
        label_selector: str = "",
        timeout: tuple[float, float] = PAGE_TIMEOUT,
    ) -> None:
        self._kube = kube
        # (connect, read) seconds of a page; a watch connects within the same bound.
        self._timeout = timeout
        self._kind: Kind[Facts] = kind
        self._sink: Sink[Facts] = sink
        self._namespace = namespace
        self._selector = label_selector
        self._api = kind.api(unretried(kube.api_client))
        self._listed = False
        self._failing = False
        where = f"in {namespace}" if namespace else "in every namespace"
        self.what = f"{kind.plural} {where}"

    async def run(self) -> None:
        backoff = RETRY_FIRST_SECONDS
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._list()
                version = await self._watch(version)
            except _Expired:
                version = None
                continue
            except ApiException as exc:
                if exc.status == 403 and self._kind.optional:
                    log.warning("may not read %s: followed as none", self.what)
                    await self._first_listing_done()
                    return
                self._failed(describe_refusal(exc))
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                self._failed(str(getattr(exc, "reason", None) or exc) or type(exc).__name__)
            else:
                backoff = RETRY_FIRST_SECONDS
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RETRY_MAX_SECONDS)

    def _failed(self, error: str) -> None:
        """Logged once per streak of failures (an apiserver outage is said by the calls the
        supervisors make; the watch is not one of them, as kopf's are not)."""
        if not self._failing:
            log.warning("following %s: %s; trying again", self.what, error)
        self._failing = True

    def _answered(self) -> None:
        if self._failing:
            log.info("following %s again", self.what)
        self._failing = False

    async def _list(self) -> str:
        """One listing in pages; returns its resourceVersion."""
        seen: set[Key] = set()
        token = ""
        while True:
            page, token, version = await _in_thread(f"list {self.what}", self._page, token)
            self._answered()
            for facts in page:
                seen.add((facts.namespace, facts.name))
                self._sink.put(facts)
            if not token:
                break
        for gone in self._sink.vanished(self._namespace, seen):
            self._sink.drop(gone)
        await self._first_listing_done()
        return version

    def _page(self, token: str) -> tuple[list[Facts], str, str]:
        """One page, decoded into facts (in a thread of its own)."""
        kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "_preload_content": False}
        if token:
            kwargs["_continue"] = token
        if self._selector:
            kwargs["label_selector"] = self._selector
        try:
            response = self._list_method(_request_timeout=self._timeout, **kwargs)
        except ApiException as exc:
            if exc.status == 410:
                raise _Expired from None  # the continue token expired: start over
            raise
        listing = json.loads(response.data)
        meta = listing.get("metadata") or {}
        items = [self._kind.facts(item) for item in listing.get("items") or []]
        return items, str(meta.get("continue") or ""), str(meta.get("resourceVersion") or "")

    def _list_method(self, **kwargs: Any) -> Any:
        if self._namespace is None:
            return getattr(self._api, self._kind.list_everywhere)(**kwargs)
        return getattr(self._api, self._kind.list_namespaced)(self._namespace, **kwargs)

    async def _watch(self, version: str) -> str:
        """One watch from `version`, read in a thread of its own (never the loop's shared
        executor, which the API calls of the supervisors need); returns the last version
        seen when the server ends it."""
        loop = asyncio.get_running_loop()
        seconds = int(WATCH_SECONDS * random.uniform(1.0, 1.25))
        kwargs: dict[str, Any] = {
            "watch": True,
            "resource_version": version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": seconds,
            "_preload_content": False,
            "_request_timeout": (self._timeout[0], seconds + 30.0),
        }
        if self._selector:
            kwargs["label_selector"] = self._selector
        done: asyncio.Future[str] = loop.create_future()
        stream = _Stream(
            lambda: self._list_method(**kwargs),
            version,
            convert=self._kind.facts,
            deliver=self._deliver,
            opened=self._answered,
            loop=loop,
            done=done,
        )
        threading.Thread(target=stream.read, name=f"watch {self.what}", daemon=True).start()
        try:
            return await done
        finally:
            stream.stop()

    def _deliver(self, event: str, facts: Facts) -> None:
        self._answered()
        if event == "DELETED":
            self._sink.drop(facts)
        else:
            self._sink.put(facts)

    async def _first_listing_done(self) -> None:
        if not self._listed:
            self._listed = True
            await self._sink.listed(self.what)


class _Stream(Generic[Facts]):
    """Opens and reads one watch in a thread: each event's facts go to the loop in order."""

    def __init__(
        self,
        open_watch: Callable[[], Any],
        version: str,
        *,
        convert: Callable[..., Facts],
        deliver: Callable[[str, Facts], None],
        opened: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[str],
    ) -> None:
        self._open = open_watch
        self._response: Any = None
        self._version = version
        self._convert: Callable[..., Facts] = convert
        self._deliver: Callable[[str, Facts], None] = deliver
        self._opened = opened
        self._loop = loop
        self._done = done
        self._stopped = False

    def read(self) -> None:
        outcome: str | BaseException
        try:
            self._response = self._open()
            self._loop.call_soon_threadsafe(self._opened)  # answered: a failure streak ends
            for line in self._response:
                if self._stopped:
                    break
                if line.strip():
                    self._event(json.loads(line))
            outcome = self._version
        except Exception as exc:  # handed to the awaiting task
            outcome = exc
        finally:
            if self._response is not None:
                self._response.close()
                self._response.release_conn()
        with contextlib.suppress(RuntimeError):  # the loop is closed: the operator has stopped
            self._loop.call_soon_threadsafe(_settle, self._done, outcome)

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        body: Body = event.get("object") or {}
        if kind == "ERROR":
            if body.get("code") == 410:
                raise _Expired
            raise ApiException(status=body.get("code"), reason=body.get("message"))
        version = (body.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            facts = self._convert(body, gone=kind == "DELETED")
            try:
                self._loop.call_soon_threadsafe(self._deliver, kind, facts)
            except RuntimeError:
                self._stopped = True  # the loop is closed: the operator has stopped
        if version:
            self._version = str(version)

    def stop(self) -> None:
        """Unblocks the reading thread (the task awaiting it was cancelled or is done)."""
        self._stopped = True
        with contextlib.suppress(ValueError, RuntimeError, OSError, AttributeError):
            self._response.shutdown()  # raises once finished or released: nothing to unblock


def unretried(api_client: kubernetes.client.ApiClient) -> kubernetes.client.ApiClient:
    """A client with `api_client`'s configuration and urllib3's retries off: a failed request
    fails at once, and the informer chooses when to try again."""
    configuration = copy.deepcopy(api_client.configuration)
    configuration.retries = False
    return kubernetes.client.ApiClient(configuration)


T = TypeVar("T")


async def _in_thread(name: str, call: Callable[..., T], *args: Any) -> T:
    """`call(*args)` in a daemon thread of its own; its result or exception, awaited."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        outcome: T | BaseException
        try:
            outcome = call(*args)
        except Exception as exc:  # handed to the awaiting task
            outcome = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: the operator has stopped
            loop.call_soon_threadsafe(_settle, done, outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await done


def _settle(done: "asyncio.Future[T]", outcome: "T | BaseException") -> None:
    if done.done():
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)
