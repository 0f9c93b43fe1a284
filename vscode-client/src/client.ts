/**
 * Owns the one `LanguageClient` of this window: starts the wtls server, restarts it after a
 * crash with a back-off, and serializes every start/stop so that restarts never overlap.
 *
 * The server process is spawned here (not by vscode-languageclient) so that its stderr and exit
 * status land in the log and a failure notification can say why the server stopped.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import * as vscode from 'vscode';
import {
    CloseAction,
    type CloseHandlerResult,
    ErrorAction,
    type ErrorHandlerResult,
    ExecuteCommandRequest,
    LanguageClient,
    type LanguageClientOptions,
    ResponseError,
    RevealOutputChannelOn,
    State,
    type StreamInfo,
} from 'vscode-languageclient/node';
import { backoffDelay } from './format';
import {
    ERROR_CODE,
    type Fix,
    MOVED_METHOD,
    type MovedPayload,
    payloadWithDefaults,
    REFUSED_CODE,
    type RefusalData,
    type WireWorktreesPayload,
    WORKTREES_METHOD,
    type WorktreesPayload,
} from './protocol';
import { resolveServerLaunch, SECTION, ServerLaunch, ServerNotFound, serverSettings } from './settings';

/** Consecutive failed starts after which the client stops retrying until told to. */
const MAX_ATTEMPTS = 6;
/** A server that ran this long before it stopped crashed "once": the back-off starts over. */
const STABLE_MS = 60_000;
/** Lines of the server's stderr kept to explain a failure. */
const STDERR_TAIL = 20;

/**
 * A command the server refused on purpose (nothing changed); the message says why, `fixes`
 * what would get past it (the server's word: the client derives no rule), and `command` with
 * `args` what was refused, so a fix can run it again.
 */
export class RefusedError extends Error {
    constructor(
        message: string,
        readonly command: string,
        readonly args: object,
        readonly fixes: Fix[],
    ) {
        super(message);
    }
}

function refusalFixes(data: unknown): Fix[] {
    const fixes = (data as RefusalData | null | undefined)?.fixes;
    return Array.isArray(fixes)
        ? fixes.filter((f): f is Fix => typeof f?.action === 'string' && typeof f?.label === 'string')
        : [];
}

/** Where the server is in its life, for context keys and the status bar. */
export type ServerState = 'starting' | 'running' | 'stopped' | 'failed';

/** The extension's view of the server. */
export class WtlsClient implements vscode.Disposable {
    private client: LanguageClient | undefined;
    private child: ChildProcess | undefined;
    /** Bumped at each start: exit events of an older process are ignored. */
    private generation = 0;
    private queue: Promise<void> = Promise.resolve();
    private attempt = 0;
    /** When the current server reached the running state (0: not running). */
    private runningSince = 0;
    private restartTimer: NodeJS.Timeout | undefined;
    /** True once a failure notification was shown in the current run of failures. */
    private failureShown = false;
    /** The server's last stderr lines, with the time each arrived. */
    private stderrTail: { at: number; line: string }[] = [];
    private disposed = false;
    private _state: ServerState = 'stopped';

    private readonly worktreesEmitter = new vscode.EventEmitter<WorktreesPayload>();
    /** Fires for every `wtls/worktrees` notification (defaults filled in). */
    readonly onDidReceiveWorktrees = this.worktreesEmitter.event;
    private readonly movedEmitter = new vscode.EventEmitter<MovedPayload>();
    /** Fires for every `wtls/moved` notification. */
    readonly onDidMoveWorktree = this.movedEmitter.event;
    private readonly stateEmitter = new vscode.EventEmitter<ServerState>();
    /** Fires when the server starts, stops or fails. */
    readonly onDidChangeState = this.stateEmitter.event;

    constructor(
        private readonly log: vscode.LogOutputChannel,
        private readonly extensionUri: vscode.Uri,
    ) {}

    get state(): ServerState {
        return this._state;
    }

    /** Starts the server (no-op when it is running). */
    start(): Promise<void> {
        return this.enqueue(async () => {
            if (this.client?.state !== State.Running) {
                await this.doStop();
                await this.doStart();
            }
        });
    }

    /** Stops the server and starts it again; resets the back-off when a person asked for it. */
    restart(reason: string, byUser = true): Promise<void> {
        if (byUser) {
            this.attempt = 0;
            this.failureShown = false;
        }
        this.clearRestartTimer();
        this.log.info(`Restarting the wtls server: ${reason}`);
        return this.enqueue(async () => {
            await this.doStop();
            await this.doStart();
        });
    }

    /** Stops the server for good (deactivation). */
    stop(): Promise<void> {
        this.clearRestartTimer();
        return this.enqueue(() => this.doStop());
    }

    /** Runs a server command (`workspace/executeCommand`); a refusal throws {@link RefusedError}. */
    async executeCommand<T>(command: string, args: object = {}): Promise<T> {
        const client = this.runningClient();
        try {
            return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [args] })) as T;
        } catch (err) {
            if (err instanceof ResponseError && err.code === REFUSED_CODE) {
                throw new RefusedError(err.message, command, args, refusalFixes(err.data));
            }
            if (err instanceof ResponseError && err.code === ERROR_CODE) {
                throw new Error(err.message);
            }
            throw err;
        }
    }

    /** Sends one of wtls's own requests; a refusal throws {@link RefusedError}. */
    async request<T>(method: string, params: object): Promise<T> {
        const client = this.runningClient();
        try {
            return await client.sendRequest<T>(method, params);
        } catch (err) {
            if (err instanceof ResponseError && err.code === REFUSED_CODE) {
                throw new RefusedError(err.message, method, params, refusalFixes(err.data));
            }
            if (err instanceof ResponseError && err.code === ERROR_CODE) {
                throw new Error(err.message);
            }
            throw err;
        }
    }

    dispose(): void {
        this.disposed = true;
        this.clearRestartTimer();
        void this.stop();
        this.worktreesEmitter.dispose();
        this.movedEmitter.dispose();
        this.stateEmitter.dispose();
    }

    private runningClient(): LanguageClient {
        if (!this.client || this.client.state !== State.Running) {
            throw new Error('The wtls server is not running. See "Worktrees: Show Server Output".');
        }
        return this.client;
    }

    private enqueue(job: () => Promise<void>): Promise<void> {
        const next = this.queue.then(job, job);
        // Keep the chain alive after a failure; callers still see their own job's error.
        this.queue = next.catch((err: unknown) => this.log.error(`wtls server: ${String(err)}`));
        return next;
    }

    private setState(state: ServerState): void {
        if (this._state !== state) {
            this._state = state;
            this.stateEmitter.fire(state);
        }
    }

    private clearRestartTimer(): void {
        if (this.restartTimer) {
            clearTimeout(this.restartTimer);
            this.restartTimer = undefined;
        }
    }

    private async doStart(): Promise<void> {
        if (this.disposed) {
            return;
        }
        this.setState('starting');
        let launch: ServerLaunch;
        try {
            launch = await resolveServerLaunch(this.extensionUri.fsPath);
        } catch (err) {
            // Not installed: retrying cannot help until a setting or PATH changes.
            this.setState('failed');
            this.log.error(String(err instanceof Error ? err.message : err));
            this.notifyFailure(err instanceof Error ? err.message : String(err), err instanceof ServerNotFound);
            return;
        }
        const generation = ++this.generation;
        this.stderrTail = [];
        const extraEnv = Object.entries(launch.env ?? {}).map(([k, v]) => ` ${k}=${v}`).join('');
        this.log.info(`Starting the wtls server (${launch.source}):${extraEnv} ${[launch.command, ...launch.args].join(' ')}`);
        const client = new LanguageClient(
            SECTION,
            'wtls',
            () => this.spawnServer(launch, generation),
            this.clientOptions(),
        );
        client.onNotification(WORKTREES_METHOD, (raw: WireWorktreesPayload) =>
            this.worktreesEmitter.fire(payloadWithDefaults(raw)),
        );
        client.onNotification(MOVED_METHOD, (moved: MovedPayload) => this.movedEmitter.fire(moved));
        this.client = client;
        try {
            await client.start();
            this.runningSince = Date.now();
            this.setState('running');
            this.log.info('The wtls server is running.');
        } catch (err) {
            this.log.error(`The wtls server did not start: ${String(err)}`);
            await this.doStop();
            this.scheduleRestart(`did not start (${this.lastError() || String(err)})`, true);
        }
    }

    private spawnServer(launch: ServerLaunch, generation: number): Promise<StreamInfo> {
        return new Promise((resolve, reject) => {
            const child = spawn(launch.command, launch.args, {
                cwd: launch.cwd,
                env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8', ...launch.env },
                stdio: 'pipe',
            });
            this.child = child;
            child.on('error', (err) => {
                this.log.error(`Could not run ${launch.command}: ${err.message}`);
                this.stderrTail.push({ at: Date.now(), line: err.message });
                reject(err);
            });
            child.stderr.setEncoding('utf8');
            let partial = '';
            child.stderr.on('data', (chunk: string) => {
                const lines = (partial + chunk).split(/\r?\n/);
                partial = lines.pop() ?? '';
                for (const line of lines) {
                    this.log.appendLine(line);
                    this.stderrTail.push({ at: Date.now(), line });
                }
                this.stderrTail.splice(0, Math.max(0, this.stderrTail.length - STDERR_TAIL));
            });
            child.on('exit', (code, signal) => {
                if (partial) {
                    this.log.appendLine(partial);
                    this.stderrTail.push({ at: Date.now(), line: partial });
                }
                if (generation !== this.generation) {
                    return;
                }
                this.child = undefined;
                if (this._state === 'running' || this._state === 'starting') {
                    const how = signal ? `signal ${signal}` : `exit code ${code}`;
                    const wasRunning = this._state === 'running';
                    this.log.warn(`The wtls server stopped unexpectedly (${how}).`);
                    if (wasRunning && Date.now() - this.runningSince > STABLE_MS) {
                        // It had worked for a while: a fresh crash, not a crash loop.
                        this.attempt = 0;
                        this.failureShown = false;
                    }
                    this.runningSince = 0;
                    this.setState('failed');
                    // A crash of a working server is said in the log and the status bar only;
                    // a server that cannot even start gets one notification.
                    const detail = this.lastError() ? `: ${this.lastError()}` : '';
                    this.scheduleRestart(
                        wasRunning ? `stopped (${how}${detail})` : `did not start (${how}${detail})`,
                        !wasRunning,
                    );
                }
            });
            if (child.pid !== undefined) {
                resolve({ reader: child.stdout, writer: child.stdin });
            }
        });
    }

    private clientOptions(): LanguageClientOptions {
        return {
            // Conflict markers and branch diagnostics concern any file on disk.
            documentSelector: [{ scheme: 'file' }],
            outputChannel: this.log,
            traceOutputChannel: this.log,
            revealOutputChannelOn: RevealOutputChannelOn.Never,
            initializationOptions: { settings: serverSettings(), trusted: vscode.workspace.isTrusted },
            // Changes of the `wtls` section reach the server as workspace/didChangeConfiguration.
            synchronize: { configurationSection: SECTION },
            errorHandler: {
                error: (): ErrorHandlerResult => ({ action: ErrorAction.Continue, handled: true }),
                // Restarts are ours (with back-off and one notification), not the library's.
                closed: (): CloseHandlerResult => ({ action: CloseAction.DoNotRestart, handled: true }),
            },
            markdown: { isTrusted: false, supportHtml: false },
        };
    }

    private async doStop(): Promise<void> {
        const client = this.client;
        const child = this.child;
        this.client = undefined;
        this.child = undefined;
        this.generation++;
        if (client) {
            try {
                if (client.state === State.Running) {
                    await client.stop(2000);
                }
            } catch (err) {
                this.log.debug(`Stopping the client: ${String(err)}`);
            }
            try {
                await client.dispose(1000);
            } catch {
                // Already stopped.
            }
        }
        if (child && child.exitCode === null && child.signalCode === null) {
            await new Promise<void>((resolve) => {
                const kill = setTimeout(() => child.kill('SIGKILL'), 2000);
                child.once('exit', () => {
                    clearTimeout(kill);
                    resolve();
                });
                child.kill('SIGTERM');
            });
        }
        if (this._state !== 'failed') {
            this.setState('stopped');
        }
    }

    /**
     * The server's last words: its last stderr line from just before the end, leaving out
     * Python's routine log lines (`INFO:`/`WARNING:`/`DEBUG:`), which rarely say why it stopped.
     */
    private lastError(): string {
        const recent = this.stderrTail.filter(
            (l) => l.line.trim() !== '' && Date.now() - l.at < 3000 && !/^(DEBUG|INFO|WARNING):/.test(l.line),
        );
        return recent.length > 0 ? recent[recent.length - 1].line.trim() : '';
    }

    /**
     * Schedules the next start after a failure, with back-off; a second call while one is
     * pending is a no-op. `notify`: also show the (one per run of failures) notification.
     */
    private scheduleRestart(why: string, notify: boolean): void {
        if (this.disposed || this.restartTimer) {
            return;
        }
        this.setState('failed');
        if (this.attempt >= MAX_ATTEMPTS) {
            this.log.error(
                `The wtls server failed ${MAX_ATTEMPTS} times in a row; not restarting it again. ` +
                    'Fix the cause shown above, then run "Worktrees: Restart Server".',
            );
            this.failureShown = false; // giving up is always said, once
            this.notifyFailure(`The wtls server keeps failing: ${why}.`, false);
            return;
        }
        const delay = backoffDelay(this.attempt);
        this.attempt++;
        this.log.warn(
            `The wtls server ${why}; restarting in ${delay / 1000} s (attempt ${this.attempt} of ${MAX_ATTEMPTS}).`,
        );
        if (notify) {
            this.notifyFailure(`The wtls server ${why}. Retrying in ${delay / 1000} s.`, false);
        }
        this.restartTimer = setTimeout(() => {
            this.restartTimer = undefined;
            void this.enqueue(async () => {
                await this.doStop();
                await this.doStart();
            });
        }, delay);
    }

    /** One notification per run of failures, never one per attempt. */
    private notifyFailure(message: string, notInstalled: boolean): void {
        if (this.failureShown || this.disposed) {
            return;
        }
        this.failureShown = true;
        const showOutput = 'Show output';
        const howToInstall = 'How to install';
        void vscode.window.showErrorMessage(message, showOutput, howToInstall).then(async (choice) => {
            if (choice === showOutput) {
                this.log.show(true);
            } else if (choice === howToInstall) {
                await showInstallHelp(this.extensionUri);
            }
        });
        if (notInstalled) {
            this.log.info('Set "wtls.server.command" or install wtls; the server starts when the setting changes.');
        }
    }
}

/** Opens the extension's README (bundled, so it works offline) at its installation section. */
export async function showInstallHelp(extensionUri: vscode.Uri): Promise<void> {
    // vsce stores the README as `readme.md`; a development checkout has `README.md`.
    for (const name of ['readme.md', 'README.md']) {
        const readme = vscode.Uri.joinPath(extensionUri, name);
        try {
            await vscode.workspace.fs.stat(readme);
        } catch {
            continue;
        }
        await vscode.commands.executeCommand('markdown.showPreview', readme);
        return;
    }
    await vscode.env.openExternal(vscode.Uri.parse('https://github.com/wtls/wtls#readme'));
}
