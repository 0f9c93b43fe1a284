/**
 * Pure presentation of wtls state: status-bar text, tooltips, quick pick items, tree labels,
 * confirmation texts, agent command substitution and the restart back-off.
 *
 * Everything here maps protocol objects to strings and plain objects; nothing decides anything
 * the server knows better. No `vscode` import: `node --test` runs these functions directly.
 */

import type { AgentState, ConflictPrediction, LandResult, RemoveResult, SpawnResult, TestsReport, Worktree, WorktreesPayload } from './protocol';

/** Paths that have changes of any kind (staged, unstaged, untracked or unmerged). */
export function dirtyCount(w: Worktree): number {
    return w.staged + w.unstaged + w.untracked + w.conflicted;
}

/** Predicted conflicting files, summed over every other worktree (and the base branch). */
export function conflictCount(w: Worktree): number {
    return w.conflicts.reduce((n, c) => n + c.files.length, 0);
}

/** The name a person knows a worktree by: its branch, or what stands in for one. */
export function branchLabel(w: Worktree): string {
    if (w.branch) {
        return w.branch;
    }
    if (w.bare) {
        return '(bare)';
    }
    if (w.detached && w.head) {
        return `(detached ${w.head.slice(0, 7)})`;
    }
    return w.detached ? '(detached)' : '(no branch)';
}

/** The last path segment, for short labels. */
export function baseName(path: string): string {
    const trimmed = path.replace(/[\\/]+$/, '');
    const i = Math.max(trimmed.lastIndexOf('/'), trimmed.lastIndexOf('\\'));
    return i >= 0 ? trimmed.slice(i + 1) : trimmed;
}

/** `/home/me/x` → `~/x` when `home` is given and contains the path. */
export function tildify(path: string, home?: string): string {
    if (home && home.length > 1) {
        const h = home.replace(/[\\/]+$/, '');
        if (path === h) {
            return '~';
        }
        if (path.startsWith(h + '/') || path.startsWith(h + '\\')) {
            return '~' + path.slice(h.length);
        }
    }
    return path;
}

/**
 * The compact counters after a branch name: `↑2 ↓1 ●3 ⚠1` (ahead/behind the base branch,
 * changed paths, predicted conflicting files); zero counters are left out.
 */
export function counters(w: Worktree): string {
    const parts: string[] = [];
    if (w.base && w.base.ahead > 0) {
        parts.push(`↑${w.base.ahead}`);
    }
    if (w.base && w.base.behind > 0) {
        parts.push(`↓${w.base.behind}`);
    }
    const dirty = dirtyCount(w);
    if (dirty > 0) {
        parts.push(`●${dirty}`);
    }
    const conflicts = conflictCount(w);
    if (conflicts > 0) {
        parts.push(`⚠${conflicts}`);
    }
    return parts.join(' ');
}

/** Codicon of an agent state: working spins, waiting rings, idle is done. */
export function agentIcon(agent: AgentState): string {
    return agent.state === 'working' ? 'sync~spin' : agent.state === 'waiting' ? 'bell-dot' : 'check';
}

/** `since` as local `HH:MM` (the date too when it is not today), or the raw text. */
export function sinceText(since: string, now: Date = new Date()): string {
    const when = new Date(since);
    if (Number.isNaN(when.getTime())) {
        return since;
    }
    const pad = (n: number): string => String(n).padStart(2, '0');
    const time = `${pad(when.getHours())}:${pad(when.getMinutes())}`;
    const sameDay = when.toDateString() === now.toDateString();
    return sameDay ? time : `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())} ${time}`;
}

/** A worktree's agent in words: `claude waiting since 22:08: Allow Bash?`. */
export function agentSummary(agent: AgentState, now?: Date): string {
    const who = agent.tool ?? 'agent';
    const message = agent.message ? `: ${agent.message}` : '';
    return `${who} ${agent.state} since ${sinceText(agent.since, now)}${message}`;
}

/** Status-bar text of this window's worktree, e.g. `$(git-branch) agent/wipe ↑2 ●3 ⚠1 $(bell-dot) waiting`. */
export function statusText(w: Worktree): string {
    const icon = w.locked ? '$(lock)' : w.operation ? '$(git-merge)' : '$(git-branch)';
    const parts = [`${icon} ${branchLabel(w)}`];
    const c = counters(w);
    if (c) {
        parts.push(c);
    }
    if (w.operation) {
        parts.push(w.operation.toUpperCase());
    }
    if (w.agent) {
        parts.push(`$(${agentIcon(w.agent)}) ${w.agent.state}`);
    }
    return parts.join(' ');
}

/** A worktree whose agent just started waiting, for the "feature/x is waiting" notification. */
export interface WaitingNotice {
    path: string;
    branch: string;
    text: string;
}

/**
 * The other worktrees of `next` whose agent waits and did not wait (since the same moment) in
 * `previous`: what to tell the person about. Nothing for a repository seen the first time.
 */
export function newlyWaiting(previous: WorktreesPayload | undefined, next: WorktreesPayload): WaitingNotice[] {
    if (!previous) {
        return [];
    }
    const before = new Map(previous.worktrees.map((w) => [w.path, w.agent]));
    const out: WaitingNotice[] = [];
    for (const w of next.worktrees) {
        const agent = w.agent;
        if (w.isThis || !agent || agent.state !== 'waiting') {
            continue;
        }
        const old = before.get(w.path);
        if (old && old.state === 'waiting' && old.since === agent.since && old.session === agent.session) {
            continue;
        }
        const branch = branchLabel(w);
        out.push({ path: w.path, branch, text: `${branch} is waiting: ${agent.message ?? 'it needs you'}` });
    }
    return out;
}

function plural(n: number, one: string, many = `${one}s`): string {
    return `${n} ${n === 1 ? one : many}`;
}

function conflictWith(c: ConflictPrediction): string {
    const name = c.branch ?? (c.path ? baseName(c.path) : 'another worktree');
    return c.againstBase ? `base ${name}` : name;
}

/** The suggested merge order in words (as `wtls check` says it), or undefined for none. */
export function mergeOrderText(payload: WorktreesPayload): string | undefined {
    const steps = (payload.mergeOrder ?? []).map((s) => s.description).filter((d) => d !== '');
    if (steps.length === 0) {
        return undefined;
    }
    const [first, ...rest] = steps;
    return rest.length > 0 ? `${first}: ${rest.join('; ')}` : first;
}

/** One line of plain words describing a worktree's state, for tooltips and quick picks. */
export function stateSummary(w: Worktree): string {
    const parts: string[] = [];
    if (w.agent) {
        parts.push(agentSummary(w.agent));
    }
    if (w.agent && w.agent.others.length > 0) {
        parts.push(`⚠ ${w.agent.others.length + 1} agent sessions at once`);
    }
    if (w.broken) {
        parts.push(`broken: ${w.broken}`);
    }
    if (w.prunable) {
        parts.push(w.prunableReason ? `prunable: ${w.prunableReason}` : 'prunable (folder is gone)');
    }
    if (w.locked) {
        parts.push(w.lockReason ? `locked: ${w.lockReason}` : 'locked');
    }
    if (w.operation) {
        parts.push(`${w.operation} in progress`);
    }
    if (w.base) {
        if (w.base.merged) {
            parts.push(`merged into ${w.base.branch}`);
        } else if (w.base.ahead > 0 || w.base.behind > 0) {
            parts.push(`↑${w.base.ahead} ↓${w.base.behind} vs ${w.base.branch}`);
        }
    }
    const dirty = dirtyCount(w);
    if (w.conflicted > 0) {
        parts.push(plural(w.conflicted, 'unmerged path'));
    }
    parts.push(dirty > 0 ? plural(dirty, 'changed path') : 'clean');
    const conflicts = conflictCount(w);
    if (conflicts > 0) {
        const names = [...new Set(w.conflicts.filter((c) => c.files.length > 0).map(conflictWith))];
        parts.push(`⚠ ${plural(conflicts, 'predicted conflict')} with ${names.join(', ')}`);
    }
    return parts.join(' · ');
}

/** Escapes text for a markdown tooltip. */
export function escapeMarkdown(text: string): string {
    // The characters that start emphasis, code, links, HTML or tables in VS Code's markdown.
    return text.replace(/[\\`*_[\]<>|]/g, (ch) => `\\${ch}`);
}

/** The status-bar tooltip (markdown): this worktree, then every other one with its state. */
export function tooltipMarkdown(payload: WorktreesPayload, home?: string): string {
    const me = payload.worktrees.find((w) => w.isThis);
    const lines: string[] = [];
    if (me) {
        lines.push(`**${escapeMarkdown(branchLabel(me))}** — this window`, '');
        lines.push(escapeMarkdown(stateSummary(me)), '');
        for (const c of me.conflicts) {
            if (c.files.length > 0) {
                lines.push(
                    `- ⚠ with ${escapeMarkdown(conflictWith(c))}: ${c.files.map((f) => `\`${f}\``).join(', ')}`,
                );
            }
        }
        if (me.conflicts.some((c) => c.files.length > 0)) {
            lines.push('');
        }
    }
    const others = payload.worktrees.filter((w) => !w.isThis);
    if (others.length === 0) {
        lines.push('No other worktree.');
    } else {
        lines.push('**Other worktrees**', '');
        for (const w of others) {
            const main = w.isMain ? ' (main)' : '';
            lines.push(
                `- **${escapeMarkdown(branchLabel(w))}**${main} — ${escapeMarkdown(tildify(w.path, home))} — ${escapeMarkdown(stateSummary(w))}`,
            );
        }
    }
    const order = mergeOrderText(payload);
    if (order) {
        lines.push('', `Merge order: ${escapeMarkdown(order)}.`);
    }
    lines.push('', '_Click to open a worktree in a new window._');
    return lines.join('\n');
}

/** A quick pick entry for one worktree (a plain object; the UI layer adds nothing to it). */
export interface WorktreePickItem {
    label: string;
    description: string;
    detail: string;
    path: string;
    isThis: boolean;
}

/** Which worktrees a quick pick offers. */
export type PickFilter = (w: Worktree, payload: WorktreesPayload) => boolean;

/** Filters for the lifecycle commands: the server says in each worktree what applies. */
export const pickFilters = {
    any: (() => true) as PickFilter,
    /** Linked worktrees: everything git can remove (not the main worktree). */
    linked: ((w) => w.canRemove) as PickFilter,
    /** Worktrees with something to merge back. */
    mergeable: ((w) => w.canMerge) as PickFilter,
    lockable: ((w) => w.canLock) as PickFilter,
    unlockable: ((w) => w.canUnlock) as PickFilter,
};

/** Quick pick items for the worktrees of one or more repositories; the current window is marked. */
export function quickPickItems(
    payloads: readonly WorktreesPayload[],
    filter: PickFilter = pickFilters.any,
    home?: string,
): WorktreePickItem[] {
    const items: WorktreePickItem[] = [];
    const several = payloads.length > 1;
    for (const p of payloads) {
        for (const w of p.worktrees) {
            if (!filter(w, p)) {
                continue;
            }
            const marks: string[] = [];
            if (w.isThis) {
                marks.push('current window');
            }
            if (w.isMain) {
                marks.push('main worktree');
            }
            if (several && p.mainWorktree) {
                marks.push(baseName(p.mainWorktree));
            }
            const where = tildify(w.path, home);
            items.push({
                label: `${w.isThis ? '$(window)' : '$(git-branch)'} ${branchLabel(w)}`,
                description: marks.length > 0 ? `${marks.join(', ')} — ${where}` : where,
                detail: stateSummary(w),
                path: w.path,
                isThis: w.isThis,
            });
        }
    }
    return items;
}

/** Tree item description: counters, then the folder's name (the tooltip has the full path). */
export function treeDescription(w: Worktree): string {
    const c = counters(w);
    const where = baseName(w.path);
    const busy = processCount(w) > 0 ? plural(processCount(w), 'process', 'processes') : '';
    return [c, busy, where].filter(Boolean).join('  ');
}

/** How many processes use the worktree, by the server's last scan (0 when not counted). */
export function processCount(w: Worktree): number {
    return w.processes?.length ?? 0;
}

/** Bytes for people: `512 B`, `3.4 MiB`, `1.2 GiB`. */
export function bytesText(n: number): string {
    if (n < 1024) {
        return `${n} B`;
    }
    let size = n;
    for (const unit of ['KiB', 'MiB', 'GiB', 'TiB']) {
        size /= 1024;
        if (size < 1024 || unit === 'TiB') {
            return `${size.toFixed(1)} ${unit}`;
        }
    }
    return `${n} B`;
}

/**
 * Disk use of one or more repositories, as the server measured it: `2.1 GiB on disk · 1.5 GiB
 * reclaimable` (reclaimable: what `wtls prune --merged` would free), or '' before any size.
 */
export function diskSummary(payloads: readonly WorktreesPayload[]): string {
    const measured = payloads.filter((p) => p.diskBytes !== null);
    if (measured.length === 0) {
        return '';
    }
    const total = measured.reduce((acc, p) => acc + (p.diskBytes ?? 0), 0);
    const reclaimable = payloads.reduce((acc, p) => acc + (p.reclaimableBytes ?? 0), 0);
    const onDisk = `${bytesText(total)} on disk`;
    return reclaimable > 0 ? `${onDisk} · ${bytesText(reclaimable)} reclaimable` : onDisk;
}

/** The tooltip lines (markdown) listing the processes that use a worktree. */
export function processesMarkdown(w: Worktree, limit = 10): string {
    const list = w.processes ?? [];
    if (list.length === 0) {
        return '';
    }
    const lines = list
        .slice(0, limit)
        .map(
            (p) =>
                `- pid ${p.pid} \`${p.command.replace(/`/g, "'")}\` — ${escapeMarkdown(p.reason)}` +
                (p.reason === 'cwd' ? '' : ` ${escapeMarkdown(p.path)}`),
        );
    if (list.length > limit) {
        lines.push(`- … ${list.length - limit} more`);
    }
    const verb = list.length === 1 ? 'uses' : 'use';
    return `${plural(list.length, 'process', 'processes')} ${verb} it:\n\n${lines.join('\n')}`;
}

/** The modal confirmation of `Stop Processes…`. */
export function stopProcessesConfirmation(w: Worktree): { message: string; detail: string } {
    const list = w.processes ?? [];
    const shown = list.slice(0, 15).map((p) => `  • pid ${p.pid} (${p.command}): ${p.reason} ${p.path}`);
    if (list.length > 15) {
        shown.push(`  • … and ${list.length - 15} more`);
    }
    return {
        message: `Stop ${plural(list.length, 'process', 'processes')} using ${branchLabel(w)}?`,
        detail:
            `${shown.join('\n')}\n\nEach gets SIGTERM, and SIGKILL if it still runs 5 seconds later. ` +
            'Nothing in the worktree is changed.',
    };
}

/** Codicon id for a worktree's node in the tree. */
export function treeIcon(w: Worktree): string {
    if (w.broken || w.prunable) {
        return 'error';
    }
    if (w.operation || w.conflicted > 0) {
        return 'git-merge';
    }
    if (w.agent?.state === 'waiting') {
        return agentIcon(w.agent);
    }
    if (conflictCount(w) > 0) {
        return 'warning';
    }
    if (w.locked) {
        return 'lock';
    }
    if (w.agent?.state === 'working') {
        return agentIcon(w.agent);
    }
    if (w.isThis) {
        return 'window';
    }
    return w.isMain ? 'home' : 'git-branch';
}

/**
 * `contextValue` of a worktree node: space-separated words the menus' `when` clauses match
 * with `viewItem =~ /\bword\b/`.
 */
export function contextValue(w: Worktree): string {
    const words = ['wtls-worktree'];
    words.push(w.isMain ? 'main' : 'linked');
    if (w.isThis) {
        words.push('this');
    }
    words.push(w.locked ? 'locked' : 'unlocked');
    if (w.prunable) {
        words.push('prunable');
    }
    if (dirtyCount(w) > 0) {
        words.push('dirty');
    }
    if (w.canMerge) {
        words.push('mergeable');
    }
    if (processCount(w) > 0) {
        words.push('busy');
    }
    return words.join(' ');
}

/**
 * The modal confirmation of `Remove Worktree…`, from the server's dry run of a forced removal
 * (which lists what would be backed up instead of refusing a dirty worktree).
 */
export function removeConfirmation(w: Worktree, dryRun: RemoveResult): { message: string; detail: string } {
    const files = dryRun.wouldBackUp ?? [];
    const message = `Remove the worktree of ${branchLabel(w)}?`;
    const parts: string[] = [];
    if (files.length === 0) {
        parts.push(`${w.path} has no uncommitted changes.`);
    } else {
        const shown = files.slice(0, 15).map((f) => `  • ${f}`);
        if (files.length > shown.length) {
            shown.push(`  … and ${files.length - shown.length} more`);
        }
        parts.push(
            `${w.path} has uncommitted work. wtls backs up ${plural(files.length, 'file')} to a ref ` +
                `before removing it, so nothing is lost:\n${shown.join('\n')}`,
        );
    }
    const unsaved = dryRun.unsaved ?? [];
    if (unsaved.length > 0) {
        const shown = unsaved.slice(0, 10).map((b) => `  • ${b.path}${b.window ? ` (in ${b.window})` : ''}`);
        if (unsaved.length > shown.length) {
            shown.push(`  … and ${unsaved.length - shown.length} more`);
        }
        parts.push(
            `${plural(unsaved.length, 'open file')} ${unsaved.length === 1 ? 'has' : 'have'} unsaved ` +
                `changes in an editor. Removing the worktree discards those edits (no backup holds them); ` +
                `save or close them first to keep them:\n${shown.join('\n')}`,
        );
    }
    if (w.locked) {
        parts.push(`It is locked${w.lockReason ? ` (${w.lockReason})` : ''}; removing it unlocks it.`);
    }
    const processes = dryRun.processes ?? [];
    if (processes.length > 0) {
        const shown = processes.slice(0, 10).map((p) => `  • pid ${p.pid} (${p.command}): ${p.reason} ${p.path}`);
        parts.push(
            `${plural(processes.length, 'process', 'processes')} still use it; removing it stops ` +
                `them first (SIGTERM, then SIGKILL):\n${shown.join('\n')}`,
        );
    }
    if (dryRun.wouldDeleteBranch && w.branch) {
        parts.push(`Its branch ${w.branch} is merged into the base branch and will be deleted.`);
    } else if (w.branch) {
        parts.push('The branch is kept unless you also delete it.');
    }
    return { message, detail: parts.join('\n\n') };
}

/** Whether the removal must be forced, as the server's dry run says (forced is the safe side). */
export function removeNeedsForce(dryRun: RemoveResult): boolean {
    return dryRun.needsForce ?? true;
}

/** Quotes one argument for the integrated terminal's shell. */
export function shellQuote(value: string, platform: string = process.platform): string {
    if (platform === 'win32') {
        return `"${value.replace(/"/g, '""')}"`;
    }
    if (/^[A-Za-z0-9_\-./:=@%+,]+$/.test(value)) {
        return value;
    }
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Values for the agent command's placeholders. */
export interface AgentVariables {
    promptFile: string;
    prompt: string;
    branch: string;
    worktree: string;
}

/**
 * The agent command with `{promptFile}`, `{prompt}`, `{branch}` and `{worktree}` replaced by
 * shell-quoted values; other braces are left as they are.
 */
export function substituteAgentCommand(
    template: string,
    vars: AgentVariables,
    platform: string = process.platform,
): string {
    return template.replace(/\{(promptFile|prompt|branch|worktree)\}/g, (_m, key: keyof AgentVariables) =>
        shellQuote(vars[key], platform),
    );
}

/**
 * Expands `${workspaceFolder}` and a leading `~` in a configured server command; `${workspaceFolder}`
 * stays as it is when there is no folder.
 */
export function expandServerCommand(command: string, workspaceFolder: string | undefined, home: string): string {
    let out = command.trim();
    if (workspaceFolder !== undefined) {
        out = out.split('${workspaceFolder}').join(workspaceFolder);
    }
    if (out === '~' || out.startsWith('~/')) {
        out = home + out.slice(1);
    }
    return out;
}

/** `wtls.engine.idleMinutes`' default: the engine's own (600 s), so nothing is passed for it. */
export const ENGINE_IDLE_MINUTES_DEFAULT = 10;

/**
 * The server's arguments with `--idle-timeout SECONDS` after `serve` when `wtls.engine.idleMinutes`
 * is set to something else than the engine's default (a wtls older than the engine does not know
 * the option, so the default passes nothing), unless the arguments already give one.
 */
export function withIdleTimeout(args: readonly string[], idleMinutes: unknown): string[] {
    const out = [...args];
    const serve = out.indexOf('serve');
    const minutes = typeof idleMinutes === 'number' && Number.isFinite(idleMinutes) && idleMinutes > 0 ? idleMinutes : undefined;
    const given = out.some((a) => a === '--idle-timeout' || a.startsWith('--idle-timeout='));
    if (minutes === undefined || minutes === ENGINE_IDLE_MINUTES_DEFAULT || serve < 0 || given) {
        return out;
    }
    out.splice(serve + 1, 0, '--idle-timeout', String(Math.max(1, Math.round(minutes * 60))));
    return out;
}

/** Milliseconds to wait before restart attempt `attempt` (0-based): 1 s, 2 s, 4 s, … capped at 60 s. */
export function backoffDelay(attempt: number): number {
    return Math.min(1000 * 2 ** Math.max(0, attempt), 60_000);
}

/** The message of a finished `Check Conflicts`, from the server's `wtls.check` result. */
export function checkSummary(result: unknown): string {
    const r = (result ?? {}) as { conflicts?: unknown; mergeOrderText?: unknown };
    if (!Array.isArray(r.conflicts)) {
        return 'Conflict check finished. Predicted conflicts are in the Problems panel.';
    }
    let files = 0;
    for (const entry of r.conflicts) {
        const f = (entry as { files?: unknown }).files;
        files += Array.isArray(f) ? f.length : 1;
    }
    if (files === 0) {
        return 'No predicted conflicts between worktrees.';
    }
    const order = typeof r.mergeOrderText === 'string' && r.mergeOrderText ? ` Merge order: ${r.mergeOrderText}.` : '';
    return `${plural(files, 'predicted conflict')} — see the Problems panel.${order}`;
}

/** What a person should know about a finished spawn besides success: skipped or failed setup, problems. */
export function spawnNotes(result: SpawnResult): string[] {
    const notes: string[] = [];
    const setup = result.setup;
    if (setup?.skipped) {
        notes.push(`Setup not run: ${setup.skipped}.`.replace(/\.\.$/, '.'));
    } else if (setup && setup.ok === false) {
        notes.push(setup.message ?? 'A setup command failed; see the output.');
    }
    for (const problem of result.problems ?? []) {
        notes.push(problem);
    }
    return notes;
}

/** The agent an agent command starts, as `wtls.spawn`'s `agent` argument: `claude` for Claude
 * Code (its hooks are written into the new worktree), `codex` for Codex CLI, else undefined. */
export function agentKind(command: string): 'claude' | 'codex' | undefined {
    const program = command.trim().split(/\s+/)[0] ?? '';
    const name = program.split(/[\\/]/).pop() ?? '';
    if (name === 'claude' || name === 'claude.exe') {
        return 'claude';
    }
    if (name === 'codex' || name === 'codex.exe') {
        return 'codex';
    }
    return undefined;
}

/** What `wtls.testMerges` found, in one sentence. */
export function testsSummary(report: TestsReport): string {
    if (report.notRun) {
        return `wtls: no tests ran: ${report.notRun}`;
    }
    const label = (branches: (string | null)[], paths: string[]): string =>
        branches.map((b, i) => b ?? paths[i]).join(' + ');
    const parts: string[] = [];
    for (const c of report.semanticConflicts) {
        const names = c.failures.map((f) => f.name).slice(0, 3).join(', ');
        parts.push(`${label(c.branches, c.worktrees)} pass alone but fail together${names ? ` (${names})` : ''}`);
    }
    if (report.failingAlone.length > 0) {
        parts.push(`failing on their own: ${report.failingAlone.join(', ')}`);
    }
    const runs = report.runs.length;
    const cached = report.runs.filter((r) => r.cached).length;
    const tail = `${runs} run${runs === 1 ? '' : 's'}${cached ? `, ${cached} cached` : ''}${report.cancelled ? ', cancelled' : ''}`;
    return parts.length > 0
        ? `wtls: semantic conflicts: ${parts.join('; ')} [${tail}]`
        : `wtls: every predicted merge passes \`${report.command}\` [${tail}]`;
}

/** What `wtls.land` did, in one message: the server's sentence, the failing tests, the problems. */
export function landSummary(result: LandResult): string {
    const parts = [`wtls: ${result.message ?? ''}`];
    const stop = (result.steps ?? []).find((s) => s.status !== 'landed' && s.status !== 'merged');
    const names = (stop?.failures ?? []).map((f) => f.name).slice(0, 3);
    if (names.length > 0) {
        parts.push(`failing: ${names.join(', ')}`);
    } else if (stop?.status === 'conflict' && (stop.conflicts ?? []).length > 0) {
        parts.push(`conflicting: ${(stop.conflicts ?? []).slice(0, 3).join(', ')}`);
    }
    const removed = (result.steps ?? []).filter((s) => s.removed).map((s) => s.branch);
    if (removed.length > 0) {
        parts.push(`removed ${removed.join(', ')}`);
    }
    for (const [path, reason] of result.skipped ?? []) {
        parts.push(`not taken ${baseName(path)}: ${reason}`);
    }
    parts.push(...(result.problems ?? []));
    return parts.join('; ');
}
