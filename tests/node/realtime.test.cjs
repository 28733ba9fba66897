// The npm client `realtime-pubsub-client` (1.0.0), unmodified, against the real `tern`
// binary serving examples/chat: every example of the client's README (and of the Go
// client's, which has the same ones plus RPC and presence), adapted to tern's topics.
//
// Run from the repository root: `node --test --test-concurrency=1 tests/node/`
// (tests/e2e/node_clients.rs does it as part of `cargo test`). The modules come from
// tools/node_modules (`cd tools && npm install`). `TERN_BIN` picks the binary (default
// target/release/tern).
'use strict';

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { createRequire } = require('node:module');
const crypto = require('node:crypto');
const path = require('node:path');
const readline = require('node:readline');

const repo = path.resolve(__dirname, '..', '..');
const toolsPackage = path.join(repo, 'tools', 'package.json');
const req = createRequire(toolsPackage);
const { RealtimeClient } = req('realtime-pubsub-client');
const WebSocket = req('ws');
const jwt = req('jsonwebtoken');

const SECRET = 'tern-node-tests-secret-0123456789abcdefg'; // 40 characters
const TERN_BIN = process.env.TERN_BIN || path.join(repo, 'target', 'release', 'tern');
const CHAT = path.join(repo, 'examples', 'chat');
const INBOUND = 'secure/inbound';

// ---------------------------------------------------------------------------------------
// The tern process (one for the whole file; the restart test stops and starts it again).

const tern = { proc: null, port: 0, logs: '' };

function running(proc) {
  return proc !== null && proc.exitCode === null && proc.signalCode === null;
}

/** Starts `tern serve examples/chat` and resolves once it prints its `listening on` line. */
function startTern(port = 0) {
  const proc = spawn(TERN_BIN, ['serve', CHAT, '--listen', `127.0.0.1:${port}`], {
    env: {
      ...process.env,
      TERN_AUTH_SECRET: SECRET,
      TERN_LOG: 'warn',
      TERN_CACHE_DIR: process.env.TERN_CACHE_DIR || path.join(repo, 'target', 'tern-e2e-cache'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  tern.proc = proc;
  tern.logs = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (text) => {
    tern.logs = (tern.logs + text).slice(-32 * 1024);
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

// Node processes started by tests (the presence test's abrupt client).
const children = new Set();

function killEverything() {
  for (const child of children) if (running(child)) child.kill('SIGKILL');
  if (running(tern.proc)) tern.proc.kill('SIGKILL');
}
process.on('exit', killEverything);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killEverything();
    process.exit(1);
  });
}

// ---------------------------------------------------------------------------------------
// Tokens, topics, clients.

/** An HS256 token as an app backend mints it: {exp, sub, subscribe, publish}. */
function mint(claims) {
  return jwt.sign(claims, SECRET, { algorithm: 'HS256', expiresIn: '1h' });
}

/** The realtime URL carrying `token`. */
function realtimeUrl(token) {
  return `ws://127.0.0.1:${tern.port}/realtime?access_token=${encodeURIComponent(token)}`;
}

/** A urlProvider that mints a fresh token with `claims` on every (re)connection. */
function tokenProvider(claims) {
  return async () => realtimeUrl(mint(claims));
}

function sha256hex(text) {
  return crypto.createHash('sha256').update(text).digest('hex');
}

/** The channel of chat room `name`, as examples/chat names it. */
function roomTopic(name) {
  return `chat/rooms/${sha256hex(name)}`;
}

let rooms = 0;
/** A room name no other test uses. */
function freshRoom(label) {
  rooms += 1;
  return `node-${label}-${process.pid}-${rooms}`;
}

const clients = new Set();
const rawSockets = new Set();

/** A RealtimeClient as the README builds one, with Node's `ws` as its WebSocket. */
function newClient(urlProvider) {
  const client = new RealtimeClient({
    websocketOptions: {
      // https://www.npmjs.com/package/reconnecting-websocket#available-options
      WebSocket,
      urlProvider,
      maxRetries: 100,
      minReconnectionDelay: 100,
      maxReconnectionDelay: 1000,
      connectionTimeout: 5000,
    },
  });
  client.failures = [];
  client.serverErrors = [];
  client.on('error', (error) => client.failures.push(error));
  client.on('priv/errors.error', (message) => client.serverErrors.push(message.data));
  clients.add(client);
  return client;
}

function disconnect(client) {
  // A socket still connecting emits `error` when closed; nobody listens any more then.
  const socket = client.ws && client.ws._ws;
  if (socket && typeof socket.on === 'function') socket.on('error', () => {});
  client.disconnect();
}

afterEach(() => {
  for (const client of clients) disconnect(client);
  clients.clear();
  for (const socket of rawSockets) socket.terminate();
  rawSockets.clear();
});

/**
 * `promise`, rejecting with a readable message (and the client's error frames) when it does.
 * Marked handled: a failure is reported where it is awaited, never as an unhandled rejection
 * (when an earlier await of the same test failed first).
 */
function within(promise, what, client) {
  const wrapped = Promise.resolve(promise).catch((e) => {
    const errors = client && client.serverErrors.length
      ? `; priv/errors frames: ${JSON.stringify(client.serverErrors)}`
      : '';
    throw new Error(`${what}: ${e && e.message ? e.message : e}${errors}`);
  });
  wrapped.catch(() => {});
  return wrapped;
}

/** Resolves with `[ackMessage]` once `topic`'s subscription is confirmed. */
function subscribedTo(client, topic, ms = 10_000) {
  const wait = client.waitFor('priv/acks.subscribed', {
    timeout: ms,
    filter: (message) => message.data && message.data.topic === topic,
  });
  return within(wait, `no priv/acks subscribed for ${topic} within ${ms} ms`, client);
}

/**
 * The README's way to start: subscribe in the `session.started` handler (so subscriptions
 * come back on reconnection), connect, wait for the session. Resolves with the connection
 * info once every subscription is live.
 */
async function start(client, topics = []) {
  client.on('session.started', () => {
    for (const topic of topics) client.subscribeRemoteTopic(topic);
  });
  const acks = topics.map((topic) => subscribedTo(client, topic, 15_000));
  const started = client.waitFor('session.started', { timeout: 10_000 });
  await client.connect();
  const [connection] = await within(started, 'no session.started within 10 s', client);
  await Promise.all(acks);
  return connection;
}

/** Every message of `event` the client gets from now on. */
function collect(client, event) {
  const seen = [];
  client.on(event, (message) => seen.push(message));
  return seen;
}

/** Polls `probe` until it returns something truthy, for at most `ms`. */
async function until(probe, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function get(pathAndQuery) {
  const resp = await fetch(`http://127.0.0.1:${tern.port}${pathAndQuery}`, {
    signal: AbortSignal.timeout(10_000),
  });
  const body = await resp.text();
  assert.equal(resp.status, 200, `GET ${pathAndQuery}: ${resp.status} ${body}`);
  return body;
}

// ---------------------------------------------------------------------------------------

before(() => startTern(), { timeout: 120_000 });

after(async () => {
  for (const client of clients) disconnect(client);
  for (const socket of rawSockets) socket.terminate();
  await stopTern('SIGTERM', 10_000);
  // Whatever still holds the event loop now is a leak: do not let it hang the run.
  setTimeout(() => process.exit(), 5000).unref();
});

test('session.started gives the connection, and subscribing in its handler works', { timeout: 60_000 }, async () => {
  const topic = roomTopic(freshRoom('started'));
  const claims = { sub: 'alice', subscribe: [topic], publish: [topic, INBOUND] };
  const client = newClient(tokenProvider(claims));
  const welcomes = collect(client, 'main.welcome');
  const subscribed = subscribedTo(client, topic, 15_000);

  const sessionIds = [];
  client.on('session.started', (connectionInfo) => {
    sessionIds.push(connectionInfo.id);
    // subscribe to topics here
    client.subscribeRemoteTopic(topic);
  });
  const started = client.waitFor('session.started', { timeout: 10_000 });
  await client.connect();
  const [connectionInfo] = await within(started, 'no session.started', client);

  assert.match(connectionInfo.id, /^[0-9a-f]{20}$/);
  assert.deepEqual(sessionIds, [connectionInfo.id]);
  assert.equal(connectionInfo.appId, 'tern');
  assert.equal(connectionInfo.remoteAddress, '127.0.0.1');
  assert.equal(welcomes.length, 1);
  assert.equal(welcomes[0].topic, 'main');
  assert.equal(welcomes[0].messageType, 'welcome');
  assert.deepEqual(welcomes[0].data.permissions, { subscribe: claims.subscribe, publish: claims.publish });
  assert.equal(welcomes[0].data.user, 'alice');

  const [ack] = await subscribed;
  assert.equal(ack.topic, 'priv/acks');
  assert.equal(ack.messageType, 'subscribed');
  assert.deepEqual(ack.data, { topic });

  // A second connection is another session.
  const other = newClient(tokenProvider(claims));
  const otherInfo = await start(other);
  assert.notEqual(otherInfo.id, connectionInfo.id);
  assert.deepEqual(client.serverErrors, []);
});

test("a subscriber's reply to a text-message reaches the publisher's waitForReply", { timeout: 60_000 }, async () => {
  const topic = roomTopic(freshRoom('reply'));
  const claims = { subscribe: [topic], publish: [topic] };

  const bob = newClient(tokenProvider({ sub: 'bob', ...claims }));
  const received = [];
  bob.on(`${topic}.text-message`, (message, reply) => {
    received.push(message);
    // sending a reply
    reply('Got it!', 'ok');
  });
  await start(bob, [topic]);

  const alice = newClient(tokenProvider({ sub: 'alice', ...claims }));
  const aliceInfo = await start(alice);
  const waitFor = alice.publish(topic, 'Hello, World!', {
    id: 'hello-1',
    messageType: 'text-message',
    compress: true,
  });
  const acked = within(waitFor.waitForAck(10_000), 'no ack for the publish', alice);
  const replied = within(waitFor.waitForReply(10_000), 'no reply to the publish', alice);
  await acked;
  const [reply] = await replied;
  assert.deepEqual(reply, { id: 'hello-1', data: 'Got it!', status: 'ok' });

  assert.equal(received.length, 1);
  const [message] = received;
  assert.equal(message.topic, topic);
  assert.equal(message.messageType, 'text-message');
  assert.equal(message.data.payload, 'Hello, World!');
  assert.equal(message.data.id, 'hello-1');
  assert.deepEqual(message.data.client, { connectionId: aliceInfo.id });
  assert.deepEqual(bob.serverErrors, []);
});

test('a wildcard listener gets every message type of its topic', { timeout: 60_000 }, async () => {
  const topic = roomTopic(freshRoom('wildcard'));
  const claims = { subscribe: [topic], publish: [topic] };
  const bob = newClient(tokenProvider({ sub: 'bob', ...claims }));
  const seen = [];
  bob.on(`${topic}.*`, (message) => seen.push(message));
  await start(bob, [topic]);

  const alice = newClient(tokenProvider({ sub: 'alice', ...claims }));
  await start(alice);
  await within(alice.publish(topic, 'Hello, World!', { messageType: 'text-message' }).waitForAck(10_000), 'no ack', alice);
  await within(alice.publish(topic, { wave: true }, { messageType: 'greeting' }).waitForAck(10_000), 'no ack', alice);

  await until(() => seen.length >= 2, 10_000, 'two messages on the wildcard listener');
  assert.deepEqual(
    seen.map((m) => [m.topic, m.messageType, m.data.payload]),
    [
      [topic, 'text-message', 'Hello, World!'],
      [topic, 'greeting', { wave: true }],
    ],
  );
});

test('publish(...).waitForAck() resolves; a topic the token does not cover gets an error instead', { timeout: 60_000 }, async () => {
  const topic = roomTopic(freshRoom('ack'));
  const elsewhere = roomTopic(freshRoom('not-mine'));
  const alice = newClient(tokenProvider({ sub: 'alice', subscribe: [], publish: [topic] }));
  await start(alice);

  const acked = await within(alice.publish(topic, 'Hi', { messageType: 'greeting' }).waitForAck(10_000), 'no ack', alice);
  assert.ok(Array.isArray(acked));

  const refused = alice.waitFor('priv/errors.error', { timeout: 10_000 });
  const waitFor = alice.publish(elsewhere, 'Hi', { id: 'nope-1', messageType: 'greeting' });
  const [error] = await within(refused, 'no error frame for a forbidden publish');
  assert.equal(error.topic, 'priv/errors');
  assert.equal(error.messageType, 'error');
  assert.equal(error.data.code, 'forbidden');
  assert.equal(error.data.id, 'nope-1');
  assert.equal(error.data.type, 'publish');
  assert.equal(error.data.topic, elsewhere);
  await assert.rejects(waitFor.waitForAck(300), 'a refused publish is not acknowledged');
});

test('unsubscribeRemoteTopic stops the deliveries of that topic', { timeout: 60_000 }, async () => {
  const topic = roomTopic(freshRoom('unsubscribe'));
  const claims = { subscribe: [topic], publish: [topic] };
  const bob = newClient(tokenProvider({ sub: 'bob', ...claims }));
  const bobSeen = collect(bob, `${topic}.*`);
  await start(bob, [topic]);
  const carol = newClient(tokenProvider({ sub: 'carol', ...claims }));
  const carolSeen = collect(carol, `${topic}.*`);
  await start(carol, [topic]);
  const alice = newClient(tokenProvider({ sub: 'alice', ...claims }));
  await start(alice);

  await within(alice.publish(topic, 'before', { messageType: 'text-message' }).waitForAck(10_000), 'no ack', alice);
  await until(() => bobSeen.length === 1 && carolSeen.length === 1, 10_000, 'the first message at bob and carol');

  const unsubscribed = bob.waitFor('priv/acks.unsubscribed', {
    timeout: 10_000,
    filter: (message) => message.data && message.data.topic === topic,
  });
  bob.unsubscribeRemoteTopic(topic);
  await within(unsubscribed, 'no priv/acks unsubscribed', bob);

  await within(alice.publish(topic, 'after', { messageType: 'text-message' }).waitForAck(10_000), 'no ack', alice);
  await until(() => carolSeen.length === 2, 10_000, 'the second message at carol');
  await sleep(300);
  assert.deepEqual(bobSeen.map((m) => m.data.payload), ['before']);
  assert.deepEqual(carolSeen.map((m) => m.data.payload), ['before', 'after']);
});

test("send(..., {messageType: 'echo'}).waitForReply() is answered by the wasm function rt_backend", { timeout: 60_000 }, async () => {
  const alice = newClient(tokenProvider({ sub: 'alice', subscribe: [], publish: [INBOUND] }));
  await start(alice);
  const payload = { action: 'create', data: { name: 'John Doe' } };
  const waitFor = alice.send(payload, { id: 'echo-1', messageType: 'echo' });
  const acked = within(waitFor.waitForAck(10_000), 'no ack for the send', alice);
  const replied = within(waitFor.waitForReply(15_000), 'no reply from rt_backend', alice);
  await acked;
  const [reply] = await replied;
  assert.deepEqual(reply, { id: 'echo-1', data: { echo: payload, by: 'wasm' }, status: 'ok' });

  // A string payload, and the README's order: the ack first, then the reply.
  const second = alice.send('ping', { messageType: 'echo' });
  const secondReply = within(second.waitForReply(15_000), 'no reply to the second echo', alice);
  await within(second.waitForAck(10_000), 'no ack for the second echo', alice);
  const [pong] = await secondReply;
  assert.deepEqual(pong.data, { echo: 'ping', by: 'wasm' });
  assert.equal(pong.status, 'ok');
});

test("send(..., {messageType: 'create'}).waitForReply() is answered by a client subscribed to secure/inbound", { timeout: 60_000 }, async () => {
  // The Go client's rpc/server.go: a backend process that is itself a realtime client.
  const backend = newClient(tokenProvider({ sub: 'backend', subscribe: [INBOUND], publish: [INBOUND] }));
  const requests = [];
  backend.on(`${INBOUND}.create`, (message, reply) => {
    requests.push(message);
    reply({ created: message.data.payload.data.name }, 'ok');
  });
  backend.on(`${INBOUND}.gettime`, (message, reply) => {
    reply({ time: new Date().toISOString() }, 'ok');
  });
  await start(backend, [INBOUND]);

  const alice = newClient(tokenProvider({ sub: 'alice', subscribe: [], publish: [INBOUND] }));
  const aliceInfo = await start(alice);
  const payload = { action: 'create', data: { name: 'John Doe' } };
  const waitFor = alice.send(payload, { id: 'create-1', messageType: 'create' });
  const acked = within(waitFor.waitForAck(10_000), 'no ack for the send', alice);
  const replied = within(waitFor.waitForReply(10_000), 'no reply from the backend client', alice);
  await acked;
  const [reply] = await replied;
  assert.deepEqual(reply, { id: 'create-1', data: { created: 'John Doe' }, status: 'ok' });

  assert.equal(requests.length, 1);
  assert.equal(requests[0].topic, INBOUND);
  assert.deepEqual(requests[0].data.payload, payload);
  assert.deepEqual(requests[0].data.client, { connectionId: aliceInfo.id });

  // rpc/client.go: an empty payload, only a message type.
  const [time] = await within(alice.send('', { messageType: 'gettime' }).waitForReply(10_000), 'no gettime reply', alice);
  assert.equal(time.status, 'ok');
  assert.ok(Math.abs(Date.parse(time.data.time) - Date.now()) < 60_000, JSON.stringify(time));
  assert.deepEqual(backend.serverErrors, []);
});

/** A realtime client in its own `node` process; resolves with it and its connection id. */
function spawnNodeClient(url) {
  const code = `
    const { createRequire } = require('node:module');
    const req = createRequire(process.env.TOOLS_PACKAGE);
    const { RealtimeClient } = req('realtime-pubsub-client');
    const client = new RealtimeClient({
      websocketOptions: { WebSocket: req('ws'), urlProvider: async () => process.env.RT_URL },
    });
    client.on('error', (e) => console.error(String(e)));
    client.on('session.started', (info) => console.log('connected ' + info.id));
    client.connect();
    setTimeout(() => process.exit(3), 60000);
  `;
  const child = spawn(process.execPath, ['-e', code], {
    env: { ...process.env, TOOLS_PACKAGE: toolsPackage, RT_URL: url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text) => { stderr += text; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the child client printed no connection id in 15 s; stderr: ${stderr}`));
    }, 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the child client exited (${code}); stderr: ${stderr}`));
    });
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^connected ([0-9a-f]+)$/.exec(line.trim());
      if (m) {
        clearTimeout(timer);
        resolve({ child, id: m[1] });
      }
    });
  });
}

test('presence: connected when a client connects, disconnected when it dies abruptly', { timeout: 60_000 }, async () => {
  const watcher = newClient(tokenProvider({ sub: 'watcher', subscribe: [INBOUND], publish: [] }));
  const presence = collect(watcher, `${INBOUND}.presence`);
  await start(watcher, [INBOUND]);

  const topic = roomTopic(freshRoom('presence'));
  const claims = { sub: 'ghost', subscribe: [topic], publish: [INBOUND] };
  const { child, id } = await spawnNodeClient(realtimeUrl(mint(claims)));
  try {
    const find = (status) => () =>
      presence.find((m) => m.data.payload && m.data.payload.connectionId === id && m.data.payload.status === status);
    const hello = await until(find('connected'), 10_000, `presence connected of ${id}`);
    assert.equal(hello.topic, INBOUND);
    assert.equal(hello.messageType, 'presence');
    assert.deepEqual(hello.data.payload, {
      connectionId: id,
      status: 'connected',
      permissions: { subscribe: claims.subscribe, publish: claims.publish },
      user: 'ghost',
    });
    assert.deepEqual(hello.data.client, { connectionId: id });

    // No close frame, no FIN from a library: the process is gone.
    child.kill('SIGKILL');
    const bye = await until(find('disconnected'), 20_000, `presence disconnected of ${id}`);
    assert.equal(bye.data.payload.user, 'ghost');
    assert.deepEqual(bye.data.client, { connectionId: id });
  } finally {
    if (running(child)) child.kill('SIGKILL');
    children.delete(child);
  }
});

test('the URL minted by a function (/api/ws?room=R&protocol=realtime) works with the client', { timeout: 60_000 }, async () => {
  const room = freshRoom('minted');
  const topic = roomTopic(room);
  let calls = 0;
  // The README's urlProvider: ask the app for a URL carrying a fresh token.
  const urlProvider = async () => {
    calls += 1;
    return get(`/api/ws?room=${encodeURIComponent(room)}&protocol=realtime`);
  };

  const url = await urlProvider();
  const prefix = `ws://127.0.0.1:${tern.port}/realtime?access_token=`;
  assert.ok(url.startsWith(prefix), url);
  const claims = jwt.verify(decodeURIComponent(url.slice(prefix.length)), SECRET, { algorithms: ['HS256'] });
  const lifetime = claims.exp - Math.floor(Date.now() / 1000);
  assert.ok(lifetime > 3500 && lifetime <= 3600, `token valid for ${lifetime} s`);

  const bob = newClient(urlProvider);
  const welcomes = collect(bob, 'main.welcome');
  bob.on(`${topic}.text-message`, (message, reply) => reply(`bob got: ${message.data.payload}`, 'ok'));
  await start(bob, [topic]);
  const { permissions } = welcomes[0].data;
  assert.ok(permissions.subscribe.includes(topic), JSON.stringify(permissions));
  assert.ok(permissions.publish.includes(topic), JSON.stringify(permissions));
  assert.ok(permissions.publish.includes(INBOUND), JSON.stringify(permissions));

  const alice = newClient(urlProvider);
  await start(alice);
  assert.equal(calls, 3);
  const waitFor = alice.publish(topic, 'hi bob', { messageType: 'text-message' });
  const [reply] = await within(waitFor.waitForReply(10_000), 'no reply from bob', alice);
  assert.equal(reply.data, 'bob got: hi bob');
  assert.equal(reply.status, 'ok');

  // The room's token may also send to the backend.
  const [echo] = await within(alice.send({ hello: room }, { messageType: 'echo' }).waitForReply(15_000), 'no echo', alice);
  assert.deepEqual(echo.data, { echo: { hello: room }, by: 'wasm' });
});

test('one broker, three doors: the raw bridge, the realtime endpoint, and functions', { timeout: 60_000 }, async () => {
  const room = freshRoom('doors');
  const topic = roomTopic(room);

  const rawUrl = await get(`/api/ws?room=${encodeURIComponent(room)}`);
  // This host has a token secret: the URL is signed (an hour, read and write).
  const signed = new URL(rawUrl);
  assert.equal(`${signed.origin}${signed.pathname}`, `ws://127.0.0.1:${tern.port}/ws/channel/${topic}`);
  assert.match(signed.searchParams.get('access_token') || '', /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const raw = new WebSocket(rawUrl);
  rawSockets.add(raw);
  const rawFrames = [];
  raw.on('message', (data, isBinary) => rawFrames.push({ text: data.toString(), isBinary }));
  raw.on('error', () => {});
  await within(
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timeout')), 10_000);
      raw.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      raw.once('error', reject);
    }),
    'the raw bridge client did not connect',
  );

  const rt = newClient(tokenProvider({ sub: 'rt', subscribe: [topic], publish: [topic] }));
  const rtSeen = collect(rt, `${topic}.*`);
  await start(rt, [topic]);

  // realtime -> raw: a JSON string arrives as its text, anything else as its JSON text.
  await within(rt.publish(topic, 'hello from realtime', { messageType: 'text-message' }).waitForAck(10_000), 'no ack', rt);
  await until(() => rawFrames.length >= 1, 10_000, 'the first frame at the raw client');
  assert.deepEqual(rawFrames[0], { text: 'hello from realtime', isBinary: false });
  await within(rt.publish(topic, { n: 1, text: 'an object' }).waitForAck(10_000), 'no ack', rt);
  await until(() => rawFrames.length >= 2, 10_000, 'the second frame at the raw client');
  assert.equal(rawFrames[1].isBinary, false);
  assert.deepEqual(JSON.parse(rawFrames[1].text), { n: 1, text: 'an object' });

  // raw -> realtime: the text as a JSON string, type `message`, no client.
  raw.send('hello from raw');
  const fromRaw = await until(() => rtSeen.find((m) => m.data.payload === 'hello from raw'), 10_000, 'the raw frame at the realtime client');
  assert.equal(fromRaw.topic, topic);
  assert.equal(fromRaw.messageType, 'message');
  assert.equal(typeof fromRaw.data.id, 'string');
  assert.match(fromRaw.data.id, /^\d+$/);
  assert.equal(fromRaw.data.client, undefined);

  // function -> both: POST /api/notify publishes the body to the room.
  const resp = await fetch(`http://127.0.0.1:${tern.port}/api/notify?room=${encodeURIComponent(room)}`, {
    method: 'POST',
    body: 'from a function',
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(resp.status, 202, await resp.text());
  const fromFunction = await until(() => rtSeen.find((m) => m.data.payload === 'from a function'), 10_000, 'the function publish at the realtime client');
  assert.equal(fromFunction.messageType, 'message');
  assert.equal(fromFunction.data.client, undefined);
  await until(() => rawFrames.some((f) => f.text === 'from a function'), 10_000, 'the function publish at the raw client');

  // The realtime client never got its own publications back.
  assert.deepEqual(rtSeen.map((m) => m.data.payload), ['hello from raw', 'from a function']);
});

// Last: it restarts the shared tern.
test('after tern restarts, the client reconnects through its urlProvider and resubscribes', { timeout: 120_000 }, async () => {
  const topic = roomTopic(freshRoom('restart'));
  let urlCalls = 0;
  const sessions = [];
  const closeCodes = [];
  const client = newClient(async () => {
    urlCalls += 1;
    return realtimeUrl(mint({ sub: 'survivor', subscribe: [topic], publish: [] }));
  });
  client.on('close', (event) => closeCodes.push(event.code));
  client.on('session.started', (connectionInfo) => {
    sessions.push(connectionInfo.id);
    // subscriptions made here come back on reconnection
    client.subscribeRemoteTopic(topic);
  });
  const received = collect(client, `${topic}.text-message`);
  const firstSubscription = subscribedTo(client, topic);
  await client.connect();
  await firstSubscription;
  assert.equal(urlCalls, 1);

  const port = tern.port;
  const resubscribed = subscribedTo(client, topic, 60_000);
  await stopTern('SIGTERM', 20_000);
  await startTern(port);
  assert.equal(tern.port, port);
  await resubscribed;

  assert.ok(urlCalls >= 2, `urlProvider called ${urlCalls} times`);
  assert.ok(sessions.length >= 2, `sessions: ${sessions}`);
  assert.notEqual(sessions.at(-1), sessions[0]);
  assert.ok(closeCodes.includes(1001), `close codes seen: ${closeCodes}`);

  const publisher = newClient(tokenProvider({ sub: 'publisher', subscribe: [], publish: [topic] }));
  await start(publisher);
  await within(publisher.publish(topic, 'after the restart', { messageType: 'text-message' }).waitForAck(10_000), 'no ack', publisher);
  const message = await until(() => received.find((m) => m.data.payload === 'after the restart'), 10_000, 'the publication after the restart');
  assert.equal(message.topic, topic);
});
