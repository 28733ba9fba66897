// Functions in the real-time path, through the npm `centrifuge` SDK (JSON and protobuf)
// and raw `ws` sockets against the real `tern` binary: RPCs answered by a wasm handler,
// connect, subscribe and publish hooks (allow, deny, change, fail closed), and a function
// that subscribes its caller to a channel and publishes there. The functions are the
// fixtures in tests/fixtures (session_rpc, hook_connect, hook_subscribe, hook_publish).
'use strict';

const { test, before, after, afterEach } = require('node:test');
const { assert, tools, wasm, writeProject, Tern, mint, sleep, waitFor, within } = require('./support.cjs');

const { Centrifuge: JsonCentrifuge } = tools('centrifuge');
const { Centrifuge: ProtobufCentrifuge } = tools('centrifuge/build/protobuf');
const WebSocket = tools('ws');

const SECRET = 'tern-functions-tests-secret-0123456789abcdef';

const fn = (trigger, name, extra = '') => `
trigger: ${trigger}
source: ${wasm(name)}
${extra}`;

const project = writeProject({
  'tern.yaml': `
centrifuge:
  allow_anonymous: true
hooks:
  connect: hook_connect
`,
  'functions/rpc.yaml': fn('{ type: rpc, method: "*" }', 'session_rpc', 'execution: { timeout: 1s }'),
  'functions/hook_connect.yaml': fn('{ type: connect-hook }', 'hook_connect', 'execution: { timeout: 1s }'),
  'functions/hook_subscribe.yaml': fn('{ type: subscribe-hook }', 'hook_subscribe', 'execution: { timeout: 1s }'),
  'functions/hook_publish.yaml': fn('{ type: publish-hook }', 'hook_publish', 'execution: { timeout: 1s }'),
  'messaging/guarded.yaml': `
channel: { match: guarded }
bridges: { websocket: { enable: true } }
presence: true
hooks: { subscribe: hook_subscribe, publish: hook_publish }
`,
  'functions/get_websocket_url.yaml': fn('{ type: http, method: GET, paths: [/api/ws] }', 'get_websocket_url'),
  'messaging/chat.yaml': `
channel: { match: chat/rooms }
bridges: { websocket: { enable: true, require_token: true } }
`,
  'messaging/strict.yaml': `
channel: { match: strict }
bridges: { websocket: { enable: true, require_token: true, anonymous: publish } }
`,
  'messaging/open.yaml': `
channel: { match: open }
bridges: { websocket: { enable: true } }
`,
});

const tern = new Tern(project, { TERN_AUTH_SECRET: SECRET });
before(() => tern.start());
after(() => tern.stop());

const FORMATS = [
  {
    name: 'json',
    Centrifuge: JsonCentrifuge,
    encode: (value) => value,
    decode: (data) => data,
  },
  {
    name: 'protobuf',
    Centrifuge: ProtobufCentrifuge,
    encode: (value) => new TextEncoder().encode(JSON.stringify(value)),
    decode: (data) => JSON.parse(Buffer.from(data).toString('utf8')),
  },
];

const clients = new Set();
afterEach(() => {
  for (const c of clients) c.disconnect();
  clients.clear();
});

let unique = 0;
const channel = (kind, label) => `${kind}/${label}-${process.pid}-${++unique}`;

/** A client of `format`, connected (with `token` when given). */
async function connected(format, token) {
  const client = new format.Centrifuge(tern.ws('/connection/websocket'), {
    websocket: WebSocket,
    token,
    minReconnectDelay: 100,
    maxReconnectDelay: 500,
    timeout: 5000,
  });
  clients.add(client);
  const up = waitFor(client, 'connected', 10_000, () => true, () => tern.tail());
  client.connect();
  client.ctx = await up;
  return client;
}

/** What an SDK call rejected with. */
async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected the call to fail');
}

for (const format of FORMATS) {
  test(`${format.name}: 100 concurrent RPCs each get their own answer`, async () => {
    const client = await connected(format);
    const calls = Array.from({ length: 100 }, (_, n) => client.rpc('echo', format.encode({ n })));
    const answers = await within(20_000, Promise.all(calls), '100 RPCs');
    answers.forEach((answer, n) => assert.deepEqual(format.decode(answer.data), { n }));
  });

  test(`${format.name}: an RPC whose handler traps or spins gets an error, and the connection stays`, async () => {
    const client = await connected(format);
    const trapped = await failure(client.rpc('trap', format.encode({})));
    assert.equal(trapped.code, 100, JSON.stringify(trapped));
    assert.match(trapped.message, /failed/);
    const spun = await failure(client.rpc('spin', format.encode({})));
    assert.equal(spun.code, 100, JSON.stringify(spun));
    assert.match(spun.message, /timed out/);
    const refused = await failure(client.rpc('nope', format.encode({})));
    assert.deepEqual([refused.code, refused.message], [404, 'no method `nope`']);
    assert.equal(client.state, 'connected');
    const answer = await client.rpc('echo', format.encode({ still: 'here' }));
    assert.deepEqual(format.decode(answer.data), { still: 'here' });
    assert.match(tern.logs, /rpc handler failed/);
  });

  test(`${format.name}: the connect hook names anonymous clients; handlers see who calls`, async () => {
    const anonymous = await connected(format);
    const who = format.decode((await anonymous.rpc('whoami', format.encode({}))).data);
    assert.match(who.user, /^guest-[0-9a-f]{8}$/);
    assert.equal(who.id, anonymous.ctx.client);
    assert.equal(who.protocol, 'centrifuge');
    assert.deepEqual(JSON.parse(who.info), { guest: true });
    const ada = await connected(format, mint({ sub: 'ada' }, SECRET));
    const her = format.decode((await ada.rpc('whoami', format.encode({}))).data);
    assert.equal(her.user, 'ada');
  });

  test(`${format.name}: a connect hook's deny, disconnect and failure keep the client out`, async () => {
    for (const [user, code] of [['deny', 1403], ['disconnect', 4503], ['trap', 103], ['spin', 103]]) {
      const client = new format.Centrifuge(tern.ws('/connection/websocket'), {
        websocket: WebSocket,
        token: mint({ sub: user }, SECRET),
        minReconnectDelay: 60_000,
        timeout: 5000,
      });
      clients.add(client);
      const outcome = Promise.race([
        // Code 11 is the SDK's own "connection closed", which precedes a disconnect.
        waitFor(client, 'error', 5000, (ctx) => ctx.error.code !== 11).then((ctx) => ({ error: ctx.error })),
        waitFor(client, 'disconnected', 5000).then((ctx) => ({ closed: ctx })),
        waitFor(client, 'connected', 5000).then(() => ({ connected: true })),
      ]);
      client.connect();
      const got = await outcome;
      assert.ok(!got.connected, `${user}: connected although the hook refused`);
      const seen = got.error ? got.error.code : got.closed.code;
      assert.equal(seen, code, `${user}: ${JSON.stringify(got)}${tern.tail()}`);
      client.disconnect();
    }
    assert.match(tern.logs, /connect hook failed/);
  });

  test(`${format.name}: subscribe hook allows, denies, adds info, fails closed`, async () => {
    const client = await connected(format, mint({ sub: 'sub-tester' }, SECRET));
    const ok = client.newSubscription(channel('guarded', 'ok'));
    await within(5000, new Promise((resolve) => { ok.once('subscribed', resolve); ok.subscribe(); }), 'allowed subscribe');
    for (const [last, code, reason] of [
      ['denied', 1403, /^no entry to guarded\/.*\/denied$/],
      ['trap', 103, /^the subscribe hook failed$/],
      ['spin', 103, /^the subscribe hook failed$/],
    ]) {
      const sub = client.newSubscription(`${channel('guarded', 'x')}/${last}`);
      const refused = waitFor(sub, 'unsubscribed', 5000);
      sub.subscribe();
      const ctx = await refused;
      assert.equal(ctx.code, code, `${last}: ${JSON.stringify(ctx)}`);
      assert.match(ctx.reason, reason);
    }
    const vipChannel = `${channel('guarded', 'v')}/vip`;
    const vip = client.newSubscription(vipChannel);
    await within(5000, new Promise((resolve) => { vip.once('subscribed', resolve); vip.subscribe(); }), 'vip subscribe');
    const presence = await vip.presence();
    const mine = Object.values(presence.clients).find((c) => c.client === client.ctx.client);
    const info = format.name === 'json' ? mine.chanInfo : JSON.parse(Buffer.from(mine.chanInfo).toString());
    assert.deepEqual(info, { vip: true });
    assert.equal(client.state, 'connected');
    const closed = waitFor(client, 'disconnected', 5000);
    client.newSubscription(`${channel('guarded', 'k')}/kick`).subscribe();
    assert.equal((await closed).code, 4504);
  });

  test(`${format.name}: publish hook allows, rewrites, denies with a reason, fails closed`, async () => {
    const name = channel('guarded', 'pub');
    const alice = await connected(format, mint({ sub: 'alice' }, SECRET));
    const bob = await connected(format, mint({ sub: 'bob' }, SECRET));
    const subscribed = (client) => {
      const sub = client.newSubscription(name);
      const done = new Promise((resolve) => sub.once('subscribed', resolve));
      sub.subscribe();
      return within(5000, done, 'subscribe').then(() => sub);
    };
    const [mine, theirs] = [await subscribed(alice), await subscribed(bob)];
    const received = [];
    theirs.on('publication', (ctx) => received.push(format.decode(ctx.data)));
    await mine.publish(format.encode({ text: 'hello' }));
    await mine.publish(format.encode({ text: 'shout it' }));
    for (const [text, code, reason] of [
      ['a banned word', 1400, 'that word is not allowed here'],
      ['x'.repeat(300), 1413, 'messages are at most 200 bytes'],
      ['trap', 103, 'the publish hook failed'],
    ]) {
      const e = await failure(mine.publish(format.encode({ text })));
      assert.deepEqual([e.code, e.message], [code, reason]);
    }
    await mine.publish(format.encode({ text: 'after' }));
    await within(5000, (async () => { while (received.length < 3) await sleep(20); })(), 'publications');
    assert.deepEqual(received, [{ text: 'hello' }, { TEXT: 'SHOUT IT' }, { text: 'after' }]);
    const closed = waitFor(alice, 'disconnected', 5000);
    mine.publish(format.encode({ text: 'kick me' })).catch(() => {});
    assert.equal((await closed).code, 4501);
  });

  test(`${format.name}: a function subscribes its caller, publishes there, and the client gets it`, async () => {
    const client = await connected(format);
    const name = channel('open', 'joined');
    const got = waitFor(client, 'publication', 5000, (ctx) => ctx.channel === name);
    const answer = await client.rpc('join', format.encode(name));
    assert.deepEqual(format.decode(answer.data), { joined: true });
    assert.deepEqual(format.decode((await got).data), { welcome: true });
    const message = waitFor(client, 'message', 5000);
    await client.rpc('poke', format.encode({}));
    assert.deepEqual(format.decode((await message).data), { poked: true });
    const closed = waitFor(client, 'disconnected', 5000);
    client.rpc('kick', format.encode({})).catch(() => {});
    const ctx = await closed;
    assert.deepEqual([ctx.code, ctx.reason], [4521, 'kicked by rpc']);
  });
}

// ---------------------------------------------------------------------------------------
// The raw bridge: the same hooks before the upgrade and on every frame, and signed URLs.

/** Opens a raw socket to `path`: resolves with it once open, or with the refusal. */
function raw(path, headers = {}) {
  return new Promise((resolve) => {
    const socket = new WebSocket(tern.ws(path), { headers });
    socket.received = [];
    socket.on('message', (data) => socket.received.push(data.toString()));
    socket.once('open', () => resolve({ socket }));
    socket.once('unexpected-response', (_, res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    socket.once('error', (error) => resolve({ error }));
  });
}

const rawSockets = new Set();
afterEach(() => {
  for (const s of rawSockets) s.terminate();
  rawSockets.clear();
});

async function open(path, headers) {
  const got = await raw(path, headers);
  assert.ok(got.socket, `${path}: ${JSON.stringify(got)}${tern.tail()}`);
  rawSockets.add(got.socket);
  return got.socket;
}

const until = (what, cond) =>
  within(5000, (async () => { while (!cond()) await sleep(10); })(), what);

test('raw bridge: connect and subscribe hooks refuse with 403 and their reason', async () => {
  const denied = await raw(`/ws/channel/${channel('open', 'c')}`, { 'x-hook': 'deny' });
  assert.equal(denied.status, 403);
  assert.match(denied.body, /the connect hook says no/);
  const trapped = await raw(`/ws/channel/${channel('open', 'c')}`, { 'x-hook': 'trap' });
  assert.equal(trapped.status, 403);
  assert.match(trapped.body, /the connect hook failed/);
  const closed = await raw(`/ws/channel/${channel('guarded', 's')}/denied`);
  assert.equal(closed.status, 403);
  assert.match(closed.body, /no entry to guarded\//);
  const failed = await raw(`/ws/channel/${channel('guarded', 's')}/spin`);
  assert.equal(failed.status, 403);
  assert.match(failed.body, /the subscribe hook failed/);
  await open(`/ws/channel/${channel('guarded', 's')}/fine`);
});

test('raw bridge: the publish hook passes, rewrites, refuses to the sender alone, closes', async () => {
  const path = `/ws/channel/${channel('guarded', 'raw')}`;
  const [alice, bob] = [await open(path), await open(path)];
  alice.send('hello');
  alice.send('shout it');
  alice.send('a banned word');
  alice.send('trap');
  alice.send('after');
  await until('bob gets three', () => bob.received.length >= 3);
  await until('alice gets two refusals', () => alice.received.length >= 2);
  assert.deepEqual(bob.received, ['hello', 'SHOUT IT', 'after']);
  assert.deepEqual(alice.received.map((t) => JSON.parse(t)), [
    { error: { code: 1400, reason: 'that word is not allowed here' } },
    { error: { code: 0, reason: 'the publish hook failed' } },
  ]);
  const code = new Promise((resolve) => alice.once('close', (c) => resolve(c)));
  alice.send('kick');
  assert.equal(await within(5000, code, 'close'), 4501);
  await sleep(100);
  assert.deepEqual(bob.received, ['hello', 'SHOUT IT', 'after']);
});

test('raw bridge: require_token admits signed URLs only: 401 forged, expired or missing, 403 elsewhere', async () => {
  const res = await fetch(tern.url('/api/ws?room=lobby'));
  assert.equal(res.status, 200);
  const url = await res.text();
  const { pathname, searchParams } = new URL(url);
  const token = searchParams.get('access_token');
  assert.ok(token && pathname.startsWith('/ws/channel/chat/rooms/'), url);
  const [a, b] = [await open(`${pathname}?access_token=${token}`), await open(`${pathname}?access_token=${token}`)];
  a.send('signed and sent');
  await until('b gets it', () => b.received.length >= 1);
  assert.deepEqual(b.received, ['signed and sent']);
  const missing = await raw(pathname);
  assert.equal(missing.status, 401);
  assert.match(missing.body, /needs a signed URL/);
  const forged = await raw(`${pathname}?access_token=${token.slice(0, -4)}AAAA`);
  assert.equal(forged.status, 401);
  const expired = mint({ exp: Math.floor(Date.now() / 1000) - 10, subscribe: ['chat'] }, SECRET);
  assert.equal((await raw(`${pathname}?access_token=${expired}`)).status, 401);
  const other = mint({ subscribe: ['chat/rooms/elsewhere'], publish: ['chat/rooms/elsewhere'] }, SECRET);
  const elsewhere = await raw(`${pathname}?access_token=${other}`);
  assert.equal(elsewhere.status, 403);
  assert.match(elsewhere.body, /does not let its holder read/);
  // The URL opens its own channel, not the ones below it, and is no connection token.
  const below = await raw(`${pathname}/admin?access_token=${token}`);
  assert.equal(below.status, 403);
  assert.match(below.body, /is for channel/);
  const asConnection = new JsonCentrifuge(tern.ws('/connection/websocket'), { websocket: WebSocket, token });
  clients.add(asConnection);
  const refusedConnect = waitFor(asConnection, 'disconnected', 5000);
  asConnection.connect();
  assert.equal((await refusedConnect).code, 3500, 'a signed URL\'s token opens no connection');
  const reader = await open(`${pathname}?access_token=${mint({ subscribe: ['chat/rooms'] }, SECRET)}`);
  const closed = new Promise((resolve) => reader.once('close', (c) => resolve(c)));
  reader.send('I may only read');
  assert.equal(await within(5000, closed, 'read-only close'), 1008);
  await sleep(100);
  assert.deepEqual(b.received, ['signed and sent']);
  // `anonymous: publish` beside require_token gives a token no more than it grants.
  const strictReader = await open(`/ws/channel/strict/x?access_token=${mint({ subscribe: ['strict'] }, SECRET)}`);
  const strictClosed = new Promise((resolve) => strictReader.once('close', (c) => resolve(c)));
  strictReader.send('not mine to say');
  assert.equal(await within(5000, strictClosed, 'strict read-only close'), 1008);
  assert.equal((await raw('/ws/channel/strict/x')).status, 401);
});

// ---------------------------------------------------------------------------------------
// The realtime-pubsub endpoint: the same hooks, through the npm `realtime-pubsub-client`.

const { RealtimeClient } = tools('realtime-pubsub-client');

async function realtimeClient(token) {
  const client = new RealtimeClient({
    websocketOptions: {
      WebSocket,
      urlProvider: async () => tern.ws(`/realtime?access_token=${token}`),
      maxRetries: 0,
      connectionTimeout: 5000,
    },
  });
  client.errorsSeen = [];
  client.on('priv/errors.error', (message) => client.errorsSeen.push(message.data));
  const welcome = client.waitFor('main.welcome', { timeout: 10_000 });
  const started = client.waitFor('session.started', { timeout: 10_000 });
  await client.connect();
  await started;
  client.welcome = (await welcome)[0];
  clients.add({ disconnect: () => client.disconnect() });
  return client;
}

test('realtime endpoint: the connect hook names the user; subscribe and publish hooks refuse with their reason and rewrite', async () => {
  const token = mint({ subscribe: ['guarded'], publish: ['guarded'] }, SECRET);
  const alice = await realtimeClient(token);
  assert.match(alice.welcome.data.user, /^guest-[0-9a-f]{8}$/);
  const bob = await realtimeClient(token);
  const topic = channel('guarded', 'rt');
  const refused = alice.waitFor('priv/errors.error', { timeout: 5000 });
  alice.subscribeRemoteTopic(`${topic}/denied`);
  const [denied] = await refused;
  assert.equal(denied.data.code, 'denied');
  assert.match(denied.data.message, /^no entry to guarded\/.*\/denied$/);
  const acked = bob.waitFor('priv/acks.subscribed', { timeout: 5000, filter: (m) => m.data.topic === topic });
  bob.subscribeRemoteTopic(topic);
  await acked;
  const received = [];
  bob.on(`${topic}.chat`, (message) => received.push(message.data.payload));
  alice.publish(topic, 'shout it', { messageType: 'chat' });
  const banned = alice.waitFor('priv/errors.error', { timeout: 5000 });
  alice.publish(topic, 'a banned word', { messageType: 'chat' });
  const [error] = await banned;
  assert.deepEqual([error.data.code, error.data.message], ['denied', 'that word is not allowed here']);
  alice.publish(topic, 'after', { messageType: 'chat' });
  await until('bob gets two', () => received.length >= 2);
  assert.deepEqual(received, ['SHOUT IT', 'after']);
  const denyConnect = await raw(`/realtime?access_token=${token}`, { 'x-hook': 'deny' });
  assert.equal(denyConnect.status, 403);
  assert.match(denyConnect.body, /the connect hook says no/);
});
