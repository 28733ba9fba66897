// The chat page: asks the chat_session function for a room's channel, WebSocket URL and
// token, then speaks the Centrifugo protocol with the `centrifuge` client (vendored at
// setup). Messages are kept by their offset in the room's history, so the same message
// arriving twice (from history, from recovery after a reconnect, live) is shown once.
"use strict";

const HISTORY_ON_ARRIVAL = 50;
// The most messages the page keeps on screen; older ones leave as new ones come.
const KEEP = 500;
const $ = (id) => document.getElementById(id);

/** What the page holds for the room it is in. */
const chat = {
  client: null,
  sub: null,
  session: null,
  byOffset: new Map(),
  people: new Map(),
};

function setState(state, label) {
  const el = $("state");
  el.dataset.state = state;
  el.textContent = label || state;
}

function notice(text) {
  const el = $("notice");
  el.textContent = text || "";
  el.hidden = !text;
}

/** Who wrote a publication, as the page shows it: the user of the publisher's connection
 * (a Centrifugo-protocol client's publication carries its info), else the bot when the
 * message says so (the moderator refuses `from` in clients' messages), else "server" for
 * other functions and the raw bridge's clients. */
function authorOf(ctx) {
  if (ctx.info && ctx.info.user) return { name: ctx.info.user, bot: false };
  if (ctx.data && typeof ctx.data === "object" && ctx.data.from === "chat_bot") return { name: "chat_bot", bot: true };
  return { name: ctx.info ? "anonymous" : "server", bot: false };
}

function textOf(data) {
  if (typeof data === "string") return data;
  if (data && typeof data === "object" && typeof data.text === "string") return data.text;
  return JSON.stringify(data);
}

/** Adds a publication to the list, in offset order, once. */
function showPublication(ctx, fromHistory) {
  const offset = Number(ctx.offset || 0);
  if (offset && chat.byOffset.has(offset)) return;
  const author = authorOf(ctx);
  const li = document.createElement("li");
  li.dataset.offset = String(offset);
  li.dataset.author = author.name;
  if (author.bot) li.classList.add("bot");
  if (fromHistory) li.classList.add("history");
  const who = document.createElement("span");
  who.className = "author";
  who.textContent = author.name;
  const text = document.createElement("span");
  text.className = "text";
  // textContent, never innerHTML: a message is text, whatever it contains.
  text.textContent = textOf(ctx.data);
  li.append(who, text);

  const list = $("messages");
  const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 30;
  let before = null;
  if (offset) {
    chat.byOffset.set(offset, li);
    for (const [other, el] of chat.byOffset) {
      if (other > offset && (!before || other < Number(before.dataset.offset))) before = el;
    }
  }
  list.insertBefore(li, before);
  while (list.children.length > KEEP) {
    const oldest = list.firstElementChild;
    chat.byOffset.delete(Number(oldest.dataset.offset));
    oldest.remove();
  }
  if (stick) list.scrollTop = list.scrollHeight;
}

function showRefused(text, reason) {
  const li = document.createElement("li");
  li.className = "refused";
  li.textContent = `not sent (${reason}): ${text}`;
  $("messages").append(li);
}

function showPeople() {
  const names = new Map();
  for (const user of chat.people.values()) names.set(user, (names.get(user) || 0) + 1);
  const list = $("people");
  list.replaceChildren(
    ...[...names.keys()].sort().map((name) => {
      const li = document.createElement("li");
      li.dataset.user = name;
      li.textContent = names.get(name) > 1 ? `${name} (${names.get(name)})` : name;
      return li;
    }),
  );
  $("people-count").textContent = String(names.size);
}

async function loadHistory() {
  const history = await chat.sub.history({ limit: HISTORY_ON_ARRIVAL, reverse: true });
  for (const pub of history.publications) showPublication(pub, true);
}

async function loadPresence() {
  const presence = await chat.sub.presence();
  chat.people = new Map(Object.values(presence.clients).map((c) => [c.client, c.user || "anonymous"]));
  showPeople();
}

async function fetchSession(room, user) {
  const query = new URLSearchParams({ room });
  if (user) query.set("user", user);
  const res = await fetch(`api/chat/session?${query}`, { cache: "no-store" });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch (_) {
    // An error page: shown as text below.
  }
  if (!res.ok || !body || !body.url) {
    const why = (body && (body.error || body.message)) || text || `HTTP ${res.status}`;
    throw new Error(`cannot join: ${why}`);
  }
  return body;
}

async function join(room, user) {
  const session = await fetchSession(room, user);
  chat.session = session;
  chat.byOffset.clear();
  chat.people.clear();
  $("messages").replaceChildren();
  showPeople();
  $("room-title").textContent = `# ${session.room}`;
  document.title = `${session.room} · tern chat`;

  const options = { minReconnectDelay: 250, maxReconnectDelay: 2000, timeout: 5000 };
  if (session.token) {
    options.token = session.token;
    // A token lasts an hour: a page left open asks for a new one when it runs out.
    options.getToken = async () => (await fetchSession(room, user)).token || "";
  }
  const client = new Centrifuge(session.url, options);
  client.on("connecting", (ctx) => setState("connecting", `connecting (${ctx.reason})`));
  client.on("connected", (ctx) => {
    setState("connected", `connected as ${session.user || "a guest"}`);
    client.myId = ctx.client;
    notice("");
  });
  client.on("disconnected", (ctx) => setState("disconnected", `disconnected (${ctx.reason})`));
  client.on("error", (ctx) => notice(`connection error: ${ctx.error && ctx.error.message}`));

  const sub = client.newSubscription(session.channel);
  sub.on("publication", (ctx) => showPublication(ctx, false));
  sub.on("join", (ctx) => {
    chat.people.set(ctx.info.client, ctx.info.user || "anonymous");
    showPeople();
  });
  sub.on("leave", (ctx) => {
    chat.people.delete(ctx.info.client);
    showPeople();
  });
  sub.on("subscribing", () => $("send").setAttribute("disabled", ""));
  sub.on("subscribed", async (ctx) => {
    $("send").removeAttribute("disabled");
    // What the last (re)subscription did, for whoever looks: `recovered`, `history`.
    document.body.dataset.arrival = ctx.wasRecovering && ctx.recovered ? "recovered" : "history";
    try {
      // On arrival, and after a reconnect the server could not recover, the room's last
      // messages come from history; a recovered reconnect delivered what was missed already.
      if (!ctx.wasRecovering || !ctx.recovered) await loadHistory();
      await loadPresence();
    } catch (e) {
      notice(`cannot load the room: ${e.message || e}`);
    }
  });
  sub.on("error", (ctx) => notice(`subscription error: ${ctx.error && ctx.error.message}`));

  chat.client = client;
  chat.sub = sub;
  sub.subscribe();
  client.connect();
  $("chat").hidden = false;
  $("room").disabled = $("user").disabled = true;
  $("join-button").hidden = true;
  $("leave-button").hidden = false;
  $("text").focus();
}

function leave() {
  if (chat.client) chat.client.disconnect();
  chat.client = null;
  chat.sub = null;
  $("chat").hidden = true;
  $("room").disabled = $("user").disabled = false;
  $("join-button").hidden = false;
  $("leave-button").hidden = true;
  setState("disconnected", "not connected");
}

$("join").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("join-button");
  button.disabled = true;
  notice("");
  try {
    await join($("room").value.trim(), $("user").value.trim());
    history.replaceState(null, "", `?room=${encodeURIComponent($("room").value.trim())}`);
  } catch (e) {
    notice(e.message || String(e));
  } finally {
    button.disabled = false;
  }
});

$("leave-button").addEventListener("click", leave);

$("compose").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("text");
  const text = input.value;
  if (!text.trim() || !chat.sub) return;
  input.value = "";
  try {
    await chat.sub.publish({ text });
  } catch (e) {
    // The moderator's refusal (or a lost connection): the sender is told, nothing is shown
    // to the room.
    showRefused(text, e.message || `error ${e.code}`);
  }
});

const asked = new URLSearchParams(location.search).get("room");
if (asked) $("room").value = asked;
