// Key rotation and public-key tokens, through the npm `centrifuge` SDK and `jsonwebtoken`
// against the real `tern` binary: tokens picked by their `kid` (the current secret, an
// old one still accepted, an RS256 and an ES256 public key, as an identity provider's),
// and the ones tern must refuse (unknown kid, another key's algorithm, a forged signature).
'use strict';

const crypto = require('node:crypto');
const { test, before, after, afterEach } = require('node:test');
const { assert, tools, writeProject, Tern, waitFor } = require('./support.cjs');

const { Centrifuge } = tools('centrifuge');
const WebSocket = tools('ws');
const jwt = tools('jsonwebtoken');

const SECRET = 'tern-tokens-tests-current-secret-0123456789';
const OLD_SECRET = 'tern-tokens-tests-old-secret-0123456789abc';
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherRsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = (key) => key.export({ type: 'spki', format: 'pem' });

const project = writeProject({
  'tern.yaml': `
auth:
  kid: current
  keys:
    - { kid: old, algorithm: HS256, file: old-secret }
    - { kid: idp-rsa, algorithm: RS256, file: idp-rsa.pem }
    - { kid: idp-ec, algorithm: ES256, file: idp-ec.pem }
`,
  'old-secret': OLD_SECRET,
  'idp-rsa.pem': pem(rsa.publicKey),
  'idp-ec.pem': pem(ec.publicKey),
  'messaging/chat.yaml': 'channel: { match: chat }\nbridges: { websocket: { enable: true } }\n',
});

const tern = new Tern(project, { TERN_AUTH_SECRET: SECRET });
before(() => tern.start());
after(() => tern.stop());

const clients = new Set();
afterEach(() => {
  for (const c of clients) c.disconnect();
  clients.clear();
});

const sign = (sub, key, algorithm, kid) =>
  jwt.sign({ sub }, key, { algorithm, expiresIn: 3600, ...(kid === undefined ? {} : { keyid: kid }) });

/** Connects with `token`: resolves with the user it connected as, or the close code. */
async function outcome(token) {
  const client = new Centrifuge(tern.ws('/connection/websocket'), { websocket: WebSocket, token, minReconnectDelay: 60_000 });
  clients.add(client);
  const result = Promise.race([
    waitFor(client, 'connected', 5000).then(() => ({ connected: true })),
    waitFor(client, 'disconnected', 5000).then((ctx) => ({ code: ctx.code })),
  ]);
  client.connect();
  const got = await result;
  if (got.connected) {
    // The connection is usable: a command is answered (no RPC handler here: 104).
    const answer = await client.rpc('x', {}).catch((e) => e);
    assert.equal(answer.code, 104);
  }
  return got;
}

test('tokens of the current secret, an old one, and RS256 and ES256 keys, each picked by kid', async () => {
  for (const [what, token] of [
    ['current, kid', sign('ada', SECRET, 'HS256', 'current')],
    ['current, no kid', sign('ada', SECRET, 'HS256')],
    ['old secret', sign('ada', OLD_SECRET, 'HS256', 'old')],
    ['RS256', sign('ada', rsa.privateKey, 'RS256', 'idp-rsa')],
    ['ES256', sign('ada', ec.privateKey, 'ES256', 'idp-ec')],
  ]) {
    assert.deepEqual(await outcome(token), { connected: true }, `${what}${tern.tail(2000)}`);
  }
});

test('an unknown kid, another key\'s algorithm, a forged signature and the old secret without its kid are refused', async () => {
  for (const [what, token] of [
    ['unknown kid', sign('eve', SECRET, 'HS256', 'nobody')],
    ['RS256 token naming the EC key', sign('eve', rsa.privateKey, 'RS256', 'idp-ec')],
    ['HS256 with the RSA public key as secret', sign('eve', pem(rsa.publicKey), 'HS256', 'idp-rsa')],
    ['another RSA key', sign('eve', otherRsa.privateKey, 'RS256', 'idp-rsa')],
    ['old secret, no kid', sign('eve', OLD_SECRET, 'HS256')],
  ]) {
    assert.deepEqual(await outcome(token), { code: 3500 }, what);
  }
  assert.ok(tern.alive());
});
