"""The scratch MediaWiki, the editgate it asks, and a client that acts as an editor."""

import html as html_module
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
EXTENSION = os.path.join(REPO, "clients", "mediawiki", "EditGate")
DEBIAN_MEDIAWIKI = "/usr/share/mediawiki"  # Debian 12's 1.39; --mediawiki DIR for another
WIKI_ID = "enwiki"  # the database name, so the shipped wikis/enwiki.toml applies
# A table prefix, as many wikis outside Wikimedia have: MediaWiki's own wiki id is then
# "enwiki-mw_", and the extension must still send the database name.
DB_PREFIX = "mw_"

TOR_EXIT = "162.247.74.201"  # in policies/lists/tor-exit-addresses.txt
VPN_ADDRESS = "2.26.157.10"  # in 2.26.157.0/24 of policies/lists/vpn.txt
CLEAN = "8.8.4.4"  # in no list
# In policies/lists/hard-blocks.txt: the locked `global-hard-block` (xff = true) refuses every
# account whose chain holds it. Sent as the untrusted part of a chain whose client is CLEAN.
HARD_BLOCKED = "203.0.113.7"
HARD_CHAIN = f"{HARD_BLOCKED}, {CLEAN}"
MARKUP_ADDRESS = "198.18.200.99"  # the rule added in test_policy_text_is_escaped
CAMPUS = "192.0.2.0/24"  # exempted by rules the tests add (the docs' example range, in no list)
TIMEOUT = 0.25  # $wgEditGateTimeout in these tests (the default)
# What MediaWiki may take beyond the timeout to answer when editgate does not: its own
# request handling, a few tens of milliseconds on an idle machine, more on a loaded CI host.
TIMEOUT_MARGIN = 0.75
PASSWORD = "Correct-horse-battery-9"
UNICODE_CHECK = "ℳ𝒲♥𝓊𝓃𝒾𝒸ℴ𝒹ℯ"  # EditPage::UNICODE_CHECK, sent by every browser form


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Wiki:
    """A scratch MediaWiki with the extension, and the editgate it asks."""

    def __init__(self, tmp, editgate_bin, mediawiki):
        self.tmp = tmp
        self.mediawiki = mediawiki
        self.version = re.search(r"MW_VERSION', '([^']+)'", open(f"{mediawiki}/includes/Defines.php").read()).group(1)
        self.editgate_bin = editgate_bin
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.policies = os.path.join(tmp, "policies")
        self.abusefilter = False
        self.log = os.path.join(tmp, "editgate-channel.log")
        self.deprecated = os.path.join(tmp, "deprecated.log")
        self.decisions = os.path.join(tmp, "decisions.jsonl")
        self.php = None
        self.editgate = None
        self.editgate_http = None
        self.editgate_socket = os.path.join(tmp, "editgate.sock")
        # The process groups started (each server in a session of its own).
        self.groups = set()
        self.frozen = False

    # --- setup ---------------------------------------------------------------------------

    def install(self):
        # The shipped policy, with editgate's decision log on: it records what each request
        # said (wiki, action, account kind), never the address.
        shutil.copytree(os.path.join(REPO, "policies"), self.policies)
        key = os.path.join(self.policies, "decision-log.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write("e2e-test-key-0123456789abcdef\n")
        with open(os.path.join(self.policies, "global.toml"), "a") as f:
            f.write(
                f'\n[settings.decision_log]\npath = "{self.decisions}"\n'
                'key_file = "decision-log.key"\n'
            )
        env = self.env()
        run(
            ["php", f"{self.mediawiki}/maintenance/install.php", "--dbtype", "sqlite",
             "--dbpath", os.path.join(self.tmp, "data"), "--dbname", WIKI_ID, "--dbprefix", DB_PREFIX,
             "--server", self.url, "--scriptpath", "", "--confpath", self.tmp,
             "--pass", PASSWORD, "EditGate e2e", "Admin"],
            env=env,
        )
        # MediaWiki's AbuseFilter for this release, from ../shared/third_party when present.
        major = re.search(r"MW_VERSION', '(\d+\.\d+)", open(f"{self.mediawiki}/includes/Defines.php").read()).group(1)
        archive = os.path.join(REPO, "..", "shared", "third_party", f"AbuseFilter-REL{major.replace('.', '_')}.tar.gz")
        self.abusefilter = os.path.exists(archive)
        af_load = ""
        if self.abusefilter:
            subprocess.run(["tar", "xzf", archive, "-C", self.tmp], check=True)
            af_load = f"wfLoadExtension( 'AbuseFilter', '{self.tmp}/AbuseFilter/extension.json' );\n"
        with open(os.path.join(self.tmp, "LocalSettings.php"), "a") as f:
            f.write(
                "\n" + af_load +
                "$wgCdnServersNoPurge = [ '127.0.0.1' ];\n"  # client IP from X-Forwarded-For
                "$wgRateLimits = [];\n"
                "$wgShowExceptionDetails = true;\n"
                f"$wgDebugLogGroups['EditGate'] = '{self.log}';\n"
                # Every deprecation MediaWiki notices, to fail on any from the extension.
                "$wgDevelopmentWarnings = true;\n"
                f"$wgDebugLogGroups['deprecated'] = '{self.deprecated}';\n"
                "require __DIR__ . '/EditGateTest.php';\n"
            )
        if self.abusefilter:
            # The extension must be loaded for update.php to create AbuseFilter's tables.
            self.configure()
            run(["php", f"{self.mediawiki}/maintenance/update.php", "--quick"], env=env)
        self.configure()

    def configure(self, enabled=True, fail_open=True, url=None, temp_accounts=False, errors_to=None, extra=(),
                  timeout=TIMEOUT, socket=None, extension=EXTENSION):
        """Rewrites the settings the tests vary (read on every request: no opcache delay).
        With `errors_to`, the EditGate channel logs only errors, to that file; `extra` lines
        are appended as they are."""
        lines = ["<?php"]
        if errors_to:
            lines.append(f"$wgDebugLogGroups['EditGate'] = [ 'destination' => '{errors_to}', 'level' => 'error' ];")
        if enabled:
            lines.append(f"wfLoadExtension( 'EditGate', '{extension}/extension.json' );")
            lines.append(f"$wgEditGateUrl = '{url or self.editgate_http or 'http://127.0.0.1:9'}';")
            lines.append(f"$wgEditGateTimeout = {timeout};")
            lines.append(f"$wgEditGateFailOpen = {'true' if fail_open else 'false'};")
            if socket:
                lines.append(f"$wgEditGateSocket = '{socket}';")
        if temp_accounts:
            lines.append("$wgAutoCreateTempUser['enabled'] = true;")
        lines.extend(extra)
        with open(os.path.join(self.tmp, "EditGateTest.php"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def create_user(self, name, *, sysop=False, registered_days_ago=None, edits=None):
        env = self.env()
        args = ["php", f"{self.mediawiki}/maintenance/createAndPromote.php"]
        if sysop:
            args.append("--sysop")
        run(args + [name, PASSWORD], env=env)
        sets = []
        if registered_days_ago is not None:
            ts = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() - registered_days_ago * 86400))
            sets.append(f"user_registration = '{ts}'")
        if edits is not None:
            sets.append(f"user_editcount = {int(edits)}")
        if sets:
            self.sql(f"UPDATE /*_*/user SET {', '.join(sets)} WHERE user_name = '{name}'")

    def env(self):
        """The environment of a maintenance script of this wiki."""
        return dict(os.environ, MW_CONFIG_FILE=os.path.join(self.tmp, "LocalSettings.php"))

    def sql(self, query):
        """Runs SQL on the wiki's database (sql.php prints "0 row(s)" on SQLite, but it applies)."""
        run(["php", f"{self.mediawiki}/maintenance/sql.php", "--query", query], env=self.env())

    # --- servers -------------------------------------------------------------------------

    def start_editgate(self):
        self.editgate = subprocess.Popen(
            [self.editgate_bin, "serve", "--policies", self.policies,
             "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--http-socket", self.editgate_socket],
            stdout=subprocess.PIPE, stderr=open(os.path.join(self.tmp, "editgate.stderr"), "ab"),
            text=True, start_new_session=True,
        )
        self.groups.add(self.editgate.pid)
        line = self.editgate.stdout.readline()
        m = re.search(r"and HTTP on (\S+)", line)
        if not m:
            raise RuntimeError(f"editgate did not start: {line!r}")
        self.editgate_http = f"http://{m.group(1)}"

    def stop_editgate(self):
        if self.editgate is None:
            return
        if self.frozen:
            self.editgate.send_signal(signal.SIGCONT)
            self.frozen = False
        stop_group(self.editgate)
        self.editgate = None

    def freeze_editgate(self, frozen):
        self.editgate.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)
        self.frozen = frozen

    def start_php(self):
        # Several workers, as a real web server has: a wiki whose $wgEditGateUrl points at
        # itself must get an answer (an HTML page), not wait on its own single worker.
        env = dict(self.env(), PHP_CLI_SERVER_WORKERS="4")
        self.php = subprocess.Popen(
            # opcache as in production; revalidate at once so configure() applies.
            ["php", "-d", "opcache.enable_cli=1", "-d", "opcache.revalidate_freq=0",
             "-S", f"127.0.0.1:{self.port}", "-t", self.mediawiki],
            env=env, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.tmp, "php.log"), "ab"),
            # Its own process group: `php -S` forks its workers, and stopping only the parent
            # once left them serving long after the suite.
            start_new_session=True,
        )
        self.groups.add(self.php.pid)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/api.php?action=query&format=json", timeout=5).read()
                return
            except OSError:
                if time.monotonic() > deadline or self.php.poll() is not None:
                    raise RuntimeError("php -S did not answer")
                time.sleep(0.1)

    def stop(self):
        """Stops both servers and every process they started; returns what outlived them
        (killed, but a failure of the suite)."""
        self.stop_editgate()
        if self.php is not None:
            stop_group(self.php)
            self.php = None
        return left_in(self.groups)

    # --- observations ----------------------------------------------------------------------

    def editgate_decisions(self):
        """editgate_decisions_total, summed over verdicts and rules."""
        body = urllib.request.urlopen(f"{self.editgate_http}/metrics", timeout=5).read().decode()
        return sum(float(l.split()[-1]) for l in body.splitlines() if l.startswith("editgate_decisions_total"))

    def editgate_probes(self):
        """editgate_probes_total."""
        body = urllib.request.urlopen(f"{self.editgate_http}/metrics", timeout=5).read().decode()
        return sum(float(l.split()[-1]) for l in body.splitlines() if l.startswith("editgate_probes_total"))

    def add_rule(self, rule, rule_id, probe_ip, probe_xff=None):
        """Appends `rule` to the policy and waits until editgate decides by it (it watches its
        policy directory)."""
        with open(os.path.join(self.policies, "global.toml"), "a") as f:
            f.write("\n" + rule)
        deadline = time.monotonic() + 15
        body = json.dumps({"ip": probe_ip, "forwardedFor": [probe_xff] if probe_xff else [], "wiki": WIKI_ID,
                           "probe": True, "account": {"kind": "ACCOUNT_KIND_ANONYMOUS"}}).encode()
        while time.monotonic() < deadline:
            req = urllib.request.Request(f"{self.editgate_http}/v1/check", data=body,
                                         headers={"Content-Type": "application/json"})
            if json.loads(urllib.request.urlopen(req, timeout=5).read()).get("ruleId") == rule_id:
                return
            time.sleep(0.2)
        raise AssertionError(f"editgate never decided by {rule_id}")

    def remove_rule(self, rule_id, probe_ip):
        """Removes a rule add_rule appended, and waits until editgate no longer decides by it."""
        path = os.path.join(self.policies, "global.toml")
        text = open(path).read()
        start = text.index(f'\n[[rule]]\nid = "{rule_id}"')
        end = text.find("\n[[rule]]", start + 1)
        with open(path, "w") as f:
            f.write(text[:start] + (text[end:] if end != -1 else "\n"))
        deadline = time.monotonic() + 15
        body = json.dumps({"ip": probe_ip, "wiki": WIKI_ID, "probe": True,
                           "account": {"kind": "ACCOUNT_KIND_ANONYMOUS"}}).encode()
        while time.monotonic() < deadline:
            req = urllib.request.Request(f"{self.editgate_http}/v1/check", data=body,
                                         headers={"Content-Type": "application/json"})
            if json.loads(urllib.request.urlopen(req, timeout=5).read()).get("ruleId") != rule_id:
                return
            time.sleep(0.2)
        raise AssertionError(f"editgate still decides by {rule_id}")

    def decision_log(self):
        """editgate's decision log lines so far (written off the request path: give it a moment)."""
        time.sleep(0.3)
        try:
            with open(self.decisions) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def channel_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except FileNotFoundError:
            return ""


class Browser:
    """One client with its own cookies, as one person's browser or bot."""

    def __init__(self, wiki, xff=CLEAN):
        self.wiki = wiki
        self.xff = xff
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def post(self, path, fields, xff=None):
        data = urllib.parse.urlencode(fields).encode()
        req = urllib.request.Request(f"{self.wiki.url}{path}", data=data)
        req.add_header("X-Forwarded-For", xff or self.xff)
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.read().decode()

    def get(self, path, xff=None, headers=None):
        req = urllib.request.Request(f"{self.wiki.url}{path}")
        req.add_header("X-Forwarded-For", xff or self.xff)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.read().decode()

    def rest(self, method, path, body, xff=None):
        """A REST API request (`/rest.php/v1…`) with a JSON body; returns (status, JSON)."""
        req = urllib.request.Request(f"{self.wiki.url}/rest.php/v1{path}", data=json.dumps(body).encode(),
                                     method=method, headers={"Content-Type": "application/json"})
        req.add_header("X-Forwarded-For", xff or self.xff)
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def api(self, xff=None, **params):
        params = {"format": "json", "formatversion": "2", **params}
        return json.loads(self.post("/api.php", params, xff))

    def token(self, kind="csrf"):
        return self.api(action="query", meta="tokens", type=kind)["query"]["tokens"][f"{kind}token"]

    def login(self, name):
        r = self.api(action="clientlogin", username=name, password=PASSWORD,
                     logintoken=self.token("login"), loginreturnurl=self.wiki.url + "/")
        assert r["clientlogin"]["status"] == "PASS", r
        return self

    def edit(self, title, text, xff=None, **extra):
        return self.api(xff, action="edit", title=title, text=text, token=self.token(), **extra)

    def web_save(self, title, text, xff=None, lang=None):
        """Saves through the edit form, as a browser does (in the interface language `lang`,
        when given); returns the page's HTML."""
        uselang = f"&uselang={lang}" if lang else ""
        return self.post(f"/index.php?title={urllib.parse.quote(title)}&action=submit{uselang}", {
            "wpTextbox1": text, "wpEditToken": self.token(), "wpUnicodeCheck": UNICODE_CHECK,
            "wpSave": "1", "wpUltimateParam": "1",
            "wpStarttime": "20200101000000", "wpEdittime": "20200101000000",
        }, xff)


def permission_box(html):
    """The text of a page's permission error box (a refusal)."""
    m = re.search(r'<(div|ul) class="permissions-errors">(.*?)</\1>', html, re.S)
    if not m:
        text = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))
        raise AssertionError(f"no permission error on the page: {text[:3000]}")
    return m.group(2)


def stop_group(proc):
    """SIGTERM to `proc`'s whole process group (it leads one: start_new_session), SIGKILL
    after 10 s."""
    try:
        os.killpg(proc.pid, signal.SIGCONT)
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def left_in(groups, grace=5.0):
    """The processes still in `groups` after `grace` seconds, as "pid command" strings; each
    is killed."""
    def members():
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = open(f"/proc/{pid}/stat").read()
                cmd = open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip()
            except OSError:
                continue
            # The fields after the command (in parentheses): state, ppid, pgrp.
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) in groups and fields[0] != "Z":
                found.append((int(pid), cmd))
        return found
    deadline = time.monotonic() + grace
    while (found := members()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid, _ in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return [f"{pid} {cmd}" for pid, cmd in found]


def run(args, env=None):
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def saved(r):
    return r.get("edit", {}).get("result") == "Success"


def refusal(r, code, data=True):
    """The editgate details of an API refusal with `code`, checked."""
    err = r.get("error") or {}
    expect(err.get("code") == code, f"expected error {code}, got {json.dumps(r)[:400]}")
    expect("⧼" not in err.get("info", "") and "$1" not in err.get("info", ""), f"raw message in {err}")
    eg = err.get("editgate")
    if data:
        expect(isinstance(eg, dict), f"no editgate data in {err}")
        for field in ["verdict", "ruleId", "reason", "message", "appeal", "policyVersion", "requestId"]:
            expect(field in eg, f"editgate data lacks {field}: {eg}")
    return eg



def rc_tags(w, title):
    """The tags of the latest change to `title`, from recent changes."""
    r = Browser(w).api(action="query", list="recentchanges", rcprop="title|tags", rclimit="50")
    for rc in r["query"]["recentchanges"]:
        if rc["title"] == title:
            return rc["tags"]
    raise AssertionError(f"no recent change of {title}: {r}")


def test_tor_edits_are_tagged_even_when_allowed(w):
    w.create_user("Tagged", registered_days_ago=400, edits=500)
    b = Browser(w).login("Tagged")
    expect(saved(b.edit("Tagged from Tor", "hello", xff=TOR_EXIT)), "the established account was refused")
    expect("tor" in rc_tags(w, "Tagged from Tor"), "the allowed Tor edit is not tagged tor")
    expect(saved(b.edit("Tagged clean", "hello")), "a clean edit was refused")
    expect(rc_tags(w, "Tagged clean") == [], "a clean edit carries a tag")
    # The tag is defined and active, with its name and description.
    tags = Browser(w).api(action="query", list="tags", tgprop="displayname|description|active|defined",
                          tglimit="max")["query"]["tags"]
    tor = [t for t in tags if t["name"] == "tor"]
    expect(tor and tor[0].get("active") and tor[0].get("defined") and tor[0]["displayname"] == "Tor", tor)
    anon = Browser(w, VPN_ADDRESS)
    refusal(anon.edit("VPN anonymous tagged", "x"), "editgate-require-login")


def abuse_filter(w, admin, rules, tag):
    """Creates an enabled filter `rules` that tags matching changes `tag`, through the form."""
    html = admin.get("/index.php?title=Special:AbuseFilter/new")
    field = re.search(r'<input[^>]*name="wpEditToken"[^>]*>', html)
    expect(field, "no edit token on the filter form")
    token = re.search(r'value="([^"]*)"', field.group(0)).group(1)
    admin.post("/index.php?title=Special:AbuseFilter/new", {
        "wpEditToken": html_module.unescape(token), "wpFilterDescription": f"e2e {tag}",
        "wpFilterRules": rules, "wpFilterNotes": "", "wpFilterEnabled": "1",
        "wpFilterActionTag": "1", "wpFilterTags": tag, "wpFilterGroup": "default",
    })

