"""The server API (Centrifugo's HTTP API) through the PyPI `cent` client, unmodified,
against the real `tern` binary, with a real client SDK (`centrifuge-python`) on the other
side of every call: publish, broadcast, subscribe, unsubscribe, disconnect, presence,
presence_stats, history, history_remove, channels, info; and wrong, missing and
under-privileged keys.

Run from the repository root with the project's virtual environment:
`tools/venv/bin/python -m unittest discover -s tests/python -p '*_test.py'`
(tests/e2e/python_clients.rs does it as part of `cargo test`). `TERN_BIN` picks the binary.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import unittest

import requests
from cent import (
    BroadcastRequest,
    ChannelsRequest,
    Client as Cent,
    DisconnectRequest,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    SubscribeRequest,
    UnsubscribeRequest,
)
from cent.dto import Disconnect
from cent.exceptions import CentApiResponseError, CentUnauthorizedError
from centrifuge import Client as Centrifuge, ClientEventHandler, SubscriptionEventHandler

from support import Tern, write_project

SECRET = "tern-python-tests-secret-0123456789abcdef"
FULL_KEY = "full-access-api-key-0123456789"
NEWS_KEY = "news-publisher-api-key-0123456789"

PROJECT = {
    "tern.yaml": "centrifuge:\n  allow_anonymous: true\napi:\n  keys_file: api-keys.yaml\n",
    "api-keys.yaml": (
        "keys:\n"
        f"  - name: news-publisher\n    key: {NEWS_KEY}\n"
        "    methods: [publish, history]\n    channels: [news]\n"
    ),
    "messaging/news.yaml": (
        "channel: { match: news }\nbridges: { websocket: { enable: true } }\n"
        "presence: true\nhistory: { size: 100, ttl: 10m }\nrecovery: true\n"
    ),
    "messaging/rooms.yaml": (
        "channel: { match: rooms }\nbridges: { websocket: { enable: true } }\npresence: true\n"
    ),
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(claims: dict) -> str:
    """An HS256 JWT signed with the host's secret (the header and claims as any library's)."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"exp": int(time.time()) + 3600, **claims}).encode())
    signature = hmac.new(SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64url(signature)}"


TERN = None


def setUpModule():
    global TERN
    TERN = Tern(write_project(PROJECT), {"TERN_AUTH_SECRET": SECRET, "TERN_API_KEY": FULL_KEY})


def tearDownModule():
    TERN.stop()


class Events(ClientEventHandler):
    """Records a client's server-side subscriptions, publications and disconnects."""

    def __init__(self):
        self.subscribed = asyncio.Queue()
        self.unsubscribed = asyncio.Queue()
        self.publications = asyncio.Queue()
        self.disconnected = asyncio.Queue()

    async def on_subscribed(self, ctx):
        await self.subscribed.put(ctx.channel)

    async def on_unsubscribed(self, ctx):
        await self.unsubscribed.put(ctx.channel)

    async def on_publication(self, ctx):
        await self.publications.put((ctx.channel, ctx.pub.data))

    async def on_disconnected(self, ctx):
        await self.disconnected.put((ctx.code, ctx.reason))


class SubEvents(SubscriptionEventHandler):
    def __init__(self):
        self.publications = asyncio.Queue()

    async def on_publication(self, ctx):
        await self.publications.put(ctx.pub.data)


unique = iter(range(1, 1_000_000))


def channel(kind: str, label: str) -> str:
    return f"{kind}/{label}-{os.getpid()}-{next(unique)}"


async def call(api: Cent, request):
    """A blocking `cent` call, off the event loop the SDK client runs on."""
    return await asyncio.to_thread(api._send, request)


async def get(queue: asyncio.Queue, what: str, seconds: float = 5):
    try:
        return await asyncio.wait_for(queue.get(), seconds)
    except asyncio.TimeoutError:
        raise AssertionError(f"{what}: nothing within {seconds} s{TERN.tail()}") from None


class ServerApi(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.api = Cent(f"http://127.0.0.1:{TERN.port}/api", FULL_KEY)
        self.events = Events()
        self.user = f"ada-{next(unique)}"
        self.client = Centrifuge(
            f"ws://127.0.0.1:{TERN.port}/connection/websocket",
            events=self.events,
            token=token({"sub": self.user}),
            min_reconnect_delay=60,
        )
        await self.client.connect()
        await self.client.ready(5)

    async def asyncTearDown(self):
        await self.client.disconnect()

    async def subscribed(self, name: str):
        events = SubEvents()
        sub = self.client.new_subscription(name, events=events)
        await sub.subscribe()
        await sub.ready(5)
        return sub, events

    async def test_publish_reaches_subscribers_and_history_keeps_it(self):
        name = channel("news", "pub")
        _, events = await self.subscribed(name)
        first = await call(self.api, PublishRequest(channel=name, data={"n": 1}))
        second = await call(self.api, PublishRequest(channel=name, data={"n": 2}))
        self.assertEqual(second.offset, first.offset + 1)
        self.assertTrue(first.epoch)
        self.assertEqual(await get(events.publications, "publication 1"), {"n": 1})
        self.assertEqual(await get(events.publications, "publication 2"), {"n": 2})
        history = await call(self.api, HistoryRequest(channel=name, limit=10))
        self.assertEqual([p.data for p in history.publications], [{"n": 1}, {"n": 2}])
        self.assertEqual(history.offset, second.offset)
        latest = await call(self.api, HistoryRequest(channel=name, limit=1, reverse=True))
        self.assertEqual([p.data for p in latest.publications], [{"n": 2}])
        await call(self.api, HistoryRemoveRequest(channel=name))
        emptied = await call(self.api, HistoryRequest(channel=name, limit=10))
        self.assertEqual(emptied.publications, [])
        self.assertEqual(emptied.offset, second.offset, "the position survives history_remove")

    async def test_broadcast_publishes_to_each_channel_and_reports_each_failure(self):
        a, b = channel("news", "ba"), channel("rooms", "bb")
        (_, ea), (_, eb) = await self.subscribed(a), await self.subscribed(b)
        result = await call(self.api, BroadcastRequest(channels=[a, b, "nowhere/x"], data="hi"))
        self.assertEqual(len(result.responses), 3)
        self.assertIsNone(result.responses[0].error)
        self.assertGreater(result.responses[0].result.offset, 0)
        self.assertIsNone(result.responses[1].error)
        self.assertEqual(result.responses[2].error.code, 102)
        self.assertEqual(await get(ea.publications, "broadcast a"), "hi")
        self.assertEqual(await get(eb.publications, "broadcast b"), "hi")

    async def test_presence_stats_channels_and_info_see_the_client(self):
        name = channel("rooms", "who")
        await self.subscribed(name)
        presence = await call(self.api, PresenceRequest(channel=name))
        self.assertEqual([c.user for c in presence.presence.values()], [self.user])
        stats = await call(self.api, PresenceStatsRequest(channel=name))
        self.assertEqual((stats.num_clients, stats.num_users), (1, 1))
        channels = await call(self.api, ChannelsRequest(pattern="rooms/who-*"))
        self.assertIn(name, channels.channels)
        self.assertEqual(channels.channels[name].num_clients, 1)
        info = await call(self.api, InfoRequest())
        self.assertEqual(len(info.nodes), 1)
        self.assertGreaterEqual(info.nodes[0].num_clients, 1)
        self.assertGreaterEqual(info.nodes[0].num_channels, 1)
        with self.assertRaises(CentApiResponseError) as e:
            await call(self.api, HistoryRequest(channel=name, limit=1))
        self.assertEqual(e.exception.code, 108, "rooms keep no history")

    async def test_subscribe_unsubscribe_and_disconnect_act_on_the_users_sessions(self):
        name = channel("rooms", "server-side")
        await call(self.api, SubscribeRequest(user=self.user, channel=name))
        self.assertEqual(await get(self.events.subscribed, "server-side subscribe"), name)
        await call(self.api, PublishRequest(channel=name, data={"to": "you"}))
        self.assertEqual(await get(self.events.publications, "server-side publication"), (name, {"to": "you"}))
        await call(self.api, UnsubscribeRequest(user=self.user, channel=name))
        self.assertEqual(await get(self.events.unsubscribed, "server-side unsubscribe"), name)
        await call(self.api, SubscribeRequest(user="nobody-online", channel=name))
        await call(
            self.api,
            DisconnectRequest(user=self.user, disconnect=Disconnect(code=4501, reason="bye from the API")),
        )
        self.assertEqual(await get(self.events.disconnected, "disconnect"), (4501, "bye from the API"))

    async def test_wrong_missing_and_under_privileged_keys_are_refused(self):
        url = f"http://127.0.0.1:{TERN.port}/api"
        with self.assertRaises(CentUnauthorizedError):
            await call(Cent(url, "not-a-key-of-this-host-0123"), InfoRequest())
        with self.assertRaises(CentUnauthorizedError):
            await call(Cent(url, ""), InfoRequest())
        plain = await asyncio.to_thread(requests.post, f"{url}/info", json={}, headers={"Authorization": f"apikey {FULL_KEY}"})
        self.assertEqual(plain.status_code, 200, "Authorization: apikey works as X-API-Key does")
        news = Cent(url, NEWS_KEY)
        name = channel("news", "limited")
        self.assertGreater((await call(news, PublishRequest(channel=name, data={}))).offset, 0)
        for request in [
            PublishRequest(channel=channel("rooms", "not-mine"), data={}),
            PresenceRequest(channel=name),
            DisconnectRequest(user=self.user),
            InfoRequest(),
        ]:
            with self.assertRaises(CentApiResponseError, msg=repr(request)) as e:
                await call(news, request)
            self.assertEqual(e.exception.code, 103, repr(request))
        self.assertEqual(self.client.state.value, "connected", "the refused disconnect did nothing")

    async def test_malformed_requests_get_error_107_and_the_host_keeps_serving(self):
        url = f"http://127.0.0.1:{TERN.port}/api"
        headers = {"X-API-Key": FULL_KEY}
        for method, body in [
            ("publish", b"{not json"),
            ("publish", b"[1, 2]"),
            ("publish", json.dumps({"data": {}}).encode()),
            ("publish", json.dumps({"channel": "bad//name", "data": {}}).encode()),
            ("history", json.dumps({"channel": 7}).encode()),
            ("disconnect", json.dumps({"user": "x", "disconnect": {"code": 1000}}).encode()),
            ("publish", json.dumps({"channel": "news/x", "b64data": "%%%"}).encode()),
            ("publish", json.dumps({"channel": "news/x", "data": "x" * (70 * 1024 * 1024 // 64)}).encode()),
        ]:
            res = await asyncio.to_thread(requests.post, f"{url}/{method}", data=body, headers=headers)
            self.assertEqual(res.status_code, 200, body[:80])
            self.assertEqual(res.json()["error"]["code"], 107, (body[:80], res.text[:200]))
        res = await asyncio.to_thread(requests.get, f"{url}/publish", headers=headers)
        self.assertEqual(res.status_code, 405)
        name = channel("news", "after")
        _, events = await self.subscribed(name)
        await call(self.api, PublishRequest(channel=name, data={"still": "serving"}))
        self.assertEqual(await get(events.publications, "after the malformed ones"), {"still": "serving"})


if __name__ == "__main__":
    unittest.main()
