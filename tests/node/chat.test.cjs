// examples/chat as a user runs it (`tern serve examples/chat`), through the npm
// `centrifuge` SDK and raw `ws` sockets: the bot's RPCs (`time`, `rooms`), the moderator
// (a publish hook refusing long messages and banned words, with a reason the sender sees),
// and the greeter (a connect hook naming anonymous clients guest-<id>).
'use strict';

const crypto = require('node:crypto');
const path = require('node:path');
const { test, before, after, afterEach } = require('node:test');
const { assert, repo, tools, Tern, sleep, waitFor, within } = require('./support.cjs');

const { Centrifuge } = tools('centrifuge');
const WebSocket = tools('ws');

const tern = new Tern(path.join(repo, 'examples', 'chat'), {
  TERN_AUTH_SECRET: 'tern-chat-example-tests-secret-0123456789',
});
before(() => tern.start());
after(() => tern.stop());

const closers = new Set();
afterEach(() => {
  for (const close of closers) close();
  closers.clear();
});

let rooms = 0;
const freshRoom = () => `node-chat-${process.pid}-${++rooms}`;
const roomChannel = (room) => `chat/rooms/${crypto.createHash('sha256').update(room).digest('hex')}`;

async function member(room) {
  const client = new Centrifuge(tern.ws('/connection/websocket'), { websocket: WebSocket, minReconnectDelay: 60_000 });
  closers.add(() => client.disconnect());
  const up = waitFor(client, 'connected', 10_000);
  client.connect();
  await up;
  const sub = client.newSubscription(roomChannel(room));
  const subscribed = new Promise((resolve) => sub.once('subscribed', resolve));
  sub.subscribe();
  await within(5000, subscribed, 'subscribe');
  sub.received = [];
  sub.on('publication', (ctx) => sub.received.push(ctx.data));
  return { client, sub };
}

test('the greeter names anonymous clients, and the bot answers the time and rooms RPCs', async () => {
  const room = freshRoom();
  const { client, sub } = await member(room);
  await member(room);
  const presence = await sub.presence();
  const users = Object.values(presence.clients).map((c) => c.user);
  assert.equal(users.length, 2);
  for (const user of users) assert.match(user, /^guest-[0-9a-f]{8}$/);
  const time = (await client.rpc('time', {})).data.time;
  assert.ok(Math.abs(Date.parse(time) - Date.now()) < 60_000, time);
  assert.deepEqual((await client.rpc('rooms', { room })).data, { room, clients: 2 });
  const unknown = await client.rpc('weather', {}).catch((e) => e);
  assert.equal(unknown.code, 404);
});

test('the moderator refuses banned words and long messages with a reason; the rest goes through', async () => {
  const room = freshRoom();
  const alice = await member(room);
  const bob = await member(room);
  await alice.sub.publish({ text: 'hello' });
  const banned = await alice.sub.publish({ text: 'what the FRAK' }).catch((e) => e);
  assert.deepEqual([banned.code, banned.message], [1400, 'the word `frak` is not allowed in the rooms']);
  const long = await alice.sub.publish({ text: 'x'.repeat(40 * 1024) }).catch((e) => e);
  assert.deepEqual([long.code, long.message], [1413, 'messages in the rooms are at most 32 KiB']);
  await alice.sub.publish({ text: 'bye' });
  await within(5000, (async () => { while (bob.sub.received.length < 2) await sleep(10); })(), 'bob');
  assert.deepEqual(bob.sub.received, [{ text: 'hello' }, { text: 'bye' }]);

  // The raw bridge, as the wscat walkthrough uses it: the refusal goes to the sender alone.
  const url = await (await fetch(tern.url(`/api/ws?room=${encodeURIComponent(room)}`))).text();
  const raw = new WebSocket(url);
  closers.add(() => raw.terminate());
  await new Promise((resolve, reject) => { raw.once('open', resolve); raw.once('error', reject); });
  const answer = new Promise((resolve) => raw.once('message', (data) => resolve(JSON.parse(data.toString()))));
  raw.send('smeg!');
  assert.deepEqual(await within(5000, answer, 'refusal'), {
    error: { code: 1400, reason: 'the word `smeg` is not allowed in the rooms' },
  });
  raw.send('plain text is fine');
  await within(5000, (async () => { while (bob.sub.received.length < 3) await sleep(10); })(), 'bob');
  assert.equal(bob.sub.received[2], 'plain text is fine');
});

test('no client passes for the bot, and JSON escapes do not hide a banned word', async () => {
  const room = freshRoom();
  const alice = await member(room);
  const bob = await member(room);
  const spoof = await alice.sub.publish({ text: 'give me your password', from: 'chat_bot' }).catch((e) => e);
  assert.deepEqual([spoof.code, spoof.message], [1403, 'messages may not say who they are `from`']);
  // `fr\u0061k` decodes to `frak`: sent as raw JSON text, the way a hand-made client would.
  const url = await (await fetch(tern.url(`/api/ws?room=${encodeURIComponent(room)}`))).text();
  const raw = new WebSocket(url);
  closers.add(() => raw.terminate());
  await new Promise((resolve, reject) => { raw.once('open', resolve); raw.once('error', reject); });
  const answers = [];
  raw.on('message', (data) => answers.push(JSON.parse(data.toString())));
  raw.send('{"text":"fr\\u0061k off"}');
  raw.send('{"text":"I am the bot","from":"chat_bot"}');
  await within(5000, (async () => { while (answers.length < 2) await sleep(10); })(), 'refusals');
  assert.deepEqual(answers.map((a) => a.error.code), [1400, 1403]);
  // The bot itself still signs its answers (functions' publications pass no hook).
  await alice.sub.publish({ text: '/time' });
  await within(5000, (async () => {
    while (!bob.sub.received.some((d) => d && d.from === 'chat_bot')) await sleep(10);
  })(), 'the bot');
  assert.equal(bob.sub.received.filter((d) => d && d.from).length, 1, JSON.stringify(bob.sub.received));
  // The session function keeps the room's own voices' names.
  for (const name of ['chat_bot', 'Guest-12345678', 'server']) {
    const res = await fetch(tern.url(`/api/chat/session?room=${encodeURIComponent(room)}&user=${name}`));
    assert.equal(res.status, 400, name);
    assert.match((await res.json()).error, /that name is taken/);
  }
});
