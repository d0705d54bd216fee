/**
 * The orchestrator's handle on one child process: started with `fork` (so it has an IPC channel),
 * asked questions by message id, and stopped by asking it to close, then by SIGKILL if it does not.
 */
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

type Message = { id?: number; type?: string; error?: string } & Record<string, unknown>;

export class BenchProcess {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (message: Message) => void; reject: (error: Error) => void }>();
  readonly #listeners = new Map<string, (message: Message) => void>();
  #nextId = 1;
  #exited = false;
  readonly #exit: Promise<void>;

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.#child = child;
    child.on("message", (message: Message) => {
      if (message.id !== undefined) {
        const pending = this.#pending.get(message.id);
        if (pending === undefined) return;
        this.#pending.delete(message.id);
        if (typeof message.error === "string") pending.reject(new Error(`${name}: ${message.error}`));
        else pending.resolve(message);
        return;
      }
      if (message.type !== undefined) this.#listeners.get(message.type)?.(message);
    });
    this.#exit = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.#exited = true;
        for (const pending of this.#pending.values()) pending.reject(new Error(`${name} exited (${signal ?? code})`));
        this.#pending.clear();
        resolve();
      });
    });
  }

  /**
   * Starts `dist/<script>.js` beside this bundle (or in `directory`, another checkout's bench
   * build) and resolves with its first `ready` message. Servers get `--expose-gc` (the memory test
   * collects before sampling) plus `execArgv`.
   */
  static async start(options: {
    name: string;
    script: string;
    directory?: string;
    env?: Record<string, string>;
    execArgv?: readonly string[];
    timeoutMs?: number;
  }): Promise<{ process: BenchProcess; ready: Message }> {
    const path = options.directory === undefined ? fileURLToPath(new URL(`./${options.script}.js`, import.meta.url)) : `${options.directory}/${options.script}.js`;
    const child = fork(path, [], {
      execArgv: ["--expose-gc", ...(options.execArgv ?? [])],
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const handle = new BenchProcess(options.name, child);
    const ready = await new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${options.name} did not start within ${options.timeoutMs ?? 20_000} ms`)), options.timeoutMs ?? 20_000);
      handle.#listeners.set("ready", (message) => {
        clearTimeout(timer);
        resolve(message);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${options.name} exited (${code}) before it was ready`));
      });
    });
    return { process: handle, ready };
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Listens for messages of one `type` sent without an id. */
  on(type: string, listener: (message: Message) => void): void {
    this.#listeners.set(type, listener);
  }

  off(type: string): void {
    this.#listeners.delete(type);
  }

  request<T>(message: { type: string } & Record<string, unknown>, timeoutMs = 60_000): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name} did not answer '${message.type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.#child.send({ ...message, id });
    });
  }

  /** Asks the process to close (servers stop listening, profiles get written), then kills it if it lingers. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    await this.request({ type: "close" }, 10_000).catch(() => undefined);
    const killed = setTimeout(() => this.#child.kill("SIGKILL"), 5_000);
    await this.#exit;
    clearTimeout(killed);
  }
}
