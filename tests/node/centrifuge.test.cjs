// The npm SDK `centrifuge` (5.8.0), unmodified, against the real `tern` binary on
// `GET /connection/websocket`: the Centrifugo client protocol v2 as docs/protocol.md
// describes it, in both formats the SDK speaks (JSON: `require('centrifuge')`; Protobuf:
// `require('centrifuge/build/protobuf')`, which asks for the `centrifuge-protobuf`
// subprotocol). Most tests run once per format, named `json: ...` and `protobuf: ...`.
//
// Run from the repository root: `node --test --test-concurrency=1 tests/node/`
// (tests/e2e/node_clients.rs does it as part of `cargo test`). The modules come from
// tools/node_modules (`cd tools && npm install`). `TERN_BIN` picks the binary (default
// target/release/tern). The project tern serves is written to a temporary directory.
'use strict';

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { createRequire } = require('node:module');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const repo = path.resolve(__dirname, '..', '..');
const toolsPackage = path.join(repo, 'tools', 'package.json');
const req = createRequire(toolsPackage);
const { Centrifuge: JsonCentrifuge } = req('centrifuge');
const { Centrifuge: ProtobufCentrifuge } = req('centrifuge/build/protobuf');
const WebSocket = req('ws');
const jwt = req('jsonwebtoken');

const SECRET = 'tern-centrifuge-tests-secret-0123456789ab'; // 41 characters
const OTHER_SECRET = 'not-the-secret-of-this-tern-0123456789abcdef';
const TERN_BIN = process.env.TERN_BIN || path.join(repo, 'target', 'release', 'tern');

// Timings of tern.yaml below, which the tests wait on.
const PING_INTERVAL_MS = 2000;
const PONG_TIMEOUT_MS = 1000;
const CONNECT_TIMEOUT_MS = 2000;
const EXPIRED_CLOSE_DELAY_MS = 1000;

// ---------------------------------------------------------------------------------------
// The project: settings that make the tests fast, and one messaging config per kind of
// channel (every channel a test uses is `<kind>/<something unique>`).

const PROJECT_FILES = {
  'tern.yaml': `
centrifuge:
  allow_anonymous: true
  ping_interval: 2s
  pong_timeout: 1s
  connect_timeout: 2s
  expired_close_delay: 1s
http:
  shutdown_grace: 2s
`,
  'messaging/rooms.yaml': `
description: rooms with presence, join/leave, history and recovery
channel: { match: rooms }
bridges: { websocket: { enable: true } }
presence: true
join_leave: true
history: { size: 1000, ttl: 10m }
recovery: true
`,
  'messaging/plain.yaml': `
description: no history, no presence
channel: { match: plain }
bridges: { websocket: { enable: true } }
`,
  'messaging/locked.yaml': `
description: subscribing needs a token that grants it
channel: { match: locked }
bridges: { websocket: { enable: true } }
subscribe: token
`,
  'messaging/readonly.yaml': `
description: no client publishes
channel: { match: readonly }
bridges: { websocket: { enable: true } }
publish: nobody
`,
  'messaging/members.yaml': `
description: only subscribers publish
channel: { match: members }
bridges: { websocket: { enable: true } }
publish: subscribers
`,
  'messaging/sealed.yaml': `
description: no client subscribes nor publishes; connection tokens still subscribe server-side
channel: { match: sealed }
bridges: { websocket: { enable: true } }
subscribe: nobody
publish: nobody
`,
};

let projectDir = null;

function writeProject() {
  projectDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-centrifuge-'));
  for (const [rel, text] of Object.entries(PROJECT_FILES)) {
    const file = path.join(projectDir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text.trimStart());
  }
}

// ---------------------------------------------------------------------------------------
// The tern process (one for the whole file; the restart tests stop and start it again).

const tern = { proc: null, port: 0, logs: '' };

function running(proc) {
  return proc !== null && proc.exitCode === null && proc.signalCode === null;
}

/** Starts `tern serve <project>` and resolves once it prints its `listening on` line. */
function startTern(port = 0) {
  const proc = spawn(TERN_BIN, ['serve', projectDir, '--listen', `127.0.0.1:${port}`], {
    env: {
      ...process.env,
      TERN_AUTH_SECRET: SECRET,
      TERN_LOG: process.env.TERN_TEST_LOG || 'info',
      TERN_CACHE_DIR: process.env.TERN_CACHE_DIR || path.join(repo, 'target', 'tern-e2e-cache'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  tern.proc = proc;
  tern.logs = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (text) => {
    tern.logs = (tern.logs + text).slice(-64 * 1024);
  });
  return new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      if (running(proc)) proc.kill('SIGKILL');
      reject(new Error(`${why}\n--- tern's logs ---\n${tern.logs}`));
    };
    const timer = setTimeout(() => fail(`${TERN_BIN} printed no listening line in 60 s`), 60_000);
    proc.once('error', (e) => fail(`cannot start ${TERN_BIN}: ${e.message}`));
    proc.once('exit', (code, signal) => fail(`tern exited (${code ?? signal}) before listening`));
    // Keep reading stdout to its end, so tern never blocks on a full pipe.
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/.exec(line.trim());
      if (m) {
        clearTimeout(timer);
        tern.port = Number(m[1]);
        resolve();
      }
    });
  });
}

/** Stops tern with `signal`, SIGKILL after `ms`; resolves once it has exited. */
async function stopTern(signal = 'SIGTERM', ms = 20_000) {
  const proc = tern.proc;
  if (!running(proc)) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill(signal);
  const killer = setTimeout(() => proc.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(killer);
}

function killEverything() {
  if (running(tern.proc)) tern.proc.kill('SIGKILL');
}
process.on('exit', killEverything);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killEverything();
    process.exit(1);
  });
}

/** The end of tern's logs, for failure messages. */
function ternLogs() {
  return `\n--- tern's logs (end) ---\n${tern.logs.slice(-6000)}`;
}

// ---------------------------------------------------------------------------------------
// The two formats.

const FORMATS = [
  {
    name: 'json',
    Centrifuge: JsonCentrifuge,
    /** What to hand the SDK as a publication's data: JSON embeds the value itself. */
    encode: (value) => value,
    /** A publication's data as the SDK gives it, back to a JS value. */
    decode: (data) => data,
    /** conn_info / chan_info as the SDK gives them, back to a JS value. */
    info: (raw) => (raw === undefined || raw === null ? undefined : raw),
  },
  {
    name: 'protobuf',
    Centrifuge: ProtobufCentrifuge,
    // Protobuf carries bytes: the JSON text of the value.
    encode: (value) => Buffer.from(JSON.stringify(value), 'utf8'),
    decode: (data) => {
      assert.ok(data instanceof Uint8Array, `protobuf data is bytes, got ${typeof data}`);
      return JSON.parse(Buffer.from(data).toString('utf8'));
    },
    info: (raw) => {
      if (raw === undefined || raw === null || raw.length === 0) return undefined;
      return JSON.parse(Buffer.from(raw).toString('utf8'));
    },
  },
];

// ---------------------------------------------------------------------------------------
// Tokens.

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** An HS256 token signed with tern's secret; `exp` one hour ahead unless given. */
function mint(claims, secret = SECRET) {
  return jwt.sign({ exp: nowSeconds() + 3600, ...claims }, secret, { algorithm: 'HS256' });
}

/** A subscription token: `sub` (the connection's user), `channel`, `exp`. */
function subscriptionToken(user, channel, extra = {}) {
  return mint({ sub: user, channel, ...extra });
}

const base64url = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An unsigned token (`alg: none`), made by hand: no library signs one. */
function unsignedToken(claims) {
  const header = { alg: 'none', typ: 'JWT' };
  return `${base64url(header)}.${base64url({ exp: nowSeconds() + 3600, ...claims })}.`;
}

// ---------------------------------------------------------------------------------------
// Clients.

const clients = new Set();
const rawSockets = new Set();

function endpoint() {
  return `ws://127.0.0.1:${tern.port}/connection/websocket`;
}

let channels = 0;
/** A channel of `kind` (a messaging config above) no other test uses. */
function channel(kind, format, label) {
  channels += 1;
  return `${kind}/${format.name}-${label}-${process.pid}-${channels}`;
}

/** A client of `format`, not connected yet; its events are recorded for failure messages. */
function newClient(format, options = {}) {
  const client = new format.Centrifuge(endpoint(), {
    websocket: WebSocket,
    minReconnectDelay: 100,
    maxReconnectDelay: 1000,
    timeout: 5000,
    ...options,
  });
  client.format = format;
  client.id = null;
  client.history_ = []; // every state event, in order
  client.errors = [];
  client.on('error', (ctx) => client.errors.push(ctx));
  for (const event of ['connecting', 'connected', 'disconnected']) {
    client.on(event, (ctx) => client.history_.push({ event, code: ctx.code, reason: ctx.reason, client: ctx.client }));
  }
  client.on('connected', (ctx) => {
    client.id = ctx.client;
  });
  clients.add(client);
  return client;
}

/** What the client went through, for failure messages. */
function story(client) {
  const errors = client.errors.map((e) => ({ type: e.type, error: e.error, channel: e.channel }));
  return `\nclient events: ${JSON.stringify(client.history_)}\nclient errors: ${JSON.stringify(errors)}`;
}

/** The `ws` WebSocket under the SDK's websocket transport. */
function socketOf(client) {
  const socket = client._transport && client._transport._transport;
  assert.ok(socket && typeof socket.terminate === 'function', 'the client has no ws socket');
  return socket;
}

function stop(client) {
  try {
    client.disconnect();
  } catch {
    // a client whose handler threw: nothing left to stop
  }
}

afterEach(() => {
  for (const client of clients) stop(client);
  clients.clear();
  for (const socket of rawSockets) socket.terminate();
  rawSockets.clear();
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The first `event` of `emitter` for which `filter` is true, within `ms`. Arm it before
 * doing what causes the event. Marked handled: a failure is reported where it is awaited.
 */
function waitFor(emitter, event, ms, filter = () => true, context = () => '') {
  const promise = new Promise((resolve, reject) => {
    const on = (ctx) => {
      let ok;
      try {
        ok = filter(ctx);
      } catch (e) {
        ok = false;
      }
      if (!ok) return;
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(ctx);
    };
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no '${event}' event within ${ms} ms${context()}${ternLogs()}`));
    }, ms);
    emitter.on(event, on);
  });
  promise.catch(() => {});
  return promise;
}

/** Polls `probe` until it returns something truthy, for at most `ms`. */
async function until(probe, ms, what, context = () => '') {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${context()}${ternLogs()}`);
    }
    await sleep(20);
  }
}

/** Connects `client` (or a new anonymous one of `format`); resolves with it once connected. */
async function connect(clientOrFormat, ms = 10_000) {
  // A format (see FORMATS) or a client made by newClient.
  const client = typeof clientOrFormat.encode === 'function' ? newClient(clientOrFormat) : clientOrFormat;
  const outcome = new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      client.off('connected', onConnected);
      client.off('disconnected', onDisconnected);
    };
    const onConnected = (ctx) => {
      cleanup();
      resolve(ctx);
    };
    const onDisconnected = (ctx) => {
      cleanup();
      reject(new Error(`disconnected (${ctx.code} ${ctx.reason}) instead of connecting${story(client)}${ternLogs()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`not connected within ${ms} ms${story(client)}${ternLogs()}`));
    }, ms);
    client.on('connected', onConnected);
    client.on('disconnected', onDisconnected);
  });
  client.connect();
  const ctx = await outcome;
  assert.equal(typeof ctx.client, 'string');
  assert.ok(ctx.client.length > 0, 'the connect reply names the client');
  return client;
}

/**
 * A new subscription of `client` to `name`, subscribed; its publications go to `seen`
 * (when given) from the start. `sub.ctx` is the context of its first 'subscribed' event.
 */
async function subscribe(client, name, options = {}, seen = null, ms = 10_000) {
  const sub = client.newSubscription(name, options);
  if (seen) sub.on('publication', (ctx) => seen.push(ctx));
  sub.ctx = await subscribeOutcome(sub, ms, client);
  return sub;
}

/** Subscribes `sub`: resolves with the 'subscribed' context, rejects on 'unsubscribed'. */
function subscribeOutcome(sub, ms, client) {
  const outcome = new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      sub.off('subscribed', onSubscribed);
      sub.off('unsubscribed', onUnsubscribed);
    };
    const onSubscribed = (ctx) => {
      cleanup();
      resolve(ctx);
    };
    const onUnsubscribed = (ctx) => {
      cleanup();
      reject(new Error(`subscription to ${sub.channel} ended (${ctx.code} ${ctx.reason}) instead of subscribing${story(client)}${ternLogs()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`not subscribed to ${sub.channel} within ${ms} ms${story(client)}${ternLogs()}`));
    }, ms);
    sub.on('subscribed', onSubscribed);
    sub.on('unsubscribed', onUnsubscribed);
  });
  sub.subscribe();
  return outcome;
}

/** Subscribes `sub` expecting a refusal: resolves with the 'unsubscribed' context. */
async function refusedSubscription(sub, ms = 10_000) {
  const outcome = new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      sub.off('subscribed', onSubscribed);
      sub.off('unsubscribed', onUnsubscribed);
    };
    const onSubscribed = () => {
      cleanup();
      reject(new Error(`subscribed to ${sub.channel}, which should have been refused`));
    };
    const onUnsubscribed = (ctx) => {
      cleanup();
      resolve(ctx);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`neither subscribed nor refused on ${sub.channel} within ${ms} ms${ternLogs()}`));
    }, ms);
    sub.on('subscribed', onSubscribed);
    sub.on('unsubscribed', onUnsubscribed);
  });
  sub.subscribe();
  return outcome;
}

/** `promise` must reject with an error of code `code` (the SDK rejects with {code, message}). */
async function expectCode(promise, code, what) {
  let value;
  try {
    value = await promise;
  } catch (e) {
    assert.equal(e && e.code, code, `${what}: rejected with ${JSON.stringify(e)}, expected code ${code}`);
    return e;
  }
  assert.fail(`${what}: resolved with ${JSON.stringify(value)}, expected error ${code}`);
}

/** Waits for 'disconnected' after connect(): the SDK gave up, with that code. */
async function refusedConnection(client, ms = 10_000) {
  const disconnected = waitFor(client, 'disconnected', ms, () => true, () => story(client));
  const connected = [];
  client.on('connected', (ctx) => connected.push(ctx));
  client.connect();
  const ctx = await disconnected;
  assert.deepEqual(connected, [], 'the client never connected');
  return ctx;
}

const numbers = (pubs, format) => pubs.map((p) => format.decode(p.data).n);

function assertIncreasing(offsets, what) {
  for (const offset of offsets) {
    assert.equal(typeof offset, 'number', `${what}: offsets are numbers: ${JSON.stringify(offsets)}`);
    assert.ok(offset > 0, `${what}: offsets are positive: ${JSON.stringify(offsets)}`);
  }
  for (let i = 1; i < offsets.length; i += 1) {
    assert.ok(offsets[i] > offsets[i - 1], `${what}: offsets increase: ${JSON.stringify(offsets)}`);
  }
}

// ---------------------------------------------------------------------------------------

before(async () => {
  writeProject();
  await startTern();
}, { timeout: 120_000 });

after(async () => {
  for (const client of clients) stop(client);
  for (const socket of rawSockets) socket.terminate();
  await stopTern('SIGTERM', 10_000);
  if (projectDir) fs.rmSync(projectDir, { recursive: true, force: true });
  // Whatever still holds the event loop now is a leak: do not let it hang the run.
  setTimeout(() => process.exit(), 5000).unref();
});

for (const F of FORMATS) {
  test(`${F.name}: anonymous clients connect, subscribe and publish; the ack resolves and every subscriber gets the data, the publisher too`, { timeout: 60_000 }, async () => {
    const ch = channel('plain', F, 'basic');
    const alice = await connect(F);
    const bob = await connect(F);
    assert.notEqual(alice.id, bob.id, 'two connections, two client ids');
    assert.equal(alice.state, 'connected');

    const aliceSeen = [];
    const bobSeen = [];
    const aliceSub = await subscribe(alice, ch, {}, aliceSeen);
    const bobSub = await subscribe(bob, ch, {}, bobSeen);
    assert.equal(aliceSub.ctx.channel, ch);
    assert.equal(aliceSub.state, 'subscribed');

    const payload = { text: 'hello', n: 1, nested: { ok: true }, list: [1, 'two', null], unicode: 'héllo ✓' };
    const ack = await alice.publish(ch, F.encode(payload));
    assert.deepEqual(ack, {}, 'the publish reply is the ack');
    await until(() => aliceSeen.length >= 1 && bobSeen.length >= 1, 10_000, 'the publication at both clients', () => story(bob));
    for (const seen of [aliceSeen, bobSeen]) {
      assert.equal(seen[0].channel, ch);
      assert.deepEqual(F.decode(seen[0].data), payload);
    }

    // Subscription.publish is the same command.
    await bobSub.publish(F.encode({ n: 2 }));
    await until(() => aliceSeen.length >= 2 && bobSeen.length >= 2, 10_000, 'the second publication at both clients');
    assert.deepEqual(numbers(aliceSeen, F), [1, 2]);
    assert.deepEqual(numbers(bobSeen, F), [1, 2]);

    // After unsubscribing, bob gets nothing more; alice still does.
    const unsubscribed = waitFor(bobSub, 'unsubscribed', 5000);
    bobSub.unsubscribe();
    await unsubscribed;
    await sleep(200); // the unsubscribe command has been answered by now
    await alice.publish(ch, F.encode({ n: 3 }));
    await until(() => aliceSeen.length >= 3, 10_000, 'the third publication at alice');
    await sleep(300);
    assert.deepEqual(numbers(aliceSeen, F), [1, 2, 3]);
    assert.deepEqual(numbers(bobSeen, F), [1, 2], 'nothing after unsubscribing');
    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
  });

  test(`${F.name}: history with limit, since {offset, epoch} and reverse; offsets increase, the epoch is stable`, { timeout: 60_000 }, async () => {
    const ch = channel('rooms', F, 'history');
    const client = await connect(F);
    const seen = [];
    const sub = await subscribe(client, ch, {}, seen);
    assert.equal(sub.ctx.recoverable, true, `a channel with recovery is recoverable: ${JSON.stringify(sub.ctx)}`);
    const epoch = sub.ctx.streamPosition && sub.ctx.streamPosition.epoch;
    assert.equal(typeof epoch, 'string');

    for (let n = 0; n < 5; n += 1) await client.publish(ch, F.encode({ n }));
    await until(() => seen.length === 5, 10_000, 'the five publications');
    assert.deepEqual(numbers(seen, F), [0, 1, 2, 3, 4]);
    const offsets = seen.map((p) => p.offset);
    assertIncreasing(offsets, 'live publications');

    const pubs = (result) => ({ ns: numbers(result.publications, F), offsets: result.publications.map((p) => p.offset) });

    // Without a limit: the position only.
    const top = await sub.history();
    assert.deepEqual(top.publications, []);
    assert.equal(top.offset, offsets[4], 'the stream top is the last offset');
    assert.ok(top.epoch.length > 0, 'a stream has an epoch');
    if (epoch !== '') assert.equal(top.epoch, epoch, 'the epoch of the subscribe reply');

    const first = await sub.history({ limit: 3 });
    assert.deepEqual(pubs(first), { ns: [0, 1, 2], offsets: offsets.slice(0, 3) });
    assert.equal(first.epoch, top.epoch);
    assert.equal(first.offset, offsets[4]);

    const all = await client.history(ch, { limit: 100 });
    assert.deepEqual(pubs(all), { ns: [0, 1, 2, 3, 4], offsets });
    assert.equal(all.publications[0].channel, ch);

    const since = await sub.history({ limit: 100, since: { offset: offsets[1], epoch: top.epoch } });
    assert.deepEqual(pubs(since), { ns: [2, 3, 4], offsets: offsets.slice(2) }, 'since: after that offset');
    assert.equal(since.epoch, top.epoch);

    const sinceTwo = await sub.history({ limit: 2, since: { offset: offsets[0], epoch: top.epoch } });
    assert.deepEqual(pubs(sinceTwo).ns, [1, 2]);

    const reverse = await sub.history({ limit: 2, reverse: true });
    assert.deepEqual(pubs(reverse), { ns: [4, 3], offsets: [offsets[4], offsets[3]] }, 'reverse: newest first');
    assert.equal(reverse.epoch, top.epoch);

    const earlier = await sub.history({ limit: 10, reverse: true, since: { offset: offsets[3], epoch: top.epoch } });
    assert.deepEqual(pubs(earlier).ns, [2, 1, 0], 'reverse since: before that offset, newest first');

    const nothingNew = await sub.history({ limit: 10, since: { offset: offsets[4], epoch: top.epoch } });
    assert.deepEqual(nothingNew.publications, []);

    await expectCode(
      sub.history({ limit: 10, since: { offset: offsets[1], epoch: `${top.epoch}-not` } }),
      112,
      'history since a position of another epoch',
    );

    // A channel without history.
    const plain = channel('plain', F, 'no-history');
    await subscribe(client, plain);
    await expectCode(client.history(plain, { limit: 10 }), 108, 'history of a channel that keeps none');

    const later = await sub.history();
    assert.equal(later.epoch, top.epoch, 'the epoch is stable');
    assert.equal(later.offset, offsets[4]);
  });

  test(`${F.name}: recovery: a subscriber whose socket died gets the 100 publications it missed, in order, exactly once`, { timeout: 90_000 }, async () => {
    const ch = channel('rooms', F, 'recovery');
    // getData runs before every connection attempt: while `gate` is set the subscriber
    // cannot reconnect, so every publication below happens while it is away.
    let gate = null;
    const subscriber = newClient(F, { getData: () => (gate ? gate.promise.then(() => null) : null) });
    await connect(subscriber);
    const firstId = subscriber.id;
    const received = [];
    const subscribedEvents = [];
    const sub = subscriber.newSubscription(ch);
    sub.on('publication', (ctx) => received.push(ctx));
    sub.on('subscribed', (ctx) => subscribedEvents.push(ctx));
    const first = await subscribeOutcome(sub, 10_000, subscriber);
    assert.equal(first.recoverable, true, JSON.stringify(first));
    assert.equal(first.wasRecovering, false);
    const epoch = first.streamPosition.epoch;

    const publisher = await connect(F);
    for (let n = 0; n < 3; n += 1) await publisher.publish(ch, F.encode({ n }));
    await until(() => received.length === 3, 10_000, 'the first three publications');

    let open;
    gate = { promise: new Promise((resolve) => { open = resolve; }) };
    const reconnecting = waitFor(subscriber, 'connecting', 5000, () => true, () => story(subscriber));
    const resubscribing = waitFor(sub, 'subscribing', 5000);
    socketOf(subscriber).terminate(); // no close frame: the connection just dies
    await reconnecting;
    await resubscribing;

    for (let n = 3; n < 103; n += 1) await publisher.publish(ch, F.encode({ n }));

    const recovered = waitFor(sub, 'subscribed', 20_000, () => true, () => story(subscriber));
    gate = null;
    open();
    const ctx = await recovered;
    assert.notEqual(subscriber.id, firstId, 'a new connection');
    assert.equal(ctx.wasRecovering, true, `wasRecovering: ${JSON.stringify(ctx)}`);
    assert.equal(ctx.recovered, true, `recovered: ${JSON.stringify(ctx)}`);
    assert.equal(ctx.recoverable, true);
    assert.equal(ctx.hasRecoveredPublications, true, 'the missed publications came with the subscribe reply');
    assert.equal(ctx.streamPosition.epoch, epoch, 'same epoch');

    await until(() => received.length >= 103, 15_000, `103 publications (have ${received.length})`);
    await sleep(500); // a duplicate would arrive now
    const expected = Array.from({ length: 103 }, (_, i) => i);
    assert.deepEqual(numbers(received, F), expected, 'every publication, in order, exactly once');
    assertIncreasing(received.map((p) => p.offset), 'received publications');
    assert.equal(subscribedEvents.length, 2);

    // And live again.
    await publisher.publish(ch, F.encode({ n: 103 }));
    await until(() => received.length === 104, 10_000, 'the publication after recovery');
    assert.equal(F.decode(received[103].data).n, 103);
    assert.ok(received[103].offset > received[102].offset);
  });

  test(`${F.name}: presence, presence_stats, join and leave pushes; the token's info is the connInfo others see`, { timeout: 60_000 }, async () => {
    const ch = channel('rooms', F, 'presence');
    const alice = await connect(newClient(F, { token: mint({ sub: 'alice', info: { name: 'Alice' } }) }));
    const bob = await connect(newClient(F, { token: mint({ sub: 'bob', info: { name: 'Bob', role: 'guest' } }) }));

    const aliceSeen = [];
    const aliceSub = await subscribe(alice, ch, {}, aliceSeen);
    const joins = [];
    const leaves = [];
    aliceSub.on('join', (ctx) => joins.push(ctx));
    aliceSub.on('leave', (ctx) => leaves.push(ctx));

    const bobJoined = waitFor(aliceSub, 'join', 10_000, (ctx) => ctx.info.client === bob.id);
    const bobSub = await subscribe(bob, ch);
    const join = await bobJoined;
    assert.equal(join.channel, ch);
    assert.equal(join.info.user, 'bob');
    assert.deepEqual(F.info(join.info.connInfo), { name: 'Bob', role: 'guest' });

    const presence = await aliceSub.presence();
    assert.deepEqual(Object.keys(presence.clients).sort(), [alice.id, bob.id].sort());
    const bobInfo = presence.clients[bob.id];
    assert.equal(bobInfo.client, bob.id);
    assert.equal(bobInfo.user, 'bob');
    assert.deepEqual(F.info(bobInfo.connInfo), { name: 'Bob', role: 'guest' });
    assert.equal(presence.clients[alice.id].user, 'alice');
    assert.deepEqual(F.info(presence.clients[alice.id].connInfo), { name: 'Alice' });

    assert.deepEqual(await aliceSub.presenceStats(), { numClients: 2, numUsers: 2 });

    // A second connection of alice: one more client, no more user.
    const alice2 = await connect(newClient(F, { token: mint({ sub: 'alice', info: { name: 'Alice' } }) }));
    await subscribe(alice2, ch);
    assert.deepEqual(await bob.presenceStats(ch), { numClients: 3, numUsers: 2 });

    // A publication carries its publisher's info.
    await bob.publish(ch, F.encode({ n: 1 }));
    await until(() => aliceSeen.length === 1, 10_000, 'bob\'s publication at alice');
    const pub = aliceSeen[0];
    assert.ok(pub.info, `the publication has its publisher's info: ${JSON.stringify(pub)}`);
    assert.equal(pub.info.client, bob.id);
    assert.equal(pub.info.user, 'bob');
    assert.deepEqual(F.info(pub.info.connInfo), { name: 'Bob', role: 'guest' });

    // Unsubscribing is a leave.
    const bobLeft = waitFor(aliceSub, 'leave', 10_000, (ctx) => ctx.info.client === bob.id);
    bobSub.unsubscribe();
    const leave = await bobLeft;
    assert.equal(leave.channel, ch);
    assert.equal(leave.info.user, 'bob');
    assert.deepEqual(F.info(leave.info.connInfo), { name: 'Bob', role: 'guest' });
    const remaining = await aliceSub.presence();
    assert.deepEqual(Object.keys(remaining.clients).sort(), [alice.id, alice2.id].sort());
    assert.deepEqual(await aliceSub.presenceStats(), { numClients: 2, numUsers: 1 });

    // Presence is for subscribers only; and only where the channel keeps it.
    await expectCode(bob.presence(ch), 103, 'presence of a channel bob is not subscribed to');
    const plain = channel('plain', F, 'no-presence');
    await subscribe(alice, plain);
    await expectCode(alice.presence(plain), 108, 'presence of a channel without presence');
    await expectCode(alice.presenceStats(plain), 108, 'presence_stats of a channel without presence');
    assert.ok(joins.some((j) => j.info.client === alice2.id), 'alice2 joined too');
  });

  test(`${F.name}: a client that vanishes without closing leaves: the others get its leave`, { timeout: 60_000 }, async () => {
    const ch = channel('rooms', F, 'vanish');
    const watcher = await connect(newClient(F, { token: mint({ sub: 'watcher' }) }));
    const watcherSub = await subscribe(watcher, ch);
    const ghost = await connect(newClient(F, { token: mint({ sub: 'ghost', info: { boo: true } }) }));
    const ghostId = ghost.id;
    const joined = waitFor(watcherSub, 'join', 10_000, (ctx) => ctx.info.client === ghostId);
    await subscribe(ghost, ch);
    await joined;
    assert.equal((await watcherSub.presenceStats()).numClients, 2);

    const left = waitFor(watcherSub, 'leave', 15_000, (ctx) => ctx.info.client === ghostId);
    // No close frame, no unsubscribe: the socket is destroyed, and the SDK stopped before it
    // can notice and reconnect.
    socketOf(ghost).terminate();
    ghost.disconnect();
    const leave = await left;
    assert.equal(leave.info.user, 'ghost');
    assert.deepEqual(F.info(leave.info.connInfo), { boo: true });
    const presence = await watcherSub.presence();
    assert.deepEqual(Object.keys(presence.clients), [watcher.id]);
  });

  test(`${F.name}: an expired connection token gets error 109; the SDK calls getToken and connects with the fresh one`, { timeout: 60_000 }, async () => {
    let calls = 0;
    const client = newClient(F, {
      token: mint({ sub: 'eve', exp: nowSeconds() - 60 }),
      getToken: async () => {
        calls += 1;
        return mint({ sub: 'eve' });
      },
    });
    const expired = waitFor(client, 'error', 10_000, (ctx) => ctx.type === 'connect', () => story(client));
    await connect(client);
    const error = await expired;
    assert.equal(error.error.code, 109, JSON.stringify(error));
    assert.equal(calls, 1, 'getToken was called once');
    assert.equal(client.state, 'connected');
  });

  test(`${F.name}: a token with a bad signature: disconnected 3500, no reconnect`, { timeout: 60_000 }, async () => {
    const client = newClient(F, { token: mint({ sub: 'mallory' }, OTHER_SECRET) });
    const ctx = await refusedConnection(client);
    assert.equal(ctx.code, 3500, `disconnect code: ${JSON.stringify(ctx)}${story(client)}`);
    await sleep(500);
    assert.equal(client.state, 'disconnected', 'the SDK does not reconnect after 3500');
  });

  test(`${F.name}: an unsigned token (alg none): disconnected 3500`, { timeout: 60_000 }, async () => {
    const client = newClient(F, { token: unsignedToken({ sub: 'mallory' }) });
    const ctx = await refusedConnection(client);
    assert.equal(ctx.code, 3500, `disconnect code: ${JSON.stringify(ctx)}${story(client)}`);
  });

  test(`${F.name}: a subscription token cannot connect: disconnected 3500`, { timeout: 60_000 }, async () => {
    const client = newClient(F, { token: subscriptionToken('mallory', 'plain/x') });
    const ctx = await refusedConnection(client);
    assert.equal(ctx.code, 3500, `disconnect code: ${JSON.stringify(ctx)}${story(client)}`);
  });

  test(`${F.name}: a token refreshed before it expires keeps the connection past exp + expired_close_delay`, { timeout: 60_000 }, async () => {
    const exp = nowSeconds() + 3;
    let calls = 0;
    const client = newClient(F, {
      token: mint({ sub: 'rita', exp }),
      getToken: async () => {
        calls += 1;
        return mint({ sub: 'rita' });
      },
    });
    await connect(client);
    const id = client.id;
    const ch = channel('plain', F, 'refresh');
    const seen = [];
    await subscribe(client, ch, {}, seen);

    // Past the old token's expiry, its grace period and a margin.
    const deadline = exp * 1000 + EXPIRED_CLOSE_DELAY_MS + 2500;
    await sleep(Math.max(0, deadline - Date.now()));
    assert.ok(calls >= 1, `getToken was called (${calls})${story(client)}`);
    assert.equal(client.state, 'connected', `still connected${story(client)}`);
    assert.equal(client.id, id, 'the same connection');
    assert.deepEqual(client.history_.map((h) => h.event), ['connecting', 'connected'], `no reconnection${story(client)}`);
    await client.publish(ch, F.encode({ n: 1 }));
    await until(() => seen.length === 1, 10_000, 'a publication after the refresh');
    assert.deepEqual(client.errors, []);
  });

  test(`${F.name}: a token not refreshed: the server closes the connection with 3005 after exp + expired_close_delay`, { timeout: 60_000 }, async () => {
    const exp = nowSeconds() + 2;
    let calls = 0;
    const client = newClient(F, {
      token: mint({ sub: 'tardy', exp }),
      // The app never comes back with a new token.
      getToken: () => {
        calls += 1;
        return new Promise(() => {});
      },
    });
    await connect(client);
    const closed = waitFor(client, 'connecting', exp * 1000 - Date.now() + EXPIRED_CLOSE_DELAY_MS + 8000, (ctx) => ctx.code !== 0, () => story(client));
    const ctx = await closed;
    assert.equal(ctx.code, 3005, `the reason to reconnect: ${JSON.stringify(ctx)}${story(client)}`);
    assert.ok(calls >= 1, 'the SDK asked for a new token');
  });

  test(`${F.name}: the token's channels claim subscribes server-side to a recoverable channel: 'subscribed' and 'publication' on the client`, { timeout: 60_000 }, async () => {
    const ch = channel('rooms', F, 'server-side');
    const client = newClient(F, { token: mint({ sub: 'sam', channels: [ch] }) });
    const subscribed = [];
    const publications = [];
    client.on('subscribed', (ctx) => subscribed.push(ctx));
    client.on('publication', (ctx) => publications.push(ctx));
    await connect(client);
    await until(() => subscribed.length >= 1, 10_000, 'the server-side subscribed event', () => story(client));
    assert.deepEqual(subscribed.map((s) => s.channel), [ch]);
    assert.equal(subscribed[0].recoverable, true, JSON.stringify(subscribed[0]));

    const other = await connect(F);
    await other.publish(ch, F.encode({ n: 7 }));
    await until(() => publications.length === 1, 10_000, 'the publication on the server-side subscription', () => story(client));
    assert.equal(publications[0].channel, ch);
    assert.deepEqual(F.decode(publications[0].data), { n: 7 });
    assert.ok(publications[0].offset > 0, 'a recoverable channel numbers its publications');
    assert.deepEqual(client.errors, []);
  });

  test(`${F.name}: the token's channels claim subscribes server-side to channels without history, one no client may subscribe to (subscribe: nobody)`, { timeout: 60_000 }, async () => {
    // Their subscribe results carry nothing but defaults (not recoverable, no position).
    const plain = channel('plain', F, 'server-side');
    const sealed = channel('sealed', F, 'server-side');
    const client = newClient(F, { token: mint({ sub: 'sam', channels: [plain, sealed] }) });
    const subscribed = [];
    const publications = [];
    client.on('subscribed', (ctx) => subscribed.push(ctx));
    client.on('publication', (ctx) => publications.push(ctx));
    await connect(client);
    await until(() => subscribed.length >= 2, 10_000, 'two server-side subscribed events', () => story(client));
    assert.deepEqual(subscribed.map((s) => s.channel).sort(), [plain, sealed].sort());
    assert.deepEqual(client.errors, []);

    // sealed: no client may subscribe to it, server-side subscriptions aside.
    const other = await connect(F);
    const refused = await refusedSubscription(other.newSubscription(sealed));
    assert.equal(refused.code, 103, JSON.stringify(refused));

    await other.publish(plain, F.encode({ n: 8 }));
    await until(() => publications.length === 1, 10_000, 'the publication on the server-side subscription', () => story(client));
    assert.equal(publications[0].channel, plain);
    assert.deepEqual(F.decode(publications[0].data), { n: 8 });
    assert.equal(client.state, 'connected', story(client));
  });

  test(`${F.name}: subscribe: token: 103 without a token; a subscription token works; one for another channel or user gets 103; an expired one 109, then getToken`, { timeout: 60_000 }, async () => {
    const alice = await connect(newClient(F, { token: mint({ sub: 'alice' }) }));
    const ch = channel('locked', F, 'tokens');

    const bare = alice.newSubscription(ch);
    const refused = await refusedSubscription(bare);
    assert.equal(refused.code, 103, `no token: ${JSON.stringify(refused)}`);
    alice.removeSubscription(bare);

    const seen = [];
    const sub = await subscribe(alice, ch, { token: subscriptionToken('alice', ch) }, seen);
    assert.equal(sub.state, 'subscribed');
    await alice.publish(ch, F.encode({ n: 1 })); // publish: anyone
    await until(() => seen.length === 1, 10_000, 'a publication on the locked channel');

    const elsewhere = channel('locked', F, 'elsewhere');
    const wrongChannel = await refusedSubscription(alice.newSubscription(elsewhere, { token: subscriptionToken('alice', ch) }));
    assert.equal(wrongChannel.code, 103, `a token for another channel: ${JSON.stringify(wrongChannel)}`);

    const bobs = channel('locked', F, 'bobs');
    const wrongUser = await refusedSubscription(alice.newSubscription(bobs, { token: subscriptionToken('bob', bobs) }));
    assert.equal(wrongUser.code, 103, `a token for another user: ${JSON.stringify(wrongUser)}`);

    const expiring = channel('locked', F, 'expired');
    let calls = 0;
    const refreshed = alice.newSubscription(expiring, {
      token: subscriptionToken('alice', expiring, { exp: nowSeconds() - 60 }),
      getToken: async (ctx) => {
        calls += 1;
        assert.equal(ctx.channel, expiring);
        return subscriptionToken('alice', expiring);
      },
      minResubscribeDelay: 100,
      maxResubscribeDelay: 500,
    });
    const expiredError = waitFor(refreshed, 'error', 10_000, (ctx) => ctx.type === 'subscribe');
    await subscribeOutcome(refreshed, 10_000, alice);
    assert.equal((await expiredError).error.code, 109);
    assert.equal(calls, 1);

    // A connection token whose `subscribe` patterns cover the channel needs no subscription token.
    const bob = await connect(newClient(F, { token: mint({ sub: 'bob', subscribe: ['locked'] }) }));
    await subscribe(bob, channel('locked', F, 'granted'));
  });

  test(`${F.name}: a subscription token refreshed before it expires (sub_refresh) keeps the subscription past exp + expired_close_delay`, { timeout: 60_000 }, async () => {
    const alice = await connect(newClient(F, { token: mint({ sub: 'alice' }) }));
    const ch = channel('locked', F, 'sub-refresh');
    const exp = nowSeconds() + 3;
    let calls = 0;
    const events = [];
    const seen = [];
    const sub = alice.newSubscription(ch, {
      token: subscriptionToken('alice', ch, { exp }),
      getToken: async () => {
        calls += 1;
        return subscriptionToken('alice', ch);
      },
    });
    for (const event of ['subscribing', 'subscribed', 'unsubscribed']) {
      sub.on(event, (ctx) => events.push({ event, code: ctx.code, reason: ctx.reason }));
    }
    sub.on('publication', (ctx) => seen.push(ctx));
    await subscribeOutcome(sub, 10_000, alice);

    const deadline = exp * 1000 + EXPIRED_CLOSE_DELAY_MS + 2500;
    await sleep(Math.max(0, deadline - Date.now()));
    assert.ok(calls >= 1, `getToken of the subscription was called (${calls})`);
    assert.equal(sub.state, 'subscribed', `still subscribed: ${JSON.stringify(events)}${story(alice)}`);
    assert.deepEqual(events.map((e) => e.event), ['subscribing', 'subscribed'], `never resubscribed: ${JSON.stringify(events)}`);
    assert.deepEqual(alice.history_.map((h) => h.event), ['connecting', 'connected']);
    await alice.publish(ch, F.encode({ n: 1 }));
    await until(() => seen.length === 1, 10_000, 'a publication after the subscription refresh');
    assert.deepEqual(alice.errors, []);
  });

  test(`${F.name}: a subscription token not refreshed: unsubscribe push 2501 after exp + expired_close_delay, the connection stays`, { timeout: 60_000 }, async () => {
    const alice = await connect(newClient(F, { token: mint({ sub: 'alice' }) }));
    const ch = channel('locked', F, 'sub-expired');
    const exp = nowSeconds() + 2;
    let calls = 0;
    const sub = alice.newSubscription(ch, {
      token: subscriptionToken('alice', ch, { exp }),
      // The app never comes back with a new token.
      getToken: () => {
        calls += 1;
        return new Promise(() => {});
      },
    });
    await subscribeOutcome(sub, 10_000, alice);
    const dropped = waitFor(sub, 'subscribing', exp * 1000 - Date.now() + EXPIRED_CLOSE_DELAY_MS + 8000, () => true, () => story(alice));
    const ctx = await dropped;
    assert.equal(ctx.code, 2501, `the reason the subscription ended: ${JSON.stringify(ctx)}`);
    assert.ok(calls >= 1, 'the SDK asked for a new subscription token');
    assert.equal(alice.state, 'connected', `the connection stays${story(alice)}`);
    assert.deepEqual(alice.history_.map((h) => h.event), ['connecting', 'connected']);
  });

  test(`${F.name}: publish is refused (103) on publish: nobody, and on publish: subscribers until subscribed`, { timeout: 60_000 }, async () => {
    const client = await connect(F);
    const readonly = channel('readonly', F, 'publish');
    await expectCode(client.publish(readonly, F.encode({ n: 1 })), 103, 'publish to a publish: nobody channel');
    const seen = [];
    await subscribe(client, readonly, {}, seen); // subscribe: anyone
    await expectCode(client.publish(readonly, F.encode({ n: 2 })), 103, 'publish to a publish: nobody channel, subscribed');

    const members = channel('members', F, 'publish');
    await expectCode(client.publish(members, F.encode({ n: 3 })), 103, 'publish to a publish: subscribers channel, not subscribed');
    const other = await connect(F);
    const otherSeen = [];
    await subscribe(other, members, {}, otherSeen);
    const mine = [];
    const sub = await subscribe(client, members, {}, mine);
    await sub.publish(F.encode({ n: 4 }));
    await until(() => mine.length === 1 && otherSeen.length === 1, 10_000, 'the member\'s publication at both');
    assert.deepEqual(numbers(otherSeen, F), [4]);
    await sleep(200);
    assert.deepEqual(seen, [], 'nothing was published on the read-only channel');
    assert.equal(client.state, 'connected', 'a refused publish keeps the connection');
  });

  test(`${F.name}: rpc is answered with error 104; send is ignored and the connection stays`, { timeout: 60_000 }, async () => {
    const client = await connect(F);
    await expectCode(client.rpc('anything', F.encode({ q: 1 })), 104, 'rpc');
    await client.send(F.encode({ fire: 'and forget' }));
    const ch = channel('plain', F, 'after-rpc');
    const seen = [];
    await subscribe(client, ch, {}, seen);
    await client.publish(ch, F.encode({ n: 1 }));
    await until(() => seen.length === 1, 10_000, 'a publication after rpc and send', () => story(client));
    assert.deepEqual(client.history_.map((h) => h.event), ['connecting', 'connected']);
  });

  test(`${F.name}: server pings keep an idle connection alive past ping_interval + pong_timeout`, { timeout: 60_000 }, async () => {
    // The SDK drops a connection with no ping for ping_interval + maxServerPingDelay.
    const client = newClient(F, { maxServerPingDelay: 1500 });
    await connect(client);
    const id = client.id;
    const socket = socketOf(client);
    let pings = 0;
    let pongs = 0;
    socket.on('message', (data) => {
      pings += emptyReplies(Buffer.from(data), F);
    });
    const send = socket.send.bind(socket);
    socket.send = (data, ...rest) => {
      pongs += emptyReplies(Buffer.from(data), F);
      return send(data, ...rest);
    };
    await sleep(3 * (PING_INTERVAL_MS + PONG_TIMEOUT_MS) + 500);
    assert.equal(client.state, 'connected', `still connected${story(client)}`);
    assert.equal(client.id, id);
    assert.deepEqual(client.history_.map((h) => h.event), ['connecting', 'connected'], `no reconnection${story(client)}`);
    assert.ok(pings >= 3, `server pings received: ${pings}`);
    assert.ok(pongs >= 3, `pongs sent: ${pongs}`);
  });
}

/**
 * How many empty replies (pings from the server, or pongs from the client) a frame holds:
 * `{}` lines in JSON; zero-length varint-delimited messages in protobuf.
 */
function emptyReplies(bytes, format) {
  if (format.name === 'json') {
    return bytes.toString('utf8').split('\n').filter((line) => line.trim() === '{}').length;
  }
  let count = 0;
  let pos = 0;
  while (pos < bytes.length) {
    let length = 0;
    let shift = 0;
    for (;;) {
      const byte = bytes[pos];
      pos += 1;
      length += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if ((byte & 0x80) === 0 || pos >= bytes.length) break;
    }
    if (length === 0) count += 1;
    pos += length;
  }
  return count;
}

test('json and protobuf clients see each other\'s publications (JSON value <-> its text as bytes)', { timeout: 60_000 }, async () => {
  const [J, P] = FORMATS;
  const ch = channel('plain', J, 'interop');
  const json = await connect(J);
  const proto = await connect(P);
  const jsonSeen = [];
  const protoSeen = [];
  await subscribe(json, ch, {}, jsonSeen);
  await subscribe(proto, ch, {}, protoSeen);

  await json.publish(ch, { from: 'json', list: [1, 2] });
  await until(() => protoSeen.length === 1 && jsonSeen.length === 1, 10_000, 'the JSON publication at both');
  assert.deepEqual(P.decode(protoSeen[0].data), { from: 'json', list: [1, 2] });

  await proto.publish(ch, P.encode({ from: 'protobuf', ok: true }));
  await until(() => protoSeen.length === 2 && jsonSeen.length === 2, 10_000, 'the protobuf publication at both');
  assert.deepEqual(jsonSeen[1].data, { from: 'protobuf', ok: true });
  assert.deepEqual(P.decode(protoSeen[1].data), { from: 'protobuf', ok: true });
});

test('a socket that never sends its connect command is closed with 3502 after connect_timeout', { timeout: 60_000 }, async () => {
  const socket = new WebSocket(endpoint());
  rawSockets.add(socket);
  socket.on('error', () => {});
  const closed = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not closed within ${CONNECT_TIMEOUT_MS + 8000} ms${ternLogs()}`)), CONNECT_TIMEOUT_MS + 8000);
    socket.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
  const { code, reason } = await closed;
  assert.equal(code, 3502, `close code ${code} (${reason})`);
});

// Last: they restart the shared tern.
for (const F of FORMATS) {
  test(`${F.name}: after tern restarts on the same port the SDK reconnects and resubscribes, recovered: false (a new epoch)`, { timeout: 120_000 }, async () => {
    const ch = channel('rooms', F, 'restart');
    const client = await connect(F);
    const firstId = client.id;
    const received = [];
    const sub = client.newSubscription(ch);
    sub.on('publication', (ctx) => received.push(ctx));
    const first = await subscribeOutcome(sub, 10_000, client);
    const epoch = first.streamPosition.epoch;
    const publisher = await connect(F);
    await publisher.publish(ch, F.encode({ n: 0 }));
    await until(() => received.length === 1, 10_000, 'the publication before the restart');

    const reasons = [];
    client.on('connecting', (ctx) => reasons.push(ctx));
    const resubscribed = waitFor(sub, 'subscribed', 60_000, () => true, () => story(client));
    const port = tern.port;
    await stopTern('SIGTERM', 20_000);
    await startTern(port);
    assert.equal(tern.port, port);
    const ctx = await resubscribed;

    assert.notEqual(client.id, firstId, 'a new connection');
    assert.equal(ctx.wasRecovering, true, JSON.stringify(ctx));
    assert.equal(ctx.recovered, false, `nothing to recover from another epoch: ${JSON.stringify(ctx)}`);
    assert.equal(ctx.recoverable, true);
    assert.notEqual(ctx.streamPosition.epoch, epoch, 'a restarted tern has a new epoch');
    assert.ok(reasons.length >= 1);
    assert.equal(reasons[0].code, 3001, `the first reason to reconnect is tern's shutdown: ${JSON.stringify(reasons)}`);

    const again = await connect(F);
    await again.publish(ch, F.encode({ n: 1 }));
    await until(() => received.some((p) => F.decode(p.data).n === 1), 10_000, 'the publication after the restart', () => story(client));
    assert.deepEqual(numbers(received, F), [0, 1]);
  });
}
