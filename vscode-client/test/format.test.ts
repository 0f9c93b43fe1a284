/**
 * Unit tests of the client's pure parts (status text, tooltips, quick pick items, tree labels,
 * agent command substitution, back-off), run by `node --test` without VS Code.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
    agentKind,
    agentSummary,
    backoffDelay,
    branchLabel,
    bytesText,
    checkSummary,
    contextValue,
    counters,
    diskSummary,
    escapeMarkdown,
    expandServerCommand,
    landSummary,
    mergeOrderText,
    newlyWaiting,
    pickFilters,
    processCount,
    processesMarkdown,
    quickPickItems,
    removeConfirmation,
    removeNeedsForce,
    shellQuote,
    spawnNotes,
    stateSummary,
    statusText,
    stopProcessesConfirmation,
    treeDescription,
    withIdleTimeout,
    substituteAgentCommand,
    testsSummary,
    tildify,
    tooltipMarkdown,
    treeIcon,
} from '../src/format';
import { type AgentState, payloadWithDefaults, type WireWorktreesPayload, type Worktree } from '../src/protocol';

/** The README's example payload, plus a main worktree and the other agent's worktree. */
function examplePayload(): WireWorktreesPayload {
    return {
        repository: '/home/me/tasks-app/.git',
        this: '/home/me/tasks-app-wipe',
        mainWorktree: '/home/me/tasks-app',
        baseBranch: 'main',
        worktrees: [
            { path: '/home/me/tasks-app', branch: 'main', isMain: true, head: 'a'.repeat(40) },
            {
                path: '/home/me/tasks-app-wipe',
                branch: 'agent/wipe',
                head: 'd7d27570ec2f60aa13705cdb04941383e9abec9b',
                isThis: true,
                canMerge: true,
                canRemove: true,
                canLock: true,
                staged: 1,
                unstaged: 2,
                base: { branch: 'main', ahead: 2, behind: 0, merged: false },
                conflicts: [
                    { path: '/home/me/tasks-app-remaining', branch: 'feature/remaining', files: ['cli.py'] },
                ],
            },
            {
                path: '/home/me/tasks-app-remaining',
                branch: 'feature/remaining',
                locked: true,
                lockReason: 'agent running',
                canMerge: true,
                canRemove: true,
                canUnlock: true,
                untracked: 1,
                base: { branch: 'main', ahead: 1, behind: 3, merged: false },
                conflicts: [{ path: '/home/me/tasks-app-wipe', branch: 'agent/wipe', files: ['cli.py'] }],
            },
        ],
    };
}

function worktree(over: Partial<Worktree> = {}): Worktree {
    const p = payloadWithDefaults({ repository: '/r/.git', worktrees: [{ path: '/r' }] });
    return { ...p.worktrees[0], ...over };
}

describe('payloadWithDefaults', () => {
    it('fills every omitted field with its default', () => {
        const p = payloadWithDefaults({ repository: '/r/.git', worktrees: [{ path: '/r' }] });
        assert.equal(p.this, null);
        assert.equal(p.mergeOrder, null);
        const w = p.worktrees[0];
        assert.deepEqual(
            [w.branch, w.isMain, w.isThis, w.locked, w.staged, w.ahead, w.base, w.conflicts, w.ports, w.canMerge],
            [null, false, false, false, 0, null, null, [], {}, false],
        );
    });

    it('marks the worktree named by `this` even when isThis is omitted', () => {
        const p = payloadWithDefaults({ repository: '/r/.git', this: '/b', worktrees: [{ path: '/a' }, { path: '/b' }] });
        assert.deepEqual(
            p.worktrees.map((w) => w.isThis),
            [false, true],
        );
    });

    it('keeps base and conflicts as sent', () => {
        const p = payloadWithDefaults(examplePayload());
        assert.deepEqual(p.worktrees[1].base, { branch: 'main', ahead: 2, behind: 0, merged: false });
        assert.deepEqual(p.worktrees[1].conflicts[0].files, ['cli.py']);
    });
});

describe('statusText', () => {
    it('shows branch, ahead/behind base, dirty count and predicted conflicts', () => {
        const p = payloadWithDefaults(examplePayload());
        assert.equal(statusText(p.worktrees[1]), '$(git-branch) agent/wipe ↑2 ●3 ⚠1');
    });

    it('shows only the branch for a clean worktree level with its base', () => {
        assert.equal(statusText(worktree({ branch: 'main' })), '$(git-branch) main');
    });

    it('shows behind, a lock icon and an operation in progress', () => {
        const w = worktree({
            branch: 'x',
            locked: true,
            base: { branch: 'main', ahead: 0, behind: 4, merged: false },
        });
        assert.equal(statusText(w), '$(lock) x ↓4');
        assert.equal(statusText(worktree({ branch: 'x', operation: 'rebase', conflicted: 2 })), '$(git-merge) x ●2 REBASE');
    });

    it('names a detached worktree by its short commit', () => {
        const w = worktree({ detached: true, head: 'abcdef0123456789' });
        assert.equal(branchLabel(w), '(detached abcdef0)');
        assert.equal(statusText(w), '$(git-branch) (detached abcdef0)');
    });

    it('sums conflicting files over all other worktrees', () => {
        const w = worktree({
            branch: 'b',
            conflicts: [
                { path: '/x', branch: 'x', files: ['a.py', 'b.py'], againstBase: false },
                { path: null, branch: 'main', files: ['c.py'], againstBase: true },
            ],
        });
        assert.equal(counters(w), '⚠3');
    });
});

describe('stateSummary and tooltip', () => {
    it('describes lock, base and changes in words', () => {
        const p = payloadWithDefaults(examplePayload());
        assert.equal(
            stateSummary(p.worktrees[2]),
            'locked: agent running · ↑1 ↓3 vs main · 1 changed path · ⚠ 1 predicted conflict with agent/wipe',
        );
        assert.equal(stateSummary(worktree({ base: { branch: 'main', ahead: 0, behind: 0, merged: true } })), 'merged into main · clean');
    });

    it('lists the other worktrees but not this one among them', () => {
        const md = tooltipMarkdown(payloadWithDefaults(examplePayload()), '/home/me');
        const [mine, others] = md.split('**Other worktrees**');
        assert.match(mine, /agent\/wipe/);
        assert.match(mine, /`cli\.py`/);
        assert.match(others, /\*\*main\*\* \(main\) — ~\/tasks-app — clean/);
        assert.match(others, /feature\/remaining/);
        assert.doesNotMatch(others, /agent\/wipe\*\*/);
    });

    it('ends with the suggested merge order in words', () => {
        const wire = examplePayload();
        wire.mergeOrder = [
            { path: '/home/me/tasks-app-wipe', branch: 'agent/wipe', files: [], description: 'merge agent/wipe first' },
            { path: '/x', branch: 'feature/remaining', files: ['cli.py'], description: 'then feature/remaining conflicts in cli.py:5' },
        ];
        const p = payloadWithDefaults(wire);
        assert.equal(mergeOrderText(p), 'merge agent/wipe first: then feature/remaining conflicts in cli.py:5');
        assert.match(tooltipMarkdown(p), /Merge order: merge agent\/wipe first: then feature\/remaining conflicts in cli\.py:5\.\n/);
    });

    it('names a conflict with the base branch as such', () => {
        const w = worktree({ branch: 'b', conflicts: [{ path: '/r', branch: 'main', files: ['x.py'], againstBase: true }] });
        assert.match(stateSummary(w), /⚠ 1 predicted conflict with base main$/);
    });

    it('says when there is no other worktree', () => {
        const md = tooltipMarkdown(payloadWithDefaults({ repository: '/r/.git', this: '/r', worktrees: [{ path: '/r', branch: 'main' }] }));
        assert.match(md, /No other worktree\./);
    });

    it('escapes markdown in branch names', () => {
        assert.equal(escapeMarkdown('feat/*x*_[y]'), 'feat/\\*x\\*\\_\\[y\\]');
    });
});

describe('quickPickItems', () => {
    it('lists every worktree with branch, path and state; marks the current window', () => {
        const items = quickPickItems([payloadWithDefaults(examplePayload())], pickFilters.any, '/home/me');
        assert.deepEqual(
            items.map((i) => [i.label, i.description, i.isThis]),
            [
                ['$(git-branch) main', 'main worktree — ~/tasks-app', false],
                ['$(window) agent/wipe', 'current window — ~/tasks-app-wipe', true],
                ['$(git-branch) feature/remaining', '~/tasks-app-remaining', false],
            ],
        );
        assert.match(items[1].detail, /3 changed paths/);
    });

    it('filters for the lifecycle commands', () => {
        const p = [payloadWithDefaults(examplePayload())];
        const labels = (f: typeof pickFilters.any): string[] => quickPickItems(p, f).map((i) => i.path);
        assert.deepEqual(labels(pickFilters.linked), ['/home/me/tasks-app-wipe', '/home/me/tasks-app-remaining']);
        assert.deepEqual(labels(pickFilters.mergeable), ['/home/me/tasks-app-wipe', '/home/me/tasks-app-remaining']);
        assert.deepEqual(labels(pickFilters.lockable), ['/home/me/tasks-app-wipe']);
        assert.deepEqual(labels(pickFilters.unlockable), ['/home/me/tasks-app-remaining']);
    });

    it('names the repository when there are several', () => {
        const a = payloadWithDefaults(examplePayload());
        const b = payloadWithDefaults({
            repository: '/w/other/.git',
            mainWorktree: '/w/other',
            worktrees: [{ path: '/w/other', branch: 'trunk', isMain: true }],
        });
        const items = quickPickItems([a, b]);
        assert.equal(items.length, 4);
        assert.equal(items[3].description, 'main worktree, other — /w/other');
    });
});

describe('tree presentation', () => {
    it('encodes what menus need in the context value', () => {
        const p = payloadWithDefaults(examplePayload());
        assert.equal(contextValue(p.worktrees[0]), 'wtls-worktree main unlocked');
        assert.equal(contextValue(p.worktrees[1]), 'wtls-worktree linked this unlocked dirty mergeable');
        assert.equal(contextValue(p.worktrees[2]), 'wtls-worktree linked locked dirty mergeable');
    });

    it('describes a node by its counters and folder name', () => {
        const p = payloadWithDefaults(examplePayload());
        assert.equal(treeDescription(p.worktrees[0]), 'tasks-app');
        assert.equal(treeDescription(p.worktrees[1]), '↑2 ●3 ⚠1  tasks-app-wipe');
    });

    it('picks an icon by the most urgent state', () => {
        const p = payloadWithDefaults(examplePayload());
        assert.equal(treeIcon(p.worktrees[0]), 'home');
        assert.equal(treeIcon(p.worktrees[1]), 'warning');
        assert.equal(treeIcon(worktree({ prunable: true })), 'error');
        assert.equal(treeIcon(worktree({ locked: true })), 'lock');
    });
});

describe('processes and disk', () => {
    const sleep = { pid: 41, command: 'sleep 300', reason: 'cwd', path: '/r/wt' };
    const server = { pid: 42, command: 'node server.js', reason: 'open file', path: '/r/wt/db.sqlite' };

    it('reads processes from the wire (null when not counted, bad entries dropped)', () => {
        const p = payloadWithDefaults({
            repository: '/r/.git',
            diskBytes: 3 * 1024 ** 3,
            reclaimableBytes: 1024 ** 3,
            worktrees: [{ path: '/r' }, { path: '/r/wt', processes: [sleep, { command: 'x' }] }],
        });
        assert.equal(p.worktrees[0].processes, null);
        assert.deepEqual(p.worktrees[1].processes, [sleep]);
        assert.deepEqual([p.diskBytes, p.reclaimableBytes], [3 * 1024 ** 3, 1024 ** 3]);
        const bare = payloadWithDefaults({ repository: '/r/.git', worktrees: [] });
        assert.deepEqual([bare.diskBytes, bare.reclaimableBytes], [null, null]);
    });

    it('counts processes in the description and marks the node busy for Stop Processes', () => {
        const w = worktree({ path: '/r/wt', processes: [sleep, server] });
        assert.equal(processCount(w), 2);
        assert.equal(treeDescription(w), '2 processes  wt');
        assert.match(contextValue(w), /\bbusy\b/);
        assert.equal(treeDescription(worktree({ path: '/r/wt', processes: [sleep] })), '1 process  wt');
        assert.doesNotMatch(contextValue(worktree({ processes: [] })), /\bbusy\b/);
        assert.equal(processCount(worktree()), 0);
    });

    it('lists pid, command and what ties each process in the tooltip and the confirmation', () => {
        const w = worktree({ path: '/r/wt', branch: 'feature/a', processes: [sleep, server] });
        const tip = processesMarkdown(w);
        assert.match(tip, /^2 processes use it:/);
        assert.match(tip, /- pid 41 `sleep 300` — cwd$/m);
        assert.match(tip, /- pid 42 `node server.js` — open file \/r\/wt\/db.sqlite$/m);
        assert.equal(processesMarkdown(worktree()), '');
        const { message, detail } = stopProcessesConfirmation(w);
        assert.equal(message, 'Stop 2 processes using feature/a?');
        assert.match(detail, /pid 41 \(sleep 300\): cwd \/r\/wt/);
        assert.match(detail, /SIGTERM/);
    });

    it('shows the total and reclaimable bytes the server sent', () => {
        assert.equal(bytesText(512), '512 B');
        assert.equal(bytesText(3.5 * 1024 ** 2), '3.5 MiB');
        const p = payloadWithDefaults({
            repository: '/r/.git',
            diskBytes: 3 * 1024 ** 3,
            reclaimableBytes: 1024 ** 3,
            worktrees: [],
        });
        assert.equal(diskSummary([p]), '3.0 GiB on disk · 1.0 GiB reclaimable');
        assert.equal(diskSummary([{ ...p, reclaimableBytes: 0 }]), '3.0 GiB on disk');
        assert.equal(diskSummary([{ ...p, diskBytes: null, reclaimableBytes: null }]), '');
    });
});

describe('removeConfirmation', () => {
    it('lists the files that would be backed up, and forces the removal', () => {
        const w = worktree({ branch: 'agent/x', path: '/r-x' });
        const dryRun = { wouldBackUp: ['a.py', 'notes.md'], needsForce: true };
        const { message, detail } = removeConfirmation(w, dryRun);
        assert.equal(message, 'Remove the worktree of agent/x?');
        assert.match(detail, /backs up 2 files/);
        assert.match(detail, /• a\.py\n {2}• notes\.md\n\nThe branch is kept/);
        assert.equal(removeNeedsForce(dryRun), true);
    });

    it('says so when nothing needs a backup, and needs no force', () => {
        const w = worktree({ path: '/r-x' });
        const { detail } = removeConfirmation(w, { wouldBackUp: [], needsForce: false });
        assert.match(detail, /no uncommitted changes/);
        assert.equal(removeNeedsForce({ wouldBackUp: [], needsForce: false }), false);
    });

    it('warns that the unsaved edits of open files, in any window, are discarded', () => {
        const w = worktree({ path: '/r-x' });
        const dryRun = {
            wouldBackUp: [],
            needsForce: true,
            unsaved: [{ path: '/r-x/a.py', window: 'the window on /r' }, { path: '/r-x/b.py' }],
        };
        const { detail } = removeConfirmation(w, dryRun);
        assert.match(detail, /2 open files have unsaved changes in an editor\. Removing the worktree discards/);
        assert.match(detail, /• \/r-x\/a\.py \(in the window on \/r\)\n {2}• \/r-x\/b\.py/);
        assert.equal(removeNeedsForce(dryRun), true);
    });

    it('mentions a lock and a merged branch that goes too', () => {
        const w = worktree({ path: '/r-x', branch: 'agent/x', locked: true, lockReason: 'busy' });
        const { detail } = removeConfirmation(w, { wouldBackUp: [], wouldDeleteBranch: true });
        assert.match(detail, /It is locked \(busy\); removing it unlocks it\./);
        assert.match(detail, /agent\/x is merged into the base branch and will be deleted/);
        // A server that does not say: forced, the side that backs everything up first.
        assert.equal(removeNeedsForce({}), true);
    });
});

describe('agent command substitution', () => {
    const vars = {
        promptFile: '/tmp/wt prompts/task.md',
        prompt: "Add a 'wipe' command",
        branch: 'agent/wipe',
        worktree: '/home/me/tasks-app-wipe',
    };

    it('substitutes and shell-quotes every placeholder', () => {
        assert.equal(
            substituteAgentCommand('aider --message-file {promptFile}', vars, 'linux'),
            "aider --message-file '/tmp/wt prompts/task.md'",
        );
        assert.equal(substituteAgentCommand('claude {prompt}', vars, 'linux'), `claude 'Add a '\\''wipe'\\'' command'`);
        assert.equal(substituteAgentCommand('run {branch} {worktree}', vars, 'linux'), 'run agent/wipe /home/me/tasks-app-wipe');
    });

    it('leaves a command without placeholders and unknown braces alone', () => {
        assert.equal(substituteAgentCommand('claude', vars, 'linux'), 'claude');
        assert.equal(substituteAgentCommand('echo {other}', vars, 'linux'), 'echo {other}');
    });

    it('quotes for cmd/PowerShell on Windows', () => {
        assert.equal(shellQuote('C:\\a b\\"x".md', 'win32'), '"C:\\a b\\""x"".md"');
    });
});

describe('server command and back-off', () => {
    it('expands ${workspaceFolder} and ~', () => {
        assert.equal(expandServerCommand('${workspaceFolder}/.venv/bin/wtls', '/w', '/home/me'), '/w/.venv/bin/wtls');
        assert.equal(expandServerCommand('~/bin/wtls', undefined, '/home/me'), '/home/me/bin/wtls');
        assert.equal(expandServerCommand(' wtls ', '/w', '/home/me'), 'wtls');
    });

    it('passes wtls.engine.idleMinutes as --idle-timeout after serve, unless it is the default', () => {
        assert.deepEqual(withIdleTimeout(['serve'], 10), ['serve']);
        assert.deepEqual(withIdleTimeout(['serve'], undefined), ['serve']);
        assert.deepEqual(withIdleTimeout(['serve'], 2), ['serve', '--idle-timeout', '120']);
        assert.deepEqual(withIdleTimeout(['-m', 'wtls', 'serve', '--no-daemon'], 0.5), [
            '-m',
            'wtls',
            'serve',
            '--idle-timeout',
            '30',
            '--no-daemon',
        ]);
        assert.deepEqual(withIdleTimeout(['serve', '--idle-timeout', '9'], 2), ['serve', '--idle-timeout', '9']);
        assert.deepEqual(withIdleTimeout(['serve'], -1), ['serve']);
        assert.deepEqual(withIdleTimeout(['other'], 2), ['other']);
    });

    it('doubles the delay up to a minute', () => {
        assert.deepEqual(
            [0, 1, 2, 3, 5, 6, 20].map(backoffDelay),
            [1000, 2000, 4000, 8000, 32000, 60000, 60000],
        );
    });

    it('shortens home to ~ only for paths inside it', () => {
        assert.equal(tildify('/home/me/x', '/home/me'), '~/x');
        assert.equal(tildify('/home/mex/x', '/home/me'), '/home/mex/x');
    });
});

describe('checkSummary', () => {
    it('counts predicted conflicts in the check result', () => {
        assert.equal(checkSummary({ conflicts: [] }), 'No predicted conflicts between worktrees.');
        assert.equal(checkSummary({ conflicts: [{ files: ['a', 'b'] }] }), '2 predicted conflicts — see the Problems panel.');
        assert.equal(
            checkSummary({ conflicts: [{ files: [{ path: 'cli.py' }] }], mergeOrderText: 'merge a first: then b merges cleanly' }),
            '1 predicted conflict — see the Problems panel. Merge order: merge a first: then b merges cleanly.',
        );
        assert.match(checkSummary(null), /Problems panel/);
    });
});

describe('spawnNotes', () => {
    const base = { path: '/w', branch: 'agent/x', uri: 'file:///w' };

    it('is empty for a clean spawn', () => {
        assert.deepEqual(spawnNotes({ ...base, setup: { ran: true, ok: true, skipped: null }, problems: [] }), []);
    });

    it('says why setup was skipped or failed, and lists problems', () => {
        assert.deepEqual(
            spawnNotes({
                ...base,
                setup: { ran: false, skipped: 'the workspace is not trusted: setup commands were not run (npm ci)' },
                problems: ['could not assign ports: none free'],
            }),
            [
                'Setup not run: the workspace is not trusted: setup commands were not run (npm ci).',
                'could not assign ports: none free',
            ],
        );
        assert.deepEqual(spawnNotes({ ...base, setup: { ran: true, ok: false, message: 'npm ci exited 1' } }), ['npm ci exited 1']);
    });
});

describe('agentKind', () => {
    it('knows Claude Code and Codex by their program, wherever installed', () => {
        assert.equal(agentKind('claude "$(cat .wtls/task.md)"'), 'claude');
        assert.equal(agentKind('/home/me/.local/bin/claude --resume'), 'claude');
        assert.equal(agentKind('codex {prompt}'), 'codex');
        assert.equal(agentKind('aider --yes'), undefined);
        assert.equal(agentKind(''), undefined);
        assert.equal(agentKind('claudette'), undefined);
    });
});

describe('agent states', () => {
    const waiting: AgentState = {
        state: 'waiting',
        since: '2026-11-30T22:08:21Z',
        message: 'Claude needs your permission to use Bash',
        tool: 'claude',
        session: 's1',
        pid: 4242,
        others: [],
    };

    it('reads the agent object and drops one it does not understand', () => {
        const p = payloadWithDefaults({
            repository: '/r/.git',
            worktrees: [
                { path: '/a', agent: { state: 'waiting', since: waiting.since } },
                { path: '/b', agent: { state: 'dancing' } as unknown as AgentState },
                { path: '/c' },
            ],
        });
        assert.deepEqual(p.worktrees[0].agent, {
            state: 'waiting',
            since: waiting.since,
            message: null,
            tool: null,
            session: null,
            pid: null,
            others: [],
        });
        assert.equal(p.worktrees[1].agent, null);
        assert.equal(p.worktrees[2].agent, null);
    });

    it('shows this window\'s agent in the status bar and the tree', () => {
        const w = worktree({ branch: 'agent/wipe', agent: waiting });
        assert.equal(statusText(w), '$(git-branch) agent/wipe $(bell-dot) waiting');
        assert.equal(treeIcon(w), 'bell-dot');
        assert.equal(treeIcon(worktree({ agent: { ...waiting, state: 'working' } })), 'sync~spin');
        assert.equal(treeIcon(worktree({ agent: { ...waiting, state: 'idle' } })), 'git-branch');
        const now = new Date(waiting.since);
        assert.match(agentSummary(waiting, now), /^claude waiting since \d\d:\d\d: Claude needs your permission/);
        assert.match(stateSummary(w), /claude waiting since/);
        assert.match(stateSummary(worktree({ agent: { ...waiting, others: ['s2'] } })), /2 agent sessions at once/);
    });

    it('tells about another worktree\'s agent once, when it starts waiting', () => {
        const base = payloadWithDefaults(examplePayload());
        const withAgent = (agent: AgentState | null, path = '/home/me/tasks-app-remaining') => ({
            ...base,
            worktrees: base.worktrees.map((w) => (w.path === path ? { ...w, agent } : w)),
        });
        assert.deepEqual(newlyWaiting(undefined, withAgent(waiting)), []); // first payload: no news
        const before = withAgent({ ...waiting, state: 'working' });
        assert.deepEqual(newlyWaiting(before, withAgent(waiting)), [
            {
                path: '/home/me/tasks-app-remaining',
                branch: 'feature/remaining',
                text: 'feature/remaining is waiting: Claude needs your permission to use Bash',
            },
        ]);
        assert.deepEqual(newlyWaiting(withAgent(waiting), withAgent(waiting)), []); // still waiting
        const again = { ...waiting, since: '2026-11-30T22:10:00Z', message: null };
        assert.equal(newlyWaiting(withAgent(waiting), withAgent(again))[0].text, 'feature/remaining is waiting: it needs you');
        // This window's own agent is in its status bar, not a notification.
        assert.deepEqual(newlyWaiting(withAgent(null, '/home/me/tasks-app-wipe'), withAgent(waiting, '/home/me/tasks-app-wipe')), []);
    });
});

it('testsSummary names the pairs that fail together, or says all pass', () => {
    const base = {
        command: 'pytest -q',
        runs: [],
        semanticConflicts: [],
        failingAlone: [],
        baseFails: false,
        notRun: null,
        skipped: [],
        notes: [],
        cancelled: false,
    };
    const run = { worktrees: [], branches: [], tree: 't', status: 'pass' as const, exitCode: 0, seconds: 1, cached: true, output: '', failures: [] };
    assert.strictEqual(testsSummary({ ...base, runs: [run, { ...run, cached: false }] }), 'wtls: every predicted merge passes `pytest -q` [2 runs, 1 cached]');
    const conflict = { worktrees: ['/a', '/b'], branches: ['feature/a', null], failures: [{ name: 'test_total' }], output: '' };
    assert.strictEqual(
        testsSummary({ ...base, semanticConflicts: [conflict], runs: [run] }),
        'wtls: semantic conflicts: feature/a + /b pass alone but fail together (test_total) [1 run, 1 cached]',
    );
    assert.strictEqual(testsSummary({ ...base, notRun: 'test in .wtls.toml is not trusted' }), 'wtls: no tests ran: test in .wtls.toml is not trusted');
});

it('landSummary gives the server sentence, the failing tests, removals and what was not taken', () => {
    const base = { baseBranch: 'main', command: 'pytest -q', baseBefore: 'a'.repeat(40), baseAfter: 'b'.repeat(40) };
    assert.strictEqual(
        landSummary({ ...base, steps: [{ worktree: '/w/a', branch: 'feature/a', status: 'landed', removed: true }], message: 'landed feature/a into main' }),
        'wtls: landed feature/a into main; removed feature/a',
    );
    assert.strictEqual(
        landSummary({
            ...base,
            steps: [
                { worktree: '/w/a', branch: 'feature/a', status: 'landed' },
                { worktree: '/w/b', branch: 'feature/b', status: 'fail', failures: [{ name: 'test_total' }] },
            ],
            skipped: [['/w/c', 'it has uncommitted changes']],
            message: 'landed feature/a into main; stopped at feature/b (the tests fail on its merge)',
        }),
        'wtls: landed feature/a into main; stopped at feature/b (the tests fail on its merge); failing: test_total; not taken c: it has uncommitted changes',
    );
});
