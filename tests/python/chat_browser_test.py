"""The chat page of examples/chat in two real headless Chromium sessions (Debian's
`chromium` and `chromium-driver`, driven by Selenium from PyPI) against the real binary:
both join a room, see each other's messages and who is there, the second sees the history
on arrival, the bot answers `/time`, the moderator's refusal reaches only its sender, markup
in a message stays text, and after the second page's socket is cut (a TCP proxy in this
file, between that browser and tern) and restored, no message is lost. A page from another
origin cannot open a WebSocket to tern. A screenshot lands in target/artifacts/.
"""

import http.server
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import unittest
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from support import REPO, Tern

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SECRET = "tern-browser-tests-secret-0123456789abcdef"
SCREENSHOT = REPO / "target" / "artifacts" / "chat-browser.png"
# Without the background-networking flags Chromium keeps dialling Google's hosts, which
# this closed network refuses; a fresh profile per session keeps the two apart.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1100,800",
]


class CuttableProxy:
    """A TCP proxy on an ephemeral loopback port to `upstream`: `cut()` closes every
    connection through it and refuses new ones until `restore()`, as a dropped network does."""

    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down = threading.Event()
        self.lock = threading.Lock()
        self.open = set()
        self.refused = 0
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                self.refused += 1
                abort(client)
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                abort(client)
                continue
            with self.lock:
                self.open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self.lock:
                for s in (source, sink):
                    if s in self.open:
                        self.open.discard(s)
                        s.close()

    def cut(self):
        self.down.set()
        with self.lock:
            sockets = list(self.open)
        for s in sockets:
            abort(s)

    def restore(self):
        self.down.clear()

    def close(self):
        self.closing = True
        self.cut()
        self.listener.close()


def abort(sock: socket.socket):
    """Closes `sock` with a reset, as a network failure does (no orderly close)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def quiet_files(directory: str):
    """A static file handler for `directory` that keeps its request log to itself."""

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=directory, **kwargs)

        def log_message(self, *args):
            pass

    return Files


def chromium(profile: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


MESSAGES_JS = """
return [...document.querySelectorAll('#messages li')].map(li => ({
  offset: Number(li.dataset.offset || 0),
  author: li.dataset.author || '',
  text: (li.querySelector('.text') || li).textContent,
  classes: li.className,
}));
"""


class Page:
    """One browser on the chat page, read through what a user sees."""

    def __init__(self, name: str, driver: webdriver.Chrome, tern: Tern):
        self.name = name
        self.driver = driver
        self.tern = tern

    def wait(self, what: str, condition, seconds: float = 20):
        try:
            return WebDriverWait(self.driver, seconds, poll_frequency=0.1).until(lambda _: condition())
        except TimeoutException:
            logs = "".join(f"  {e['level']} {e['message']}\n" for e in self.console())
            raise AssertionError(
                f"{self.name}: {what} within {seconds} s; the page shows state "
                f"{self.state()!r}, notice {self.notice()!r}, people {self.people()}, "
                f"messages {self.messages()}\n--- console ---\n{logs}{self.tern.tail()}"
            ) from None

    def console(self):
        try:
            return self.driver.get_log("browser")
        except Exception:  # not every driver keeps the console
            return []

    def open(self, url: str, room: str, user: str):
        self.driver.get(url)
        room_input = self.driver.find_element(By.ID, "room")
        room_input.clear()
        room_input.send_keys(room)
        self.driver.find_element(By.ID, "user").send_keys(user)
        self.driver.find_element(By.ID, "join-button").click()
        self.wait("connected", lambda: self.state() == "connected")
        self.wait("subscribed (send enabled)", lambda: self.driver.find_element(By.ID, "send").is_enabled())

    def say(self, text: str):
        box = self.driver.find_element(By.ID, "text")
        box.send_keys(text)
        self.driver.find_element(By.ID, "send").click()

    def state(self) -> str:
        return self.driver.find_element(By.ID, "state").get_attribute("data-state")

    def notice(self) -> str:
        return self.driver.find_element(By.ID, "notice").text

    def people(self) -> list:
        return [li.get_attribute("data-user") for li in self.driver.find_elements(By.CSS_SELECTOR, "#people li")]

    def messages(self) -> list:
        return self.driver.execute_script(MESSAGES_JS)

    def texts(self) -> list:
        return [m["text"] for m in self.messages() if "refused" not in m["classes"]]

    def wait_for_text(self, text: str, seconds: float = 20):
        self.wait(f"message {text!r}", lambda: text in self.texts(), seconds)


class ChatInTwoBrowsers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for path in (CHROMIUM, CHROMEDRIVER):
            if not os.access(path, os.X_OK):
                raise AssertionError(f"{path} is missing: run scripts/setup.sh (apt chromium chromium-driver)")
        vendor = REPO / "examples" / "chat" / "site" / "vendor" / "centrifuge.js"
        if not vendor.is_file():
            raise AssertionError(f"{vendor} is missing: run scripts/setup.sh (it vendors the npm client)")
        os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not fetch a driver
        cls.tern = Tern(str(REPO / "examples" / "chat"), {"TERN_AUTH_SECRET": SECRET})
        cls.proxy = CuttableProxy(cls.tern.port)
        cls.profiles = [tempfile.mkdtemp(prefix="tern-chromium-") for _ in range(2)]
        cls.drivers = []
        try:
            for profile in cls.profiles:
                cls.drivers.append(chromium(profile))
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for driver in cls.drivers:
            try:
                driver.quit()
            except Exception:
                pass
        cls.proxy.close()
        cls.tern.stop()
        for profile in cls.profiles:
            shutil.rmtree(profile, ignore_errors=True)

    def test_two_pages_chat_see_history_presence_and_the_bot_and_lose_nothing_to_a_cut(self):
        room = f"browser room {os.getpid()}"
        direct = f"http://127.0.0.1:{self.tern.port}/"
        through_proxy = f"http://127.0.0.1:{self.proxy.port}/"
        alice = Page("alice", self.drivers[0], self.tern)
        bob = Page("bob", self.drivers[1], self.tern)

        alice.open(direct, room, "alice")
        sent = [f"alice's message {i} before bob came" for i in range(3)]
        for text in sent:
            alice.say(text)
        for text in sent:
            alice.wait_for_text(text)

        # Bob's page goes through the proxy: its HTTP requests and its WebSocket.
        bob.open(through_proxy, room, "bob")
        bob.wait("alice's earlier messages from history", lambda: all(t in bob.texts() for t in sent))
        history = [m for m in bob.messages() if m["text"] in sent]
        self.assertTrue(all("history" in m["classes"] for m in history), history)
        self.assertEqual([m["author"] for m in history], ["alice"] * 3)
        for page in (alice, bob):
            page.wait("both in the presence list", lambda p=page: sorted(p.people()) == ["alice", "bob"])

        bob.say("hello alice, bob here")
        alice.wait_for_text("hello alice, bob here")
        sent.append("hello alice, bob here")
        self.assertEqual(alice.messages()[-1]["author"], "bob")

        alice.say("/time")
        sent.append("/time")
        rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        for page in (alice, bob):
            page.wait("the bot's answer to /time", lambda p=page: any(
                m["author"] == "chat_bot" and rfc3339.match(m["text"]) for m in p.messages()))

        # The moderator refuses a banned word: only the sender is told.
        bob.say("what the smeg")
        bob.wait("the refusal shown to bob", lambda: any("refused" in m["classes"] for m in bob.messages()))
        refusal = [m for m in bob.messages() if "refused" in m["classes"]][0]
        self.assertIn("smeg", refusal["text"])
        self.assertIn("not allowed", refusal["text"])

        # Markup in a message is text on the other page, never HTML.
        markup = '<img src=x onerror="window.pwned=1"><b>bold?</b>'
        alice.say(markup)
        sent.append(markup)
        bob.wait_for_text(markup)
        self.assertIsNone(bob.driver.execute_script("return window.pwned"))
        self.assertEqual(bob.driver.find_elements(By.CSS_SELECTOR, "#messages img, #messages b"), [])

        # The network drops under bob: alice goes on talking; bob's page reconnects through
        # the proxy once it is back and recovers what it missed.
        self.proxy.cut()
        bob.wait("the page noticing the drop", lambda: bob.state() != "connected")
        during = [f"alice while bob was away {i}" for i in range(5)]
        for text in during:
            alice.say(text)
            time.sleep(0.2)
        for text in during:
            alice.wait_for_text(text)
        sent.extend(during)
        time.sleep(1.5)
        self.assertGreater(self.proxy.refused, 0, "bob's page tried to reconnect while the network was down")
        self.assertNotEqual(bob.state(), "connected")
        self.proxy.restore()
        bob.wait("reconnected", lambda: bob.state() == "connected", 30)
        bob.wait("every message alice sent while bob was away", lambda: all(t in bob.texts() for t in during))
        arrival = bob.driver.execute_script("return document.body.dataset.arrival")
        self.assertEqual(arrival, "recovered", "the missed messages came by recovery, not a history reload")

        bob.say("bob is back")
        sent.append("bob is back")
        alice.wait_for_text("bob is back")
        bob.wait_for_text("bob is back")

        # Nothing lost, nothing doubled: both pages hold the same messages, in the same order,
        # each once, and every message sent is among them.
        def room_messages(page):
            return [(m["offset"], m["author"], m["text"]) for m in page.messages() if "refused" not in m["classes"]]

        mine, theirs = room_messages(alice), room_messages(bob)
        self.assertEqual(mine, theirs)
        offsets = [m[0] for m in mine]
        self.assertEqual(offsets, sorted(set(offsets)), "offsets in order, each once")
        users = [m[2] for m in mine if m[1] != "chat_bot"]
        self.assertEqual(sorted(users), sorted(sent), "every message sent arrived once")
        self.assertEqual(len(mine), len(sent) + 1, "the messages and the bot's one answer")
        self.assertEqual(sorted(bob.people()), ["alice", "bob"])

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        bob.driver.save_screenshot(str(SCREENSHOT))
        print(f"\nscreenshot: {SCREENSHOT}")

    def test_a_guest_is_named_by_the_greeter_and_a_bad_name_is_explained(self):
        page = Page("guest", self.drivers[1], self.tern)
        page.driver.get(f"http://127.0.0.1:{self.tern.port}/?room=guests-{os.getpid()}")
        self.assertEqual(page.driver.find_element(By.ID, "room").get_attribute("value"), f"guests-{os.getpid()}")
        page.driver.find_element(By.ID, "user").send_keys("<b>x</b>")
        page.driver.find_element(By.ID, "join-button").click()
        page.wait("the function's refusal shown", lambda: "user must be" in page.notice())
        self.assertEqual(page.state(), "disconnected")
        page.driver.find_element(By.ID, "user").clear()
        page.driver.find_element(By.ID, "join-button").click()
        page.wait("connected as a guest", lambda: page.state() == "connected")
        page.wait("named guest-<id> in the presence list", lambda: len(page.people()) == 1)
        self.assertRegex(page.people()[0], r"^guest-[0-9a-zA-Z-]{8}$")
        page.say("a guest's hello")
        page.wait_for_text("a guest's hello")
        self.assertEqual(page.messages()[-1]["author"], page.people()[0])

    def test_a_page_from_another_origin_cannot_open_a_websocket(self):
        page_dir = tempfile.mkdtemp(prefix="tern-other-origin-")
        Path(page_dir, "index.html").write_text("<!doctype html><title>another site</title>")
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), quiet_files(page_dir))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            driver = self.drivers[0]
            attempt = """
              const [url, done] = [arguments[0], arguments[arguments.length - 1]];
              const ws = new WebSocket(url);
              ws.onopen = () => { ws.close(); done('open'); };
              ws.onerror = () => done('refused');
            """
            endpoint = f"ws://127.0.0.1:{self.tern.port}/connection/websocket"
            driver.set_script_timeout(15)
            driver.get(f"http://127.0.0.1:{server.server_address[1]}/index.html")
            self.assertEqual(driver.execute_async_script(attempt, endpoint), "refused", "another origin")
            driver.get(f"http://127.0.0.1:{self.tern.port}/")
            self.assertEqual(driver.execute_async_script(attempt, endpoint), "open", "tern's own page")
            other = f"http://127.0.0.1:{server.server_address[1]}"
            deadline = time.time() + 5
            while time.time() < deadline and not any(other in line for line in self.tern.logs):
                time.sleep(0.1)
            self.assertTrue(
                any(f"origin `{other}`" in line for line in self.tern.logs),
                f"tern logs the refused origin{self.tern.tail()}",
            )
        finally:
            server.shutdown()
            server.server_close()
            shutil.rmtree(page_dir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
