/**
 * The wtls protocol as the client sees it: custom method names, server command ids, and the
 * payload types, mirrored from the server (README "Protocol" and the command contract).
 *
 * The server omits fields that have their default value, so every field here is optional and
 * the `with…Defaults` functions fill them in; the rest of the client only sees complete objects.
 * Pure module: no `vscode` import, so the unit tests can load it.
 */

/** Notification (server → client) and request (client → server) carrying worktree state. */
export const WORKTREES_METHOD = 'wtls/worktrees';

/** Notification (server → client): a linked worktree moved to a new folder. */
export const MOVED_METHOD = 'wtls/moved';

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
} as const;

/** JSON-RPC error code of a refusal: the message says why, and nothing was changed. */
export const REFUSED_CODE = -32001;
/** JSON-RPC error code of a git failure or other error. */
export const ERROR_CODE = -32002;

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

/** One step of the suggested merge order into the base branch. */
export interface MergeStep {
    path: string | null;
    branch: string | null;
    files: string[];
    /** In words, e.g. "merge feature/wipe first (it conflicts in cli.py:5)". */
    description: string;
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
    /** Which lifecycle commands apply (the server's rule; false when an older server omits it). */
    canMerge: boolean;
    canRemove: boolean;
    canLock: boolean;
    canUnlock: boolean;
}

/** The `wtls/worktrees` payload: every worktree of one repository. */
export interface WorktreesPayload {
    repository: string;
    this: string | null;
    mainWorktree: string | null;
    baseBranch: string | null;
    worktrees: Worktree[];
    mergeOrder: MergeStep[] | null;
}

/** Params of the `wtls/worktrees` request. */
export interface WorktreesParams {
    uri?: string;
}

type Partialish<T> = { [K in keyof T]?: T[K] | null | undefined };

/** A worktree object as it may arrive on the wire (fields with default values omitted). */
export type WireWorktree = Partialish<Omit<Worktree, 'conflicts' | 'base'>> & {
    path: string;
    base?: Partial<BaseStatus> | null;
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
        canMerge: w.canMerge === true,
        canRemove: w.canRemove === true,
        canLock: w.canLock === true,
        canUnlock: w.canUnlock === true,
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
        // isThis may be omitted by an older server; `this` is authoritative.
        worktrees: worktrees.map((w) => (thisPath !== null && w.path === thisPath ? { ...w, isThis: true } : w)),
        mergeOrder: Array.isArray(p.mergeOrder)
            ? p.mergeOrder.map((step) => ({
                  path: strOrNull(step.path),
                  branch: strOrNull(step.branch),
                  files: strings(step.files),
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

export interface SpawnArgs extends RepositoryArg, AnnounceArg {
    name: string;
    base?: string;
    path?: string;
    prompt?: string;
    open?: boolean;
    trusted?: boolean;
}

/** What happened to the `setup` commands of `.wtls.toml` during a spawn. */
export interface SetupResult {
    ran?: boolean;
    ok?: boolean;
    /** Why they were not run (untrusted workspace), or null. */
    skipped?: string | null;
    commands?: { command: string; exitCode?: number | null; error?: string | null }[];
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
    setup?: SetupResult | null;
    base?: string;
    /** Steps after `git worktree add` that failed (the worktree is kept). */
    problems?: string[];
}

export interface ValidateNameResult {
    ok: boolean;
    message?: string | null;
    branch?: string | null;
    path?: string | null;
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
    dryRun?: boolean;
    path?: string;
    branch?: string | null;
    message?: string;
}

export interface PruneResult {
    /** Records forgotten; `backupRef` keeps a detached HEAD's own commits. */
    pruned?: { path: string; reason?: string | null; branch?: string | null; backupRef?: string | null }[];
    dryRun?: boolean;
    /** Records kept: locked ones, and folders moved by hand (`wtls repair` reattaches them). */
    kept?: { path: string; reason: string; branch?: string | null }[];
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

export interface LockResult {
    path: string;
    locked?: boolean;
    reason?: string | null;
}
