/**
 * The wtls protocol as the client sees it: custom method names, server command ids, and the
 * payload and argument types, mirrored from the server's dataclasses (docs/protocol.md);
 * tests/test_protocol_drift.py compares every interface here with its Python class.
 *
 * The server sends every field, but an older or newer server may not, so the `with…Defaults`
 * functions fill in what is missing; the rest of the client only sees complete objects.
 * Pure module: no `vscode` import, so the unit tests can load it.
 */

/** Notification (server → client) and request (client → server) carrying worktree state. */
export const WORKTREES_METHOD = 'wtls/worktrees';

/** Notification (server → client): a linked worktree moved to a new folder. */
export const MOVED_METHOD = 'wtls/moved';

/** Request: one file as git's merge of its worktree with another (or the base branch) leaves it. */
export const PREDICTED_MERGE_METHOD = 'wtls/predictedMerge';

/** Params of `wtls/predictedMerge`: a file of this window's worktree, and the other side. */
export interface PredictedMergeParams {
    uri: string;
    /** Another worktree's path (or branch), or "base" for the base branch's tip. */
    with: string;
}

/** Answer of `wtls/predictedMerge`. */
export interface PredictedMerge {
    /** The file as the merge leaves it, conflict markers included ("" when deleted or binary). */
    content: string;
    conflicted: boolean;
    /** Its path in the merge (renames followed); null when the merge deletes it. */
    path: string | null;
    /** Its path in this worktree. */
    source: string;
    /** The label of this worktree's side (first side of each conflict). */
    ours: string;
    theirs: string;
    binary: boolean;
}

/** Request: a worktree's changed files against its merge base with the base branch. */
export const REVIEW_METHOD = 'wtls/review';

/** Request: one file as a commit (a review's merge base) holds it. */
export const FILE_AT_METHOD = 'wtls/fileAt';

/** Params of `wtls/review`. */
export interface ReviewParams {
    /** The worktree: its path, a file URI, or its branch. */
    worktree: string;
    uri?: string;
}

/** One changed file of a review (`wtls diff --json`'s `files`). */
export interface ChangedFile {
    path: string;
    status: 'added' | 'modified' | 'deleted' | 'renamed' | 'copied' | 'type-changed';
    /** The path before a rename or copy. */
    oldPath: string | null;
    /** Lines added and deleted; null for a binary file. */
    added: number | null;
    deleted: number | null;
}

/** Answer of `wtls/review`: the `wtls diff --json` object (without the patch). */
export interface WorktreeDiff {
    worktree: string;
    branch: string | null;
    base: string;
    /** The commit the left side of each file comes from (ask `wtls/fileAt`). */
    mergeBase: string;
    snapshot: string;
    files: ChangedFile[];
    patch: string | null;
}

/** Params of `wtls/fileAt`. */
export interface FileAtParams {
    /** A full commit name (a review's `mergeBase`). */
    rev: string;
    path: string;
    uri?: string;
}

/** Answer of `wtls/fileAt`. */
export interface FileAt {
    content: string;
    exists: boolean;
    binary: boolean;
}

/** Arguments of `wtls.takeIntoBase` and `wtls.discardInWorktree`. */
export interface FileActionArgs {
    worktree: string;
    /** The file, relative to the worktree (or absolute inside it). */
    path: string;
    uri?: string;
}

/** Result of `wtls.takeIntoBase` and `wtls.discardInWorktree`. */
export interface FileAction {
    action: 'take' | 'discard';
    worktree: string;
    /** The worktree that was changed (the base worktree for a take). */
    changed: string;
    path: string;
    oldPath: string | null;
    status: string;
    /** The sentence to show (a discard names its backup ref and how to get the file back). */
    message: string;
    backupRef: string | null;
    restoreCommand: string | null;
}

/** Payload of `wtls/moved`. */
export interface MovedPayload {
    from: string;
    to: string;
    branch?: string | null;
}

/** Server command ids, run through `workspace/executeCommand`. */
export const ServerCommand = {
    spawn: 'wtls.spawn',
    validateName: 'wtls.validateName',
    open: 'wtls.open',
    merge: 'wtls.merge',
    remove: 'wtls.remove',
    prune: 'wtls.prune',
    lock: 'wtls.lock',
    unlock: 'wtls.unlock',
    check: 'wtls.check',
    repair: 'wtls.repair',
    move: 'wtls.move',
    refresh: 'wtls.refresh',
    takeIntoBase: 'wtls.takeIntoBase',
    discardInWorktree: 'wtls.discardInWorktree',
    testMerges: 'wtls.testMerges',
    land: 'wtls.land',
    stopProcesses: 'wtls.stopProcesses',
} as const;

/** JSON-RPC error code of a refusal: the message says why, and nothing was changed. */
export const REFUSED_CODE = -32001;
/** JSON-RPC error code of a git failure or other error. */
export const ERROR_CODE = -32002;

/**
 * What gets past a refusal (or carries out a dry run): run `wtls.<action>` again with
 * `<option>: true` (`{action: 'remove', option: 'force'}`), or, without `option`, the command
 * `wtls.<action>` on the same worktree (`{action: 'unlock'}`). `label` is the button's text.
 */
export interface Fix {
    action: string;
    option?: string | null;
    label: string;
}

/** `data` of a refusal's error (`REFUSED_CODE`). */
export interface RefusalData {
    kind: string;
    /** The main fix; `fixes` lists every fix, in the message's order. */
    fix?: Fix;
    fixes?: Fix[];
}

export interface BaseStatus {
    branch: string;
    ahead: number;
    behind: number;
    merged: boolean;
}

/** Predicted merge conflicts with one other worktree (or with the base branch). */
export interface ConflictPrediction {
    path: string | null;
    branch: string | null;
    files: string[];
    /** True when the conflict is with the base branch rather than another worktree. */
    againstBase: boolean;
}

/** A conflicting file of a merge-order step: 1-based line ranges in that worktree's file. */
export interface StepConflict {
    path: string;
    kind: string;
    lines: [number, number][];
}

/** One step of the suggested merge order into the base branch. */
export interface MergeStep {
    path: string | null;
    branch: string | null;
    files: string[];
    conflicts: StepConflict[];
    /** In words, e.g. "merge feature/wipe first (it conflicts in cli.py:5)". */
    description: string;
}

/**
 * What `wtls spawn` recorded in a worktree it made with a task (`.wtls/spawn.json`, read by the
 * server with bounds): what a window opening on it needs to show the task and start the agent.
 */
export interface SpawnRecord {
    branch: string;
    /** Absolute; always inside the worktree's `.wtls/` folder. */
    promptFile: string;
    /** When it was spawned: a worktree re-created at the same path is a new task. */
    created: string;
}

export type Operation = 'merge' | 'rebase' | 'am' | 'cherry-pick' | 'revert' | 'bisect';

export interface Worktree {
    path: string;
    branch: string | null;
    head: string | null;
    isMain: boolean;
    isThis: boolean;
    bare: boolean;
    detached: boolean;
    locked: boolean;
    lockReason: string | null;
    prunable: boolean;
    prunableReason: string | null;
    broken: string | null;
    operation: Operation | null;
    staged: number;
    unstaged: number;
    untracked: number;
    conflicted: number;
    upstream: string | null;
    ahead: number | null;
    behind: number | null;
    base: BaseStatus | null;
    conflicts: ConflictPrediction[];
    diskBytes: number | null;
    ports: Record<string, number>;
    /** Set when `wtls spawn` made it with a task prompt. */
    spawn: SpawnRecord | null;
    /** Which lifecycle commands apply (the server's rule; false when an older server omits it). */
    canMerge: boolean;
    canRemove: boolean;
    canLock: boolean;
    canUnlock: boolean;
    /** The coding agent working there (see docs/agents.md), or null. */
    agent: AgentState | null;
    /**
     * The processes using the folder (cwd, executable or open file inside), as of the server's
     * last scan; null: not counted (not scanned yet, or the system cannot tell).
     */
    processes: ProcessUse[] | null;
}

/** A worktree's agent state: `working`, `waiting` (needs the person) or `idle`. */
export type AgentStateName = 'working' | 'waiting' | 'idle';

/** The `agent` object of a worktree. */
export interface AgentState {
    state: AgentStateName;
    /** ISO 8601 UTC. */
    since: string;
    message: string | null;
    tool: string | null;
    session: string | null;
    pid: number | null;
    /** Other sessions active in that worktree within a minute (two agents in one folder). */
    others: string[];
}

/** The `wtls/worktrees` payload: every worktree of one repository. */
export interface WorktreesPayload {
    repository: string;
    this: string | null;
    mainWorktree: string | null;
    baseBranch: string | null;
    worktrees: Worktree[];
    mergeOrder: MergeStep[] | null;
    /** Bytes all worktree folders take on disk (null: not measured yet). */
    diskBytes: number | null;
    /** Bytes `wtls prune --merged` would free (null: nothing measured). */
    reclaimableBytes: number | null;
}

/** Params of the `wtls/worktrees` request. */
export interface WorktreesParams {
    uri?: string;
}

type Partialish<T> = { [K in keyof T]?: T[K] | null | undefined };

/** A worktree object as it may arrive on the wire (fields with default values omitted). */
export type WireWorktree = Partialish<Omit<Worktree, 'conflicts' | 'base' | 'agent' | 'spawn' | 'processes'>> & {
    path: string;
    processes?: Partial<ProcessUse>[] | null;
    agent?: Partial<AgentState> | null;
    base?: Partial<BaseStatus> | null;
    spawn?: Partial<SpawnRecord> | null;
    conflicts?: Partial<ConflictPrediction>[] | null;
};
/** A payload as it may arrive on the wire. */
export type WireWorktreesPayload = Partialish<Omit<WorktreesPayload, 'worktrees' | 'mergeOrder'>> & {
    repository: string;
    worktrees?: WireWorktree[] | null;
    mergeOrder?: Partial<MergeStep>[] | null;
};

function num(value: unknown, fallback: number): number {
    return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function numOrNull(value: unknown): number | null {
    return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function strings(value: unknown): string[] {
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function strOrNull(value: unknown): string | null {
    return typeof value === 'string' ? value : null;
}

/** Fills in the defaults of a worktree object received from the server. */
export function worktreeWithDefaults(w: WireWorktree): Worktree {
    const base = w.base ?? null;
    return {
        path: w.path,
        branch: strOrNull(w.branch),
        head: strOrNull(w.head),
        isMain: w.isMain === true,
        isThis: w.isThis === true,
        bare: w.bare === true,
        detached: w.detached === true,
        locked: w.locked === true,
        lockReason: strOrNull(w.lockReason),
        prunable: w.prunable === true,
        prunableReason: strOrNull(w.prunableReason),
        broken: strOrNull(w.broken),
        operation: (strOrNull(w.operation) as Operation | null) ?? null,
        staged: num(w.staged, 0),
        unstaged: num(w.unstaged, 0),
        untracked: num(w.untracked, 0),
        conflicted: num(w.conflicted, 0),
        upstream: strOrNull(w.upstream),
        ahead: numOrNull(w.ahead),
        behind: numOrNull(w.behind),
        base:
            base && typeof base.branch === 'string'
                ? {
                      branch: base.branch,
                      ahead: num(base.ahead, 0),
                      behind: num(base.behind, 0),
                      merged: base.merged === true,
                  }
                : null,
        conflicts: (w.conflicts ?? []).map((c) => ({
            path: strOrNull(c.path),
            branch: strOrNull(c.branch),
            files: strings(c.files),
            againstBase: c.againstBase === true,
        })),
        diskBytes: numOrNull(w.diskBytes),
        ports: w.ports && typeof w.ports === 'object' ? { ...w.ports } : {},
        spawn:
            w.spawn && typeof w.spawn.promptFile === 'string' && w.spawn.promptFile !== ''
                ? {
                      branch: typeof w.spawn.branch === 'string' ? w.spawn.branch : w.path,
                      promptFile: w.spawn.promptFile,
                      created: typeof w.spawn.created === 'string' ? w.spawn.created : '',
                  }
                : null,
        canMerge: w.canMerge === true,
        canRemove: w.canRemove === true,
        canLock: w.canLock === true,
        canUnlock: w.canUnlock === true,
        agent: agentWithDefaults(w.agent),
        processes: Array.isArray(w.processes)
            ? w.processes
                  .filter((p): p is Partial<ProcessUse> & { pid: number } => typeof p?.pid === 'number')
                  .map((p) => ({
                      pid: p.pid,
                      command: typeof p.command === 'string' ? p.command : '?',
                      reason: typeof p.reason === 'string' ? p.reason : '',
                      path: typeof p.path === 'string' ? p.path : '',
                  }))
            : null,
    };
}

const AGENT_STATES: readonly string[] = ['working', 'waiting', 'idle'];

/** A worktree's `agent` object, or null when it is absent or not understood. */
export function agentWithDefaults(a: Partial<AgentState> | null | undefined): AgentState | null {
    if (!a || typeof a.state !== 'string' || !AGENT_STATES.includes(a.state)) {
        return null;
    }
    return {
        state: a.state as AgentStateName,
        since: strOrNull(a.since) ?? '',
        message: strOrNull(a.message),
        tool: strOrNull(a.tool),
        session: strOrNull(a.session),
        pid: numOrNull(a.pid),
        others: strings(a.others),
    };
}

/** Fills in the defaults of a `wtls/worktrees` payload received from the server. */
export function payloadWithDefaults(p: WireWorktreesPayload): WorktreesPayload {
    const worktrees = (p.worktrees ?? []).map(worktreeWithDefaults);
    const thisPath = strOrNull(p.this);
    return {
        repository: p.repository,
        this: thisPath,
        mainWorktree: strOrNull(p.mainWorktree),
        baseBranch: strOrNull(p.baseBranch),
        diskBytes: numOrNull(p.diskBytes),
        reclaimableBytes: numOrNull(p.reclaimableBytes),
        // isThis may be omitted by an older server; `this` is authoritative.
        worktrees: worktrees.map((w) => (thisPath !== null && w.path === thisPath ? { ...w, isThis: true } : w)),
        mergeOrder: Array.isArray(p.mergeOrder)
            ? p.mergeOrder.map((step) => ({
                  path: strOrNull(step.path),
                  branch: strOrNull(step.branch),
                  files: strings(step.files),
                  conflicts: Array.isArray(step.conflicts)
                      ? step.conflicts.filter(
                            (c): c is StepConflict => typeof c?.path === 'string' && typeof c?.kind === 'string',
                        )
                      : [],
                  description: typeof step.description === 'string' ? step.description : '',
              }))
            : null,
    };
}

// --- command arguments and results ----------------------------------------------------------
// Every command also takes `uri`: a file URI anywhere in the repository it is about (default:
// the first workspace folder's repository).

/** The repository selector every server command accepts. */
export interface RepositoryArg {
    uri?: string;
}

/** Lifecycle commands whose result the client shows itself: the server stays quiet. */
export interface AnnounceArg {
    /** false: the client shows the result's problems in its own words (one message per action). */
    announce?: boolean;
}

/** Arguments of `wtls.refresh` (every repository is read again). */
export type RefreshArgs = RepositoryArg;

/** Result of `wtls.refresh`: the repositories read again. */
export interface RefreshResult {
    repositories: string[];
}

export interface SpawnArgs extends RepositoryArg, AnnounceArg {
    name: string;
    base?: string;
    path?: string;
    prompt?: string;
    open?: boolean;
    trusted?: boolean;
    /** The coding agent: `claude` gets wtls's hooks in `.claude/settings.local.json`. */
    agent?: 'claude' | 'codex';
    /** A sparse (cone) checkout of these folders only (plain relative paths). */
    sparse?: string[];
}

/** One setup command and how it ended. */
export interface CommandRun {
    command: string;
    exitCode?: number | null;
    /** Why it did not finish normally (not found, timed out), or null. */
    error?: string | null;
}

/** What happened to the `setup` commands of `.wtls.toml` during a spawn. */
export interface SetupResult {
    ran?: boolean;
    ok?: boolean;
    /** Why they were not run (untrusted workspace), or null. */
    skipped?: string | null;
    commands?: CommandRun[];
    /** A failure message (the worktree is kept), or null. */
    message?: string | null;
}

export interface SpawnResult {
    path: string;
    branch: string;
    uri: string;
    promptFile?: string | null;
    ports?: Record<string, number>;
    copied?: string[];
    /** How many of `copied` are copy-on-write clones (btrfs, XFS, APFS). */
    cloned?: number;
    /** The `.wtls.toml` `share` entries linked to the source worktree's folders. */
    shared?: string[];
    /** The folders of a sparse checkout; empty: everything. */
    sparse?: string[];
    /** Things worth knowing that are not failures. */
    notes?: string[];
    setup?: SetupResult | null;
    base?: string;
    baseCommit?: string;
    /** Whether the server ran the `openCommand` setting. */
    opened?: boolean;
    /** Steps after `git worktree add` that failed (the worktree is kept). */
    problems?: string[];
    /** The agent settings file wtls wrote its hooks into, or null. */
    agentHooks?: string | null;
}

export interface ValidateNameArgs extends RepositoryArg {
    name?: string | null;
    base?: string;
    path?: string;
}

export interface ValidateNameResult {
    ok: boolean;
    message?: string | null;
    branch?: string | null;
    path?: string | null;
    slug?: string | null;
}

export interface OpenArgs extends RepositoryArg {
    /** Absent: the worktrees to pick from. */
    worktree?: string;
    /** Run the `openCommand` setting. */
    open?: boolean;
}

/** `{worktrees}` when no worktree was named, else `{path, uri, branch, opened}`. */
export interface OpenResult {
    worktrees?: WireWorktree[];
    path?: string;
    uri?: string;
    branch?: string | null;
    opened?: boolean;
}

export interface MergeArgs extends RepositoryArg, AnnounceArg {
    worktree: string;
    remove?: boolean;
    deleteBranch?: boolean;
    abort?: boolean;
    /** With `remove`: end the processes using the worktree first. */
    kill?: boolean;
    /** With `remove`: whether its teardown may run (default: the server's workspace trust). */
    trusted?: boolean;
}

export interface MergeResult {
    merged?: boolean;
    conflicts?: string[];
    removed?: boolean;
    branchDeleted?: boolean;
    aborted?: boolean;
    branch?: string;
    base?: string;
    baseWorktree?: string;
    /** The base branch's commit after the merge (null when it stopped or was aborted). */
    commit?: string | null;
    message?: string;
    /** Steps after the merge that failed (the merge itself happened). */
    problems?: string[];
}

export interface RemoveArgs extends RepositoryArg, AnnounceArg {
    worktree: string;
    force?: boolean;
    deleteBranch?: boolean;
    dryRun?: boolean;
    /** End the processes using the worktree first (SIGTERM, then SIGKILL). */
    kill?: boolean;
    /** Whether its `.wtls.toml` teardown may run (default: the workspace trust the server got). */
    trusted?: boolean;
}

/** A process tied to a worktree folder. */
export interface ProcessUse {
    pid: number;
    command: string;
    /** `cwd`, `executable` or `open file`. */
    reason: string;
    path: string;
}

/** An open editor buffer whose text differs from its file on disk. */
export interface UnsavedBuffer {
    path: string;
    /** Which window holds it ("the window on /path"), when known. */
    window?: string | null;
}

export interface RemoveResult {
    removed?: boolean;
    backupRef?: string | null;
    restoreCommand?: string | null;
    branchDeleted?: boolean;
    /**
     * What is (or would be) saved in the backup ref: changed, staged, untracked and deleted files,
     * nested repositories and submodules.
     */
    wouldBackUp?: string[];
    /** Nested repositories and submodules saved in the backup (relative paths). */
    nestedSaved?: string[];
    /** Steps after the removal that failed (the removal itself happened). */
    problems?: string[];
    /** Dry run: whether the branch would be deleted (it is merged into base). */
    wouldDeleteBranch?: boolean;
    /** Dry run: whether the removal needs `force` (work to back up first, or a lock). */
    needsForce?: boolean;
    /** Dry run: the processes using it (a removal needs `kill`); else the ones `kill` ended. */
    processes?: ProcessUse[];
    /** The `.wtls.toml` teardown commands: run, skipped (untrusted, dry run) or none. */
    teardown?: SetupResult;
    /**
     * A forced dry run: the editors' unsaved buffers of its files, in any window (the removal
     * needs `force` and discards those edits; no backup holds them).
     */
    unsaved?: UnsavedBuffer[];
    dryRun?: boolean;
    path?: string;
    branch?: string | null;
    message?: string;
}

export interface PruneArgs extends RepositoryArg {
    dryRun?: boolean;
    /** Remove the clean worktrees whose branch is merged into base (`wtls prune --merged`). */
    merged?: boolean;
    /** With `merged`: only those whose last commit is older than this, e.g. `2w`, `3d12h`. */
    olderThan?: string;
    /** With `merged`: whether teardown may run (default: the server's workspace trust). */
    trusted?: boolean;
}

/** A record forgotten; `backupRef` keeps a detached HEAD's own commits. */
export interface PrunedRecord {
    path: string;
    reason?: string | null;
    branch?: string | null;
    backupRef?: string | null;
    detachedCommits?: boolean;
    /** Where the worktree's own refs (`refs/bisect/…`) were saved, if any. */
    ownRefsSavedIn?: string | null;
}

/** A record kept: locked, or its folder moved by hand (`wtls repair` reattaches it). */
export interface KeptRecord {
    path: string;
    reason: string;
    branch?: string | null;
}

export interface PruneResult {
    pruned?: PrunedRecord[];
    dryRun?: boolean;
    kept?: KeptRecord[];
    /** Folders put back that an interrupted removal had left renamed aside. */
    recovered?: string[];
}

/** `wtls.prune` with `merged: true`. */
export interface PruneMergedResult {
    /** Worktrees removed (with `dryRun`: that would be), their branches deleted. */
    removed?: { path: string; branch?: string | null; bytes: number }[];
    /** Worktrees kept, each with its reason (main, unmerged, dirty, locked, busy…). */
    kept?: { path: string; reason: string }[];
    dryRun?: boolean;
    /** Steps after a removal that failed (the removal happened). */
    problems?: string[];
}

export interface StopProcessesArgs extends RepositoryArg {
    worktree: string;
    /** End only these (the list the person confirmed); absent: every process found. */
    pids?: number[];
}

/** A process `wtls.stopProcesses` was asked to end and that still runs. */
export interface ProcessNotEnded {
    pid: number;
    command: string;
    /** Permission denied, wtls runs inside it, still running after SIGKILL. */
    why: string;
}

/** Result of `wtls.stopProcesses`. */
export interface StopProcessesResult {
    path: string;
    branch?: string | null;
    /** Ended (SIGTERM, or SIGKILL after the grace period). */
    ended?: ProcessUse[];
    notEnded?: ProcessNotEnded[];
    /** pids asked for that no longer used the worktree. */
    gone?: number[];
    message?: string;
}

export interface LockArgs extends RepositoryArg {
    worktree: string;
    reason?: string;
}

export interface UnlockArgs extends RepositoryArg {
    worktree: string;
}

export interface LockResult {
    path: string;
    locked?: boolean;
    reason?: string | null;
}

/** Arguments of `wtls.check` (the `wtls check --json` object is its result). */
export type CheckArgs = RepositoryArg;

/** One failing test, as the test output names it. */
export interface Failure {
    name: string;
    path?: string | null;
    line?: number | null;
}

/** One run of the test command on one predicted merge. */
export interface TestRun {
    worktrees: string[];
    branches: (string | null)[];
    tree: string;
    status: 'pass' | 'fail' | 'timeout' | 'error';
    exitCode: number | null;
    seconds: number;
    cached: boolean;
    /** The tail of the output. */
    output: string;
    failures: Failure[];
}

/** Worktrees that pass their tests alone but fail together (a smallest such set). */
export interface SemanticConflict {
    worktrees: string[];
    branches: (string | null)[];
    failures: Failure[];
    output: string;
}

/** The answer of `wtls.testMerges` (the `tests` object of `wtls check --test --json`). */
export interface TestsReport {
    command: string;
    runs: TestRun[];
    semanticConflicts: SemanticConflict[];
    failingAlone: string[];
    baseFails: boolean;
    /** Why nothing was tested (an untrusted `test` in .wtls.toml), else null. */
    notRun: string | null;
    /** `[path, reason]` of worktrees not tested. */
    skipped: [string, string][];
    notes: string[];
    cancelled: boolean;
}

/** `wtls.testMerges`: the project's tests on the predicted merges (docs/protocol.md). */
export interface TestMergesArgs extends RepositoryArg {
    /** The test command; default: `test` of a trusted `.wtls.toml`. */
    command?: string;
    /** Seconds each run may take (default 600). */
    timeout?: number;
    jobs?: number;
    /** Default: the workspace's trust. */
    trusted?: boolean;
}

/** `wtls.land`: land worktrees on the base branch, tested (docs/protocol.md). */
export interface LandArgs extends RepositoryArg {
    /** Worktrees to land (path, URI, branch or folder name); default: every mergeable one. */
    worktrees?: string[];
    /** The test command; default: `test` of a trusted `.wtls.toml`. */
    command?: string;
    /** Seconds each run may take (default 600). */
    timeout?: number;
    /** Remove each landed worktree (with remove's safety). */
    remove?: boolean;
    /** Default: the workspace's trust. */
    trusted?: boolean;
}

/** What happened to one worktree in `wtls.land`. */
export interface LandStep {
    worktree: string;
    branch: string;
    /** `landed`, `merged` (already in base), or where the queue stopped. */
    status: 'landed' | 'merged' | 'fail' | 'timeout' | 'error' | 'conflict';
    /** The merge commit (or fast-forwarded tip) that was tested. */
    commit?: string | null;
    tree?: string | null;
    exitCode?: number | null;
    seconds?: number;
    cached?: boolean;
    output?: string;
    failures?: Failure[];
    /** Files that conflict as text (status `conflict`). */
    conflicts?: string[];
    removed?: boolean;
}

/** The answer of `wtls.land` (the `wtls land --json` object). */
export interface LandResult {
    baseBranch: string;
    command: string;
    baseBefore: string;
    baseAfter: string;
    steps?: LandStep[];
    /** `[path, reason]` of worktrees not taken. */
    skipped?: [string, string][];
    /** Steps that failed after a landing (a removal refused, the base worktree not updated). */
    problems?: string[];
    message?: string;
}

export interface RepairArgs extends RepositoryArg {
    /** Worktree folders to look at (default: the workspace folders). */
    paths?: string[];
    apply?: boolean;
    /** Re-attach a worktree whose admin dir was deleted on this branch. */
    branch?: string;
}

export interface MoveArgs extends RepositoryArg {
    worktree: string;
    newPath: string;
    force?: boolean;
}
