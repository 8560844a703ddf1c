"""The scratch MediaWiki, the editgate it asks, and a client that acts as an editor."""

import html as html_module
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
EXTENSION = os.path.join(REPO, "clients", "mediawiki", "EditGate")
# Other projects' archives the tests load (AbuseFilter, TorBlock, MediaWiki 1.45), when present.
THIRD_PARTY = os.path.abspath(os.path.join(REPO, "..", "shared", "third_party"))
DEBIAN_MEDIAWIKI = "/usr/share/mediawiki"  # Debian 12's 1.39; --mediawiki DIR for another
WIKI_ID = "enwiki"  # the database name, so the shipped wikis/enwiki.toml applies
# A table prefix, as many wikis outside Wikimedia have: MediaWiki's own wiki id is then
# "enwiki-mw_", and the extension must still send the database name.
DB_PREFIX = "mw_"

# An Onionoo `details` answer with one exit relay, for TorBlock and the torblock example.
ONIONOO_FIXTURE = os.path.join(REPO, "tests", "fixtures", "tor", "onionoo-details-2021-10-09.json")
ONIONOO_EXIT = "128.31.0.13"  # its exit (exit and OR address)
ONIONOO_NOT_EXIT = "128.31.0.34"  # its directory authority: a relay, not an exit
# TorBlock's autopromotion settings that examples/torblock's `torblock-autopromote` mirrors.
TORBLOCK_SETTINGS = ["$wgTorAutoConfirmAge = 90 * 86400;", "$wgTorAutoConfirmCount = 100;"]
# Spur-shaped records (a NORD_VPN exit at SPUR_VPN), for IPReputation's AbuseFilter variables.
SPUR_FIXTURE = os.path.join(REPO, "tests", "fixtures", "spur", "anonymous-sample.json")
SPUR_VPN = "198.19.10.1"
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
        # The release branch, as extension archives name it: 1_39, 1_43, 1_45.
        self.branch = "_".join(self.version.split(".")[:2])
        self.editgate_bin = editgate_bin
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.policies = os.path.join(tmp, "policies")
        self.abusefilter = False
        self.log = os.path.join(tmp, "editgate-channel.log")
        self.deprecated = os.path.join(tmp, "deprecated.log")
        self.decisions = os.path.join(tmp, "decisions.jsonl")
        self.php = None
        # True when PHP runs with APCu as MediaWiki's object cache (start_php).
        self.apcu = False
        # TorBlock of this release, unpacked by install() from ../shared/third_party when there.
        self.torblock = None
        self.onionoo = None
        self.editgate = None
        self.torblock_editgate = None
        # Where the shipped policy's editgate listens for HTTP besides TCP (see Editgate).
        self.editgate_socket = self.policies + ".sock"
        # The process groups started (each server in a session of its own).
        self.groups = set()

    # --- setup ---------------------------------------------------------------------------

    def install(self):
        # The shipped policy, with editgate's decision log on: it records what each request
        # said (wiki, action, account kind), never the address.
        shutil.copytree(os.path.join(REPO, "policies"), self.policies)
        key = os.path.join(self.policies, "decision-log.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write("e2e-test-key-0123456789abcdef\n")
        # Spur's feed, hand-written records (tests/fixtures/spur), watched by a shadow rule only:
        # the answers carry the reputation, and AbuseFilter's filters decide on it.
        shutil.copy(SPUR_FIXTURE, os.path.join(self.policies, "spur.json"))
        with open(os.path.join(self.policies, "global.toml"), "a") as f:
            f.write(
                f'\n[settings.decision_log]\npath = "{self.decisions}"\n'
                'key_file = "decision-log.key"\n'
                '\n[sources.spur]\nkind = "spur-feed"\npath = "spur.json"\nmin_entries = 3\n'
                '\n[[rule]]\nid = "e2e-spur-listed"\nverdict = "require-login"\nmode = "shadow"\n'
                'when.ip_in = ["spur"]\n'
            )
        env = self.env()
        run(
            ["php", f"{self.mediawiki}/maintenance/install.php", "--dbtype", "sqlite",
             "--dbpath", os.path.join(self.tmp, "data"), "--dbname", WIKI_ID, "--dbprefix", DB_PREFIX,
             "--server", self.url, "--scriptpath", "", "--confpath", self.tmp,
             "--pass", PASSWORD, "EditGate e2e", "Admin"],
            env=env,
        )
        # MediaWiki's AbuseFilter for this release: bundled with a release tarball (1.45),
        # else from ../shared/third_party when present.
        bundled = f"{self.mediawiki}/extensions/AbuseFilter/extension.json"
        archive = os.path.join(THIRD_PARTY, f"AbuseFilter-REL{self.branch}.tar.gz")
        af_json = None
        if os.path.exists(bundled):
            af_json = bundled
        elif os.path.exists(archive):
            subprocess.run(["tar", "xzf", archive, "-C", self.tmp], check=True)
            af_json = f"{self.tmp}/AbuseFilter/extension.json"
        self.abusefilter = af_json is not None
        tb_archive = os.path.join(THIRD_PARTY, f"TorBlock-REL{self.branch}.tar.gz")
        if os.path.exists(tb_archive):
            subprocess.run(["tar", "xzf", tb_archive, "-C", self.tmp], check=True)
            self.torblock = f"{self.tmp}/TorBlock/extension.json"
        af_load = f"wfLoadExtension( 'AbuseFilter', '{af_json}' );\n" if af_json else ""
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
                  timeout=TIMEOUT, socket=None, extension=EXTENSION, torblock=False, profile=None):
        """Rewrites the settings the tests vary (read on every request: no opcache delay).
        With `errors_to`, the EditGate channel logs only errors, to that file; `extra` lines
        are appended as they are. `torblock` loads TorBlock (its exit list from the local
        Onionoo server, start_onionoo); `profile` appends each request's Excimer profile to
        that file, as collapsed stacks."""
        lines = ["<?php"]
        if profile:
            lines.append(EXCIMER.replace("{out}", profile))
        if self.apcu:
            # A single-server production wiki: APCu is the object cache too.
            lines.append("$wgMainCacheType = CACHE_ACCEL;")
        if errors_to:
            lines.append(f"$wgDebugLogGroups['EditGate'] = [ 'destination' => '{errors_to}', 'level' => 'error' ];")
        if enabled:
            lines.append(f"wfLoadExtension( 'EditGate', '{extension}/extension.json' );")
            lines.append(f"$wgEditGateUrl = '{url or self.editgate_http or 'http://127.0.0.1:9'}';")
            lines.append(f"$wgEditGateTimeout = {timeout};")
            lines.append(f"$wgEditGateFailOpen = {'true' if fail_open else 'false'};")
            if socket:
                lines.append(f"$wgEditGateSocket = '{socket}';")
        if torblock:
            if not (self.torblock and self.onionoo):
                raise RuntimeError("TorBlock wanted, but not unpacked or no Onionoo server")
            lines.append(f"wfLoadExtension( 'TorBlock', '{self.torblock}' );")
            lines.append(f"$wgTorOnionooServer = '{self.onionoo.url}';")
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
        self.editgate = Editgate(self.editgate_bin, self.policies, self.tmp, self.groups)

    def stop_editgate(self):
        if self.editgate is not None:
            self.editgate.stop()
            self.editgate = None

    def freeze_editgate(self, frozen):
        self.editgate.freeze(frozen)

    @property
    def editgate_http(self):
        return self.editgate.http if self.editgate else None

    def start_php(self, apcu=False):
        """Starts `php -S` on the wiki. With `apcu`, APCu is MediaWiki's local server cache and
        its object cache, as on a single-server production wiki; without, the wiki has no
        object cache (APCu off even when installed), a small wiki's default."""
        if apcu and "apcu" not in subprocess.run(["php", "-m"], capture_output=True, text=True).stdout.split():
            raise RuntimeError("APCu wanted but PHP has no apcu module (Debian's php-apcu)")
        self.apcu = apcu
        # Several workers, as a real web server has: a wiki whose $wgEditGateUrl points at
        # itself must get an answer (an HTML page), not wait on its own single worker.
        env = dict(self.env(), PHP_CLI_SERVER_WORKERS="4")
        if not apcu:
            # APCu not loaded at all, as where it is not installed (MediaWiki takes APCu's
            # functions for a working cache even with apc.enabled=0, and fails).
            env["PHP_INI_SCAN_DIR"] = self.php_ini_dir(without="apcu")
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

    def php_ini_dir(self, without):
        """A copy of PHP's directory of module .ini files, without the module `without`."""
        out = subprocess.run(["php", "--ini"], capture_output=True, text=True, check=True).stdout
        scan = re.search(r"Scan for additional .ini files in: (\S+)", out).group(1)
        ini = os.path.join(self.tmp, f"php-conf.d-without-{without}")
        if not os.path.isdir(ini):
            os.mkdir(ini)
            for name in os.listdir(scan):
                if without not in name:
                    os.symlink(os.path.join(scan, name), os.path.join(ini, name))
        return ini

    def stop_php(self):
        if self.php is not None:
            stop_group(self.php)
            self.php = None

    def start_onionoo(self):
        if self.onionoo is None:
            self.onionoo = Onionoo()
        return self.onionoo

    def start_torblock_editgate(self):
        """An editgate on examples/torblock (the TorBlock migration policy), its exit list
        fetched from the local Onionoo server; started once, stopped with the wiki."""
        if self.torblock_editgate is not None:
            return self.torblock_editgate
        onionoo = self.start_onionoo()
        dst = os.path.join(self.tmp, "torblock")
        shutil.copytree(os.path.join(REPO, "examples", "torblock", "policies"), dst)
        path = os.path.join(dst, "global.toml")
        with open(path) as f:
            text = f.read()
        # Onionoo here, the copy in the scratch directory, and the fixture's one exit enough.
        for old, new in (("https://onionoo.torproject.org", onionoo.url),
                         ("/var/lib/editgate/sources/", dst + "/"), ("min_entries = 500", "min_entries = 1")):
            if old not in text:
                raise AssertionError(f"examples/torblock changed: no {old!r} in it")
            text = text.replace(old, new)
        with open(path, "w") as f:
            f.write(text)
        self.torblock_editgate = Editgate(self.editgate_bin, dst, self.tmp, self.groups)
        # Its first fetch: until then it decides nothing (UNAVAILABLE).
        self.wait_until(lambda: "tor" in self.torblock_editgate.probe(ONIONOO_EXIT).get("sources", []),
                        "the torblock editgate never fetched its exit list")
        return self.torblock_editgate

    def stop(self):
        """Stops every server and every process they started; returns what outlived them
        (killed, but a failure of the suite)."""
        self.stop_editgate()
        if self.torblock_editgate is not None:
            self.torblock_editgate.stop()
            self.torblock_editgate = None
        self.stop_php()
        if self.onionoo is not None:
            self.onionoo.stop()
            self.onionoo = None
        return left_in(self.groups)

    # --- observations ----------------------------------------------------------------------

    def editgate_decisions(self):
        """editgate_decisions_total, summed over verdicts and rules."""
        return self.editgate.metric("editgate_decisions_total")

    def editgate_probes(self):
        """editgate_probes_total."""
        return self.editgate.metric("editgate_probes_total")

    def add_rule(self, rule, rule_id, probe_ip, probe_xff=None):
        """Appends `rule` to the policy and waits until editgate decides by it (it watches its
        policy directory)."""
        with open(os.path.join(self.policies, "global.toml"), "a") as f:
            f.write("\n" + rule)
        self.wait_until(lambda: self.editgate.probe(probe_ip, xff=probe_xff).get("ruleId") == rule_id,
                        f"editgate never decided by {rule_id}")

    def remove_rule(self, rule_id, probe_ip):
        """Removes a rule add_rule appended, and waits until editgate no longer decides by it."""
        path = os.path.join(self.policies, "global.toml")
        text = open(path).read()
        start = text.index(f'\n[[rule]]\nid = "{rule_id}"')
        end = text.find("\n[[rule]]", start + 1)
        with open(path, "w") as f:
            f.write(text[:start] + (text[end:] if end != -1 else "\n"))
        self.wait_until(lambda: self.editgate.probe(probe_ip).get("ruleId") != rule_id,
                        f"editgate still decides by {rule_id}")

    @staticmethod
    def wait_until(done, failure):
        """Polls `done` for up to 15 s; then fails with `failure`."""
        deadline = time.monotonic() + 15
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(failure)
            time.sleep(0.2)

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


# Profiles the request with Excimer (Debian's php-excimer), as MediaWiki does in production:
# wall-clock samples every 0.05 ms, appended to {out} as collapsed stacks when the request
# ends, after a line `# request` that starts each request's samples.
EXCIMER = """if ( extension_loaded( 'excimer' ) ) {
	$egExcimer = new ExcimerProfiler();
	$egExcimer->setPeriod( 0.00005 );
	$egExcimer->setEventType( EXCIMER_REAL );
	$egExcimer->start();
	register_shutdown_function( static function () use ( $egExcimer ) {
		$egExcimer->stop();
		file_put_contents( '{out}', "# request\\n" . $egExcimer->getLog()->formatCollapsed(), FILE_APPEND | LOCK_EX );
	} );
}"""


class Onionoo:
    """A local Onionoo server, in a thread: `/details` answers with ONIONOO_FIXTURE, only the
    relays flagged Exit when asked `flag=Exit` (as TorBlock and the torblock example ask)."""

    def __init__(self):
        with open(ONIONOO_FIXTURE) as f:
            document = json.load(f)
        server = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/details":
                    self.send_error(404)
                    return
                answer = dict(document)
                if "Exit" in urllib.parse.parse_qs(url.query).get("flag", []):
                    answer["relays"] = [r for r in document["relays"] if "Exit" in r.get("flags", [])]
                body = json.dumps(answer).encode()
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Editgate:
    """One `editgate serve` on a policy directory: gRPC and HTTP on free loopback ports, HTTP
    also on the Unix socket `<policies>.sock`, in a process group of its own (added to
    `groups`)."""

    def __init__(self, binary, policies, tmp, groups, args=()):
        self.policies = policies
        self.socket = policies.rstrip("/") + ".sock"
        self.frozen = False
        name = os.path.basename(policies.rstrip("/"))
        self.proc = subprocess.Popen(
            [binary, "serve", "--policies", policies,
             "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--http-socket", self.socket, *args],
            stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, f"editgate-{name}.stderr"), "ab"),
            text=True, start_new_session=True,
        )
        groups.add(self.proc.pid)
        line = self.proc.stdout.readline()
        m = re.search(r"and HTTP on (\S+)", line)
        if not m:
            raise RuntimeError(f"editgate did not start on {policies}: {line!r}")
        self.http = f"http://{m.group(1)}"

    def stop(self):
        if self.frozen:
            self.freeze(False)
        stop_group(self.proc)

    def freeze(self, frozen):
        self.proc.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)
        self.frozen = frozen

    def probe(self, ip, xff=None, wiki=WIKI_ID):
        """editgate's answer about an anonymous edit from `ip` (forwarded for `xff`), as a
        probe (never counted); {} while it cannot decide."""
        body = json.dumps({"ip": ip, "forwardedFor": [xff] if xff else [], "wiki": wiki, "probe": True,
                           "account": {"kind": "ACCOUNT_KIND_ANONYMOUS"}}).encode()
        req = urllib.request.Request(f"{self.http}/v1/check", data=body, headers={"Content-Type": "application/json"})
        try:
            return json.loads(urllib.request.urlopen(req, timeout=5).read())
        except urllib.error.HTTPError:
            return {}

    def metric(self, name):
        """A metric of /metrics, summed over its labels."""
        body = urllib.request.urlopen(f"{self.http}/metrics", timeout=5).read().decode()
        return sum(float(l.split()[-1]) for l in body.splitlines() if l.startswith(name + "{") or l.startswith(name + " "))


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


def make_certificates(directory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate it signed (openssl),
    in `directory`; returns {name: path} for ca, server, server_key, client, client_key."""
    os.makedirs(directory, exist_ok=True)
    p = {n: os.path.join(directory, f"{n}.pem") for n in ("ca", "ca_key", "server", "server_key", "client", "client_key")}
    ssl = ["openssl"]
    run(ssl + ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
               "-subj", "/CN=editgate e2e CA", "-keyout", p["ca_key"], "-out", p["ca"]])
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "extendedKeyUsage=clientAuth")):
        csr = os.path.join(directory, f"{who}.csr")
        run(ssl + ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN=e2e {who}",
                   "-keyout", p[f"{who}_key"], "-out", csr])
        extfile = os.path.join(directory, f"{who}.ext")
        with open(extfile, "w") as f:
            f.write(ext + "\n")
        run(ssl + ["x509", "-req", "-in", csr, "-CA", p["ca"], "-CAkey", p["ca_key"], "-CAcreateserial", "-days", "2",
                   "-extfile", extfile, "-out", p[who]])
    return p


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


def abuse_filter(w, admin, rules, tag, *, disallow=False, protected=False):
    """Creates an enabled filter `rules` that tags matching changes `tag` (and, `disallow`,
    refuses them), through the form; `protected` for a filter on protected variables."""
    html = admin.get("/index.php?title=Special:AbuseFilter/new")
    field = re.search(r'<input[^>]*name="wpEditToken"[^>]*>', html)
    expect(field, "no edit token on the filter form")
    token = re.search(r'value="([^"]*)"', field.group(0)).group(1)
    admin.post("/index.php?title=Special:AbuseFilter/new", {
        "wpEditToken": html_module.unescape(token), "wpFilterDescription": f"e2e {tag}",
        "wpFilterRules": rules, "wpFilterNotes": "", "wpFilterEnabled": "1",
        "wpFilterActionTag": "1", "wpFilterTags": tag, "wpFilterGroup": "default",
        **({"wpFilterActionDisallow": "1", "wpFilterDisallowMessage": "abusefilter-disallowed"} if disallow else {}),
        **({"wpFilterProtected": "1"} if protected else {}),
    })

