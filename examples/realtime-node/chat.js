#!/usr/bin/env node
// A command-line chat on tern's /realtime endpoint, written against the npm client
// `realtime-pubsub-client` (the same code works against any Realtime Pub/Sub server).
//
//   node examples/realtime-node/chat.js [ROOM] [TERN_URL]
//
// ROOM defaults to `tau`, TERN_URL to http://127.0.0.1:8080 (a `tern serve examples/chat`
// started with TERN_AUTH_SECRET set). Type a line to say it in the room; `/echo TEXT` sends
// TEXT to the backend (the wasm function rt_backend answers it); Ctrl-D quits.
'use strict';

const crypto = require('node:crypto');
const path = require('node:path');
const readline = require('node:readline');
const { createRequire } = require('node:module');

// The modules come from tools/node_modules (`cd tools && npm install`), or from wherever
// NODE_PATH points.
function load(name) {
  try {
    return createRequire(path.join(__dirname, '..', '..', 'tools', 'package.json'))(name);
  } catch {
    return require(name);
  }
}
const { RealtimeClient } = load('realtime-pubsub-client');
const WebSocket = load('ws'); // Node 20 has no global WebSocket

const room = process.argv[2] || 'tau';
const base = (process.argv[3] || process.env.TERN_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (line) => process.stdout.write(`${line}\n`);

// Asked on every (re)connection: the app hands out a URL carrying a fresh token for the
// room (GET /api/ws?room=R&protocol=realtime, the function get_websocket_url). It retries
// rather than fail, so the client keeps reconnecting while tern is down.
async function urlProvider() {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const query = `room=${encodeURIComponent(room)}&protocol=realtime`;
      const resp = await fetch(`${base}/api/ws?${query}`, { signal: AbortSignal.timeout(5000) });
      const body = await resp.text();
      if (resp.ok) return body.trim();
      say(`* ${base}/api/ws answered ${resp.status}: ${body.trim()}`);
    } catch (e) {
      if (attempt === 1) say(`* cannot reach ${base} (${e.cause?.code || e.message}); retrying...`);
    }
    await sleep(Math.min(5000, 500 * attempt));
  }
}

const client = new RealtimeClient({
  websocketOptions: {
    WebSocket,
    urlProvider,
    minReconnectionDelay: 500,
    maxReconnectionDelay: 5000,
  },
});

// The room's channel, as the chat example names it: chat/rooms/<sha256 hex of ROOM>.
const topic = `chat/rooms/${crypto.createHash('sha256').update(room).digest('hex')}`;
let me = null;
let quitting = false;

client.on('error', () => {}); // `close` below says what matters
client.on('close', (event) => {
  if (me && !quitting) say(`* disconnected (${event.code}), reconnecting...`);
  me = null;
});
client.on('session.started', (connection) => {
  me = connection.id;
  say(`* connected to room ${room} as ${me}`);
  // Subscribe here, so the subscription comes back after every reconnection.
  client.subscribeRemoteTopic(topic);
});
// Everything said in the room: `text-message` from realtime clients (like this one),
// `message` from raw WebSocket clients (wscat) and functions (the chat bot's /time, /rooms).
client.on(`${topic}.text-message`, (msg) => say(`[${msg.data.client?.connectionId ?? "?"}] ${text(msg)}`));
client.on(`${topic}.message`, (msg) => say(`[${msg.data.client?.connectionId ?? 'room'}] ${text(msg)}`));
client.on('priv/errors.error', (message) => say(`* error: ${message.data.code}: ${message.data.message}`));

function text(message) {
  const { payload } = message.data;
  return typeof payload === 'string' ? payload : JSON.stringify(payload);
}

async function handle(line) {
  if (line.startsWith('/echo ')) {
    // send(): a message to the backend, answered by whoever handles `echo` (rt_backend).
    const [reply] = await client.send(line.slice(6), { messageType: 'echo' }).waitForReply(5000);
    say(`* backend replied (${reply.status}): ${JSON.stringify(reply.data)}`);
  } else if (line.trim() !== '') {
    // publish(): to everyone in the room (raw clients get the text as is).
    await client.publish(topic, line, { messageType: 'text-message' }).waitForAck(5000);
  }
}

async function main() {
  const subscribed = client.waitFor('priv/acks.subscribed', { timeout: 30_000 });
  await client.connect();
  await subscribed;
  say('* type a line to say it, /echo TEXT to ask the backend, Ctrl-D to quit');
  for await (const line of readline.createInterface({ input: process.stdin })) {
    try {
      await handle(line);
    } catch (e) {
      say(`* no answer in time (${e.message || e})`);
    }
  }
  await sleep(200); // the last replies from the room
  quitting = true;
  client.disconnect();
}

main().catch((e) => {
  say(`* ${e.message || e}`);
  quitting = true;
  client.disconnect();
  process.exitCode = 1;
});
