// What the Node test files share: a project in a temporary directory, one `tern serve` of
// it (this build: `TERN_BIN`, default target/release/tern), tokens, and waiting for events.
// Not a test file itself (the runner picks `*.test.cjs`).
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { createRequire } = require('node:module');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const repo = path.resolve(__dirname, '..', '..');
/** `require` from tools/node_modules (`cd tools && npm install`). */
const tools = createRequire(path.join(repo, 'tools', 'package.json'));
const jwt = tools('jsonwebtoken');
const TERN_BIN = process.env.TERN_BIN || path.join(repo, 'target', 'release', 'tern');

/** A built component of tests/fixtures or functions/. */
function wasm(name) {
  return path.join(repo, 'target', 'wasm32-wasip2', 'release', `${name}.wasm`);
}

/** Writes `files` (relative path -> text) into a fresh temporary directory. */
function writeProject(files, prefix = 'tern-node-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text.trimStart());
  }
  return dir;
}

function running(proc) {
  return proc !== null && proc.exitCode === null && proc.signalCode === null;
}

/** One `tern serve` process. */
class Tern {
  constructor(dir, env = {}) {
    this.dir = dir;
    this.env = env;
    this.proc = null;
    this.port = 0;
    this.logs = '';
    process.on('exit', () => this.kill());
  }

  /** Starts it; resolves once it prints its `listening on` line. */
  start() {
    const proc = spawn(TERN_BIN, ['serve', this.dir, '--listen', '127.0.0.1:0'], {
      env: {
        ...process.env,
        TERN_LOG: process.env.TERN_TEST_LOG || 'info',
        TERN_CACHE_DIR: process.env.TERN_CACHE_DIR || path.join(repo, 'target', 'tern-e2e-cache'),
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (text) => {
      this.logs = (this.logs + text).slice(-64 * 1024);
    });
    return new Promise((resolve, reject) => {
      const fail = (why) => {
        clearTimeout(timer);
        this.kill();
        reject(new Error(`${why}\n--- tern's logs ---\n${this.logs}`));
      };
      const timer = setTimeout(() => fail(`${TERN_BIN} printed no listening line in 60 s`), 60_000);
      proc.once('error', (e) => fail(`cannot start ${TERN_BIN}: ${e.message}`));
      proc.once('exit', (code, signal) => fail(`tern exited (${code ?? signal}) before listening`));
      readline.createInterface({ input: proc.stdout }).on('line', (line) => {
        const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/.exec(line.trim());
        if (m) {
          clearTimeout(timer);
          proc.removeAllListeners('exit');
          this.port = Number(m[1]);
          resolve();
        }
      });
    });
  }

  /** Stops it with SIGTERM (SIGKILL after 20 s); resolves once it has exited. */
  async stop() {
    const proc = this.proc;
    if (!running(proc)) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(killer);
  }

  kill() {
    if (running(this.proc)) this.proc.kill('SIGKILL');
  }

  /** Whether it is still running. */
  alive() {
    return running(this.proc);
  }

  /** The end of its logs, for failure messages. */
  tail(n = 6000) {
    return `\n--- tern's logs (end) ---\n${this.logs.slice(-n)}`;
  }

  url(pathAndQuery) {
    return `http://127.0.0.1:${this.port}${pathAndQuery}`;
  }

  ws(pathAndQuery) {
    return `ws://127.0.0.1:${this.port}${pathAndQuery}`;
  }
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** An HS256 token signed with `secret`; `exp` one hour ahead unless given. */
function mint(claims, secret) {
  return jwt.sign({ exp: nowSeconds() + 3600, ...claims }, secret, { algorithm: 'HS256' });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The first `event` of `emitter` for which `filter` is true, within `ms`. Arm it before
 * doing what causes the event.
 */
function waitFor(emitter, event, ms, filter = () => true, context = () => '') {
  const promise = new Promise((resolve, reject) => {
    const on = (...args) => {
      let ok;
      try {
        ok = filter(...args);
      } catch {
        ok = false;
      }
      if (!ok) return;
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(args.length > 1 ? args : args[0]);
    };
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no '${event}' event within ${ms} ms${context()}`));
    }, ms);
    emitter.on(event, on);
  });
  promise.catch(() => {});
  return promise;
}

/** Resolves with what `promise` resolves to, or rejects after `ms` saying `what`. */
function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

module.exports = { assert, repo, tools, wasm, writeProject, Tern, mint, nowSeconds, sleep, waitFor, within };
