"""Repositories shared by every LSP session of this process.

In the engine process (:mod:`wtls.daemon.engine`) each editor window or agent that connects is one
LSP session (one server object), and all of them live in one event loop. What is the same for all
of them lives here, once per repository: the :class:`~wtls.engine.Engine` and its state, the one
file watcher, the refresh loop (file events → one coalesced re-read) and the disk measurement.
A :class:`RepoSession` is one session's view of a shared repository: its workspace folders, what it
last told its client, and the :class:`SessionListener` that publishes to that client.

Features keep their per-repository work here too (:meth:`SharedRepository.feature_state`), so a
conflict prediction runs once per change however many sessions show its result.

``wtls serve --no-daemon`` runs one session in its own process: the same code with one listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from wtls.engine import Engine, EngineSettings, Refreshed, git_writing_until
from wtls.git import GitError
from wtls.links import folder_prefix
from wtls.unsaved import OpenBuffer
from wtls.watch import SYNC_DIR, ChangeSet, RepoWatcher
from wtls.wire import wire_object
from wtls.worktrees import Repository, RepositoryError, RepositoryState, WorktreeState
from wtls.worktrees import repository_payload as _repository_payload

log = logging.getLogger(__name__)

#: How long :meth:`SharedRepository.sync` waits for the watcher to report its cookie (seconds).
SYNC_TIMEOUT = 1.0

W = TypeVar("W")
V = TypeVar("V")


def _no_documents() -> Mapping[Path, str]:
    return {}


class SessionListener(Protocol):
    """How a shared repository reaches one session's client (the server's refresh pipeline)."""

    async def after_refresh(
        self, session: RepoSession, refreshed: Refreshed, *, force: bool = False
    ) -> list[asyncio.Task[None]]:
        """Publish a new state and start the session's features' follow-up work (its tasks)."""
        ...

    async def publish(self, session: RepoSession, *, force: bool = False) -> None:
        """Send the ``wtls/worktrees`` notification if the payload changed."""
        ...

    async def listing_changed(self, session: RepoSession) -> None:
        """The worktree list changed (folders may need opening again)."""
        ...

    async def refresh_failed(self, session: RepoSession, exc: Exception) -> None:
        """A refresh failed with a new error."""
        ...

    def is_open(self, session: RepoSession) -> bool:
        """Whether ``session`` is still open in its server."""
        ...


@dataclass(eq=False)
class RepoSession:
    """One LSP session's view of a shared repository."""

    shared: SharedRepository
    listener: SessionListener
    #: Workspace folders that belong to this repository, in workspace order.
    folders: list[Path] = field(default_factory=list)
    last_payload: dict[str, Any] | None = None
    #: :meth:`_placed`'s answer and the state and folders it was worked out for.
    _placement: (
        tuple[
            RepositoryState,
            tuple[Path, ...],
            tuple[WorktreeState | None, tuple[WorktreeState, ...]],
        ]
        | None
    ) = field(default=None, repr=False)
    #: The refresh hooks of the session's first publish (what ``WtlsServer.announce_settled``
    #: waits for besides the repository's own work).
    first_work: list[asyncio.Task[Any]] = field(default_factory=list)
    #: The session's open documents by resolved path (saved or not), read on the event loop;
    #: set by its server when it joins.
    documents: Callable[[], Mapping[Path, str]] = _no_documents

    @property
    def window(self) -> str:
        """How a message names this session's editor window: by its first workspace folder."""
        return f"the window on {self.folders[0]}" if self.folders else "a window with no folder"

    @property
    def engine(self) -> Engine:
        """The repository's engine (shared by every session of this process)."""
        return self.shared.engine

    @property
    def watcher(self) -> RepoWatcher | None:
        """The repository's one file watcher."""
        return self.shared.watcher

    @property
    def key(self) -> str:
        """The repository's identity (its common git dir)."""
        return self.shared.engine.repository.key

    @property
    def state(self) -> RepositoryState | None:
        """The latest state read."""
        return self.shared.engine.state

    def this(self) -> WorktreeState | None:
        """The worktree this session is opened on (the first workspace folder's)."""
        return self._placed()[0]

    def own_worktrees(self) -> list[WorktreeState]:
        """Worktrees that contain a workspace folder (whose files this session reports on)."""
        return list(self._placed()[1])

    def _placed(self) -> tuple[WorktreeState | None, tuple[WorktreeState, ...]]:
        """:meth:`this` and :meth:`own_worktrees`, worked out once per state and folder list:
        every feature asks after every refresh, for every session of the engine."""
        state = self.state
        if state is None:
            return None, ()
        folders = tuple(self.folders)
        cached = self._placement
        if cached is not None and cached[0] is state and cached[1] == folders:
            return cached[2]
        this: WorktreeState | None = None
        found: dict[Path, WorktreeState] = {}
        for folder in folders:
            wt = state.find(folder)
            if wt is not None:
                this = wt if this is None else this
                found[wt.path] = wt
            # A folder that contains worktrees (e.g. a parent of several) owns all of them.
            inside = folder_prefix(folder)
            for other in state.worktrees:
                if str(other.path).startswith(inside) and other.path != folder:
                    found[other.path] = other
        placed = (this, tuple(found.values()))
        self._placement = (state, folders, placed)
        return placed

    def payload(self) -> dict[str, Any]:
        """The ``wtls/worktrees`` object for this repository, as this session sees it."""
        state = self.state
        this = self.this()
        if state is None:
            return {"repository": self.key, "this": None, "worktrees": []}
        return wire_object(_repository_payload(state, this.path if this else None))


class Viewers(Generic[V]):
    """The sessions that show a shared piece of work's result (a prediction, a test run), each
    with its server's feature object (which publishes to that session's client)."""

    def __init__(self) -> None:
        self._by_session: dict[RepoSession, V] = {}

    def add(self, session: RepoSession, feature: V) -> None:
        """``session`` shows the result from now on, through ``feature``."""
        self._by_session[session] = feature

    def live(self) -> list[tuple[RepoSession, V]]:
        """The viewers whose session is still open (closed ones are forgotten)."""
        for session in list(self._by_session):
            if not session.listener.is_open(session):
                del self._by_session[session]
        return list(self._by_session.items())


@dataclass(eq=False)
class SharedRepository:
    """One repository, read and watched once for every session of the process."""

    engine: Engine
    #: Milliseconds of quiet after a file event before the re-read (the opener's setting).
    debounce_ms: int = 30
    watcher: RepoWatcher | None = None
    sessions: list[RepoSession] = field(default_factory=list)
    pending: ChangeSet | None = None
    refresh_task: asyncio.Task[None] | None = None
    disk_task: asyncio.Task[None] | None = None
    #: Worktree paths of the state the watcher was last pointed at (new ones are re-read once
    #: watched, so a write made between the read and the new watch is not missed).
    watched: frozenset[Path] = frozenset()
    last_error: str | None = None
    #: When the last re-read ended (``time.monotonic``): the debounce applies only within a burst.
    last_refresh_end: float = 0.0
    closed: bool = False
    #: Set once the first read and the watcher are done (later sessions wait for it).
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: Why opening failed (sessions that waited get the same error).
    failure: BaseException | None = None
    _feature_state: dict[type[Any], Any] = field(default_factory=dict)
    #: Called with each batch of file events as it arrives, before the re-read it queues
    #: (work that can start from the files alone, like predicting a written file's conflicts).
    change_listeners: list[Callable[[ChangeSet], None]] = field(default_factory=list)
    #: Sync cookies waited for, by file name (see :meth:`sync`).
    _cookies: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    _cookie_count: int = 0
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _background: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def key(self) -> str:
        """The repository's identity (its common git dir)."""
        return self.engine.repository.key

    def feature_state(self, kind: type[W], make: Callable[[], W]) -> W:
        """A feature's per-repository state, made on first use (one per repository, shared by
        every session: a prediction runs once, however many sessions show it)."""
        found = self._feature_state.get(kind)
        if found is None:
            found = make()
            self._feature_state[kind] = found
        return found

    def open_sessions(self) -> list[RepoSession]:
        """The sessions still showing this repository."""
        return [s for s in self.sessions if s.listener.is_open(s)]

    def open_buffers(self) -> list[OpenBuffer]:
        """Every open session's open documents (saved or not, any file), each named by its
        window: what a command that deletes or rewrites files checks (:mod:`wtls.unsaved`).
        Call on the event loop; compare them with the disk in a thread."""
        return [
            OpenBuffer(path=path, text=text, window=session.window)
            for session in self.open_sessions()
            for path, text in session.documents().items()
        ]

    # ---------------------------------------------------------------- opening
    async def open(self) -> None:
        """The first read, then the watcher, then a re-read: a change made while reading is never
        missed. Run once, by the first session; the others wait for :attr:`ready`."""
        engine = self.engine
        try:
            await asyncio.to_thread(engine.refresh)
            # The cookie folder exists before the watch starts: a file written into a folder
            # made after it may be missed (the OS watch of a new folder starts a little late).
            with contextlib.suppress(OSError):
                await asyncio.to_thread(_make_sync_folder, engine.repository.common_dir)
            loop = asyncio.get_running_loop()

            def on_changes(change: ChangeSet) -> None:
                loop.call_soon_threadsafe(self.queue_change, change)

            watcher = RepoWatcher(engine.watch_targets(), on_changes)
            await asyncio.to_thread(watcher.start)
            self.watcher = watcher
            refreshed = await asyncio.to_thread(engine.refresh)
            self.watched = frozenset(w.path for w in refreshed.state.worktrees)
            self.disk_task = self.spawn(self._measure_disk(), "disk usage", background=True)
        except BaseException as exc:
            self.failure = exc
            raise
        finally:
            self.ready.set()

    def full_refreshed(self) -> Refreshed | None:
        """The current state as a refresh that touched everything (what a session that joins
        an open repository publishes first)."""
        state = self.engine.state
        if state is None:
            return None
        return Refreshed(
            state=state,
            changed=True,
            listing_changed=True,
            touched=frozenset(w.path for w in state.worktrees),
            replayed=True,
        )

    # ---------------------------------------------------------------- refreshing
    def queue_change(self, change: ChangeSet) -> None:
        """Coalesce ``change`` into the pending work and make sure a refresh runs."""
        if self.closed:
            return
        if change.cookies:
            for name in change.cookies:
                waiter = self._cookies.get(name)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            change.cookies = set()
            if not change:
                return  # only a cookie: nothing to read
        for listener in self.change_listeners:
            listener(change)
        if self.pending is None:
            self.pending = change
        else:
            self.pending.merge(change)
        if self.refresh_task is None or self.refresh_task.done():
            self.refresh_task = self.spawn(self._loop(), "refresh")

    async def refresh(self, change: ChangeSet | None = None) -> None:
        """Refresh now (everything when ``change`` is None) and publish to every session."""
        self.queue_change(change or ChangeSet(everything=True))
        if self.refresh_task is not None:
            await asyncio.shield(self.refresh_task)

    async def sync(self, timeout: float = SYNC_TIMEOUT) -> bool:
        """Wait until the state includes every change made before this call (watchman's sync
        cookie: a file written into the watched git dir; once the watcher reports it, it has
        reported every earlier event, and the re-read they queued is awaited). False when the
        watcher did not report the cookie in time (the caller reads everything instead)."""
        if self.watcher is None or self.closed:
            return False
        self._cookie_count += 1
        name = f"{os.getpid()}-{self._cookie_count}-{secrets.token_hex(4)}"
        cookie = self.engine.repository.common_dir.joinpath(*SYNC_DIR, name)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._cookies[name] = waiter
        written = False
        try:
            await asyncio.to_thread(_write_cookie, cookie, self.engine.repository.common_dir)
            written = True
            await asyncio.wait_for(waiter, timeout)
        except (OSError, TimeoutError):
            return False
        finally:
            self._cookies.pop(name, None)
            if written:
                with contextlib.suppress(OSError):
                    _delete_cookie(cookie, self.engine.repository.common_dir)
        # What the events queued is read by the refresh task (queue_change starts one whenever
        # work is pending); a change arriving meanwhile makes it loop again.
        while not self.closed and self.refresh_task is not None and not self.refresh_task.done():
            await asyncio.shield(self.refresh_task)
        return not self.closed

    async def _loop(self) -> None:
        while self.pending is not None and not self.closed:
            # Leading edge: the first event after a quiet spell is read at once; events of a
            # burst that arrive while it is read wait the debounce and join one re-read.
            quiet = time.monotonic() - self.last_refresh_end >= self.debounce_ms / 1000
            if self.debounce_ms and not quiet:
                await asyncio.sleep(self.debounce_ms / 1000)
            await self._wait_for_git_writes()
            change, self.pending = self.pending, None
            if change is None:
                break
            try:
                refreshed = await asyncio.to_thread(self.engine.refresh, change)
            except (GitError, RepositoryError, OSError) as exc:
                await self._failed(exc)
                continue
            finally:
                self.last_refresh_end = time.monotonic()
            self.last_error = None
            listing_changed = refreshed.listing_changed
            if listing_changed and self.watcher is not None:
                # Watch new worktrees before announcing them, then re-read them: anything
                # written between the read above and the new watch is caught.
                await asyncio.to_thread(self.watcher.retarget, self.engine.watch_targets())
                new = {w.path for w in refreshed.state.worktrees} - self.watched
                if new:
                    refreshed = await asyncio.to_thread(
                        self.engine.refresh, ChangeSet(worktrees=new)
                    )
                self.watched = frozenset(w.path for w in refreshed.state.worktrees)
            if self.closed:
                return
            for session in self.open_sessions():
                await session.listener.after_refresh(session, refreshed)
            if not refreshed.agents_only and (self.disk_task is None or self.disk_task.done()):
                self.disk_task = self.spawn(self._measure_disk(), "disk usage", background=True)
            if listing_changed:
                for session in self.open_sessions():
                    await session.listener.listing_changed(session)

    async def _wait_for_git_writes(self) -> None:
        """Let a git command that is rewriting a worktree of this change finish first (at most
        :data:`~wtls.engine.GIT_WRITE_GRACE` after it started); events arriving meanwhile join
        the change. Its release of ``index.lock`` is itself an event, so nothing is missed."""
        engine = self.engine
        while (change := self.pending) is not None and not self.closed:
            until = await asyncio.to_thread(
                lambda: git_writing_until(engine.index_locks(change), time.time())
            )
            if until is None:
                return
            await asyncio.sleep(min(0.05, max(until - time.time(), 0.0)))

    async def _failed(self, exc: Exception) -> None:
        message = str(exc)
        if self.last_error == message:
            return
        self.last_error = message
        for session in self.open_sessions():
            await session.listener.refresh_failed(session, exc)

    async def _measure_disk(self) -> None:
        """Sizes on disk, off the loop; cached a minute by the core, so bursts cost one walk."""
        if await asyncio.to_thread(self.engine.measure_disk):
            for session in self.open_sessions():
                await session.listener.publish(session)

    def spawn(self, coro: Any, name: str, *, background: bool = False) -> asyncio.Task[Any]:
        """Run ``coro`` as this repository's work: it outlives the session that asked for it
        (a window closing must not cancel a prediction other windows wait for) and is
        cancelled when the repository closes. A failure is logged. ``background`` work (sizes,
        process counts, test runs) is not waited for by :meth:`settled`."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(f"{name} {self.key}")
        self._tasks.add(task)
        if background:
            self._background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", t.get_name(), exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def settled(self) -> None:
        """Return once no re-read and no foreground work (a prediction) is pending."""
        while not self.closed:
            pending = [t for t in self._tasks if not t.done() and t not in self._background]
            if not pending:
                return
            await asyncio.wait(pending)

    # ---------------------------------------------------------------- closing
    def close(self) -> None:
        """Stop watching and stop every background task (no session is left)."""
        self.closed = True
        running = _loop_running()
        if self.watcher is not None:
            if running:  # its thread's join must not hold the loop other sessions share
                asyncio.get_running_loop().run_in_executor(None, self.watcher.stop)
            else:
                self.watcher.stop()
        current = asyncio.current_task() if running else None
        for task in list(self._tasks):
            if task is not current:  # a refresh that found the repository gone closes it
                task.cancel()


def _open_sync_folder(common_dir: Path) -> int:
    """A descriptor of ``<common dir>/wtls/sync``, each folder made if missing, never through a
    symbolic link: a link at ``wtls`` or ``wtls/sync`` is OSError, with nothing made where it
    points (a ``mkdir -p`` through it would create folders outside the git dir)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fd = os.open(common_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in SYNC_DIR:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, dir_fd=fd)
            try:
                inner = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                raise OSError(
                    f"{common_dir.joinpath(*SYNC_DIR)} leads out of {common_dir}"
                ) from exc
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _make_sync_folder(common_dir: Path) -> None:
    """``<common dir>/wtls/sync`` made if missing; OSError if it leads out of the git dir."""
    os.close(_open_sync_folder(common_dir))


def _write_cookie(cookie: Path, common_dir: Path) -> None:
    # Made here if it was deleted meanwhile: not watched yet, so the caller waits in vain and
    # reads everything instead.
    folder = _open_sync_folder(common_dir)
    try:
        fd = os.open(
            cookie.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=folder
        )
        os.close(fd)
    finally:
        os.close(folder)


def _delete_cookie(cookie: Path, common_dir: Path) -> None:
    folder = _open_sync_folder(common_dir)
    try:
        os.unlink(cookie.name, dir_fd=folder)
    finally:
        os.close(folder)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class SharedRepositories:
    """The process's shared repositories by key. A repository is closed when its last session
    leaves, unless it is kept warm (the engine keeps its own repository for the CLI)."""

    def __init__(self) -> None:
        self._repos: dict[str, SharedRepository] = {}
        #: Keys kept open with no session (the engine's own repository).
        self.keep_warm: set[str] = set()

    def get(self, key: str) -> SharedRepository | None:
        """The open shared repository of ``key``."""
        repo = self._repos.get(key)
        return repo if repo is not None and not repo.closed else None

    async def join(
        self,
        repository: Repository,
        settings: EngineSettings,
        listener: SessionListener,
        folders: list[Path],
        *,
        debounce_ms: int,
    ) -> RepoSession:
        """A new session of ``repository``: opens it (read, then watch) if no session has.

        Raises what the first read raised; nothing is left half open.
        """
        shared = await self._ensure(repository, settings, debounce_ms)
        session = RepoSession(shared=shared, listener=listener, folders=folders)
        shared.sessions.append(session)
        return session

    async def open_warm(self, repository: Repository, settings: EngineSettings) -> SharedRepository:
        """``repository`` open with or without sessions, and kept open when the last one leaves
        (the engine's own repository, which answers the CLI from memory)."""
        self.keep_warm.add(repository.key)
        return await self._ensure(repository, settings, 30)

    async def _ensure(
        self, repository: Repository, settings: EngineSettings, debounce_ms: int
    ) -> SharedRepository:
        shared = self.get(repository.key)
        if shared is None:
            shared = SharedRepository(Engine(repository, settings), debounce_ms=debounce_ms)
            self._repos[repository.key] = shared
            try:
                await shared.open()
            except BaseException:
                self._drop(shared)
                raise
        else:
            await shared.ready.wait()
            if shared.failure is not None:
                raise shared.failure
        return shared

    def leave(self, session: RepoSession) -> None:
        """``session`` no longer shows its repository; the last one out closes it."""
        shared = session.shared
        if session in shared.sessions:
            shared.sessions.remove(session)
        if shared.sessions:
            return
        # Kept warm only while it exists: a repository deleted and made again at the same
        # place must be read afresh.
        if shared.key not in self.keep_warm or not shared.engine.repository.common_dir.exists():
            self._drop(shared)

    def close_all(self) -> None:
        """Stop everything (the process is ending)."""
        for shared in list(self._repos.values()):
            self._drop(shared)

    def _drop(self, shared: SharedRepository) -> None:
        shared.close()
        if self._repos.get(shared.key) is shared:
            del self._repos[shared.key]


#: The repositories of this process (every server object of the process shares them).
SHARED = SharedRepositories()
