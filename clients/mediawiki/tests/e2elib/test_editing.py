"""Editing through the gate: verdicts, messages, accounts, failures, forwarded-for chains."""

import html as html_module
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request

from .wiki import (CAMPUS, CLEAN, MARKUP_ADDRESS, PASSWORD, REPO, TIMEOUT, TIMEOUT_MARGIN, TOR_EXIT, VPN_ADDRESS,
                   Browser, Editgate, expect, make_certificates, refusal, saved)


def test_clean_anonymous_edit_is_saved(w):
    r = Browser(w).edit("Clean anonymous", "hello")
    expect(saved(r), f"not saved: {r}")


def test_tor_anonymous_edit_needs_login(w):
    r = Browser(w, TOR_EXIT).edit("Tor anonymous", "hello")
    eg = refusal(r, "editgate-require-login")
    expect(eg["ruleId"] == "tor-anon" and eg["verdict"] == "require-login", eg)
    expect(eg["appeal"] == "[[Project:Administrators]]", eg)
    expect("Special:UserLogin" in r["error"]["info"], f"no login link: {r['error']['info']}")
    # The current error format puts the same details under data.editgate.
    r = Browser(w, TOR_EXIT).api(action="edit", title="Tor anonymous", text="hello",
                                 token="+\\", errorformat="plaintext")
    data = r["errors"][0]["data"]["editgate"]
    expect(r["errors"][0]["code"] == "editgate-require-login" and data["ruleId"] == "tor-anon", r)


def test_vpn_anonymous_edit_needs_login(w):
    eg = refusal(Browser(w, VPN_ADDRESS).edit("VPN anonymous", "hello"), "editgate-require-login")
    expect(eg["ruleId"] == "vpn-anon", eg)


def test_new_account_on_tor_is_blocked_with_appeal(w):
    w.create_user("Newcomer")
    r = Browser(w).login("Newcomer").edit("Newcomer page", "hello", xff=TOR_EXIT)
    eg = refusal(r, "editgate-blocked")
    # wikis/enwiki.toml decides: the wiki id reached editgate.
    expect(eg["ruleId"] == "enwiki-tor-young-account", eg)
    expect(eg["appeal"] == "[[Project:IP block exemption]]", eg)
    expect("IP block exemption" in r["error"]["info"], f"no appeal in {r['error']['info']}")
    expect("Special:UserLogin" not in r["error"]["info"], "a login link for a logged-in editor")


def test_page_move_from_tor_by_a_new_account_is_refused(w):
    w.create_user("Mover")
    b = Browser(w).login("Mover")
    expect(saved(b.edit("Move source", "hello")), "setup edit")
    seen = len(w.decision_log())
    r = b.api(action="move", **{"from": "Move source"}, to="Move target", token=b.token(), xff=TOR_EXIT)
    # MediaWiki 1.39 flattens the permission errors of a move: the code and the whole
    # message arrive, data.editgate does not (documented in the extension's README).
    refusal(r, "editgate-blocked", data=False)
    expect("too new, or has made too few edits" in r["error"]["info"], r["error"]["info"])
    expect("IP block exemption" in r["error"]["info"], r)
    moves = [l for l in w.decision_log()[seen:] if l["action"] == "move"]
    expect(len(moves) == 1 and moves[0]["rule_id"] == "enwiki-tor-young-account", moves)


def test_established_account_on_tor_edits(w):
    w.create_user("Veteran", registered_days_ago=400, edits=500)
    r = Browser(w).login("Veteran").edit("Veteran page", "hello", xff=TOR_EXIT)
    expect(saved(r), f"not saved: {r}")
    line = w.decision_log()[-1]
    expect(line["rule_id"] == "enwiki-tor-established" and line["account"] == "registered", line)


def test_ipblock_exempt_sysop_on_tor_edits(w):
    # A brand-new sysop: without the exemption, enwiki-tor-young-account would block it.
    w.create_user("Exempt", sysop=True)
    r = Browser(w).login("Exempt").edit("Exempt page", "hello", xff=TOR_EXIT)
    expect(saved(r), f"not saved: {r}")


def test_account_without_registration_time_counts_as_old(w):
    # Accounts made before MediaWiki recorded registration (user_registration NULL).
    w.create_user("Pioneer", edits=500)
    w.sql("UPDATE /*_*/user SET user_registration = NULL WHERE user_name = 'Pioneer'")
    r = Browser(w).login("Pioneer").edit("Pioneer page", "hello", xff=TOR_EXIT)
    expect(saved(r), f"an account of unknown age was judged new: {r}")


def test_account_creation_from_tor_is_refused(w):
    b = Browser(w, TOR_EXIT)
    r = b.api(action="createaccount", username="Torcreated", password=PASSWORD, retype=PASSWORD,
              createtoken=b.token("createaccount"), createreturnurl=w.url + "/")
    ca = r.get("createaccount", {})
    expect(ca.get("status") == "FAIL" and ca.get("messagecode") == "editgate-require-login", r)
    expect("⧼" not in ca.get("message", ""), ca)


def test_editgate_is_asked_once_per_action_and_request(w):
    # Account creation checks `createaccount` twice in one request.
    b = Browser(w)
    token = b.token("createaccount")
    before = w.editgate_decisions()
    r = b.api(action="createaccount", username="Counted", password=PASSWORD, retype=PASSWORD,
              createtoken=token, createreturnurl=w.url + "/")
    expect(r.get("createaccount", {}).get("status") == "PASS", r)
    asked = w.editgate_decisions() - before
    expect(asked == 1, f"editgate was asked {asked} times for one account creation")


def test_web_form_save_from_tor_shows_the_message(w):
    html = Browser(w, TOR_EXIT).web_save("Web form page", "hello")
    box = re.search(r'<div class="permissions-errors">(.*?)</div>', html, re.S)
    expect(box, "no permission error on the page")
    text = box.group(1)
    expect("Editing through Tor without an account is not possible on this wiki." in text, text)
    expect(re.search(r'href="[^"]*EditGate_e2e:Administrators[&"][^>]*>EditGate e2e:Administrators</a>', text),
           f"no link to the appeal page: {text}")
    expect("Special:UserLogin&amp;returnto=Web_form_page" in text, text)
    expect("⧼" not in html, "a raw message key on the page")


def test_policy_text_is_escaped(w):
    # A rule whose message is operator text with wiki markup and HTML in it: shown as written.
    with open(os.path.join(w.policies, "global.toml"), "a") as f:
        f.write(
            '\n[[rule]]\nid = "e2e-markup"\nverdict = "block"\n'
            "message = \"No edits from here. [[Main Page]] {{SITENAME}} <b>bold</b> ''x''\"\n"
            f'when.ip = ["{MARKUP_ADDRESS}"]\n'
        )
    # editgate watches its policy directory: wait for the new rule.
    deadline = time.monotonic() + 15
    while True:
        r = Browser(w, MARKUP_ADDRESS).edit("Markup page", "hello")
        if r.get("error", {}).get("editgate", {}).get("ruleId") == "e2e-markup" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    refusal(r, "editgate-blocked")
    html = Browser(w, MARKUP_ADDRESS).web_save("Markup page", "hello")
    text = re.search(r'<div class="permissions-errors">(.*?)</div>', html, re.S).group(1)
    expect("<b>" not in text and "<a " not in text.split("appeal")[0], f"markup was rendered: {text}")
    expect("No edits from here. [[Main Page]] {{SITENAME}} <b>bold</b> ''x''" in html_module.unescape(text), text)


def test_temporary_account_is_sent_as_temporary(w):
    w.configure(temp_accounts=True)
    try:
        b = Browser(w)
        b.web_save("Temporary page", "first edit creates a temporary account")
        user = b.api(action="query", meta="userinfo")["query"]["userinfo"]
        expect(user.get("id", 0) > 0, f"no temporary account was created: {user}")
        r = b.edit("Temporary page", "from Tor", xff=TOR_EXIT)
        eg = refusal(r, "editgate-require-login")
        expect(eg["ruleId"] == "tor-anon", eg)
        # A temporary account is logged out in editgate's sense: it is offered to log in.
        expect("Special:UserLogin" in r["error"]["info"], f"no login link: {r['error']['info']}")
        line = w.decision_log()[-1]
        expect(line["account"] == "temporary" and line["rule_id"] == "tor-anon", line)
        expect("by temporary" in w.channel_log(), "the channel log does not name the account kind")
    finally:
        w.configure()


def test_editgate_stopped_fails_open_or_closed(w):
    w.stop_editgate()
    try:
        r = Browser(w, TOR_EXIT).edit("Stopped open", "hello")
        expect(saved(r), f"fail-open did not save: {r}")
        w.configure(fail_open=False)
        refusal(Browser(w, TOR_EXIT).edit("Stopped closed", "hello"), "editgate-unavailable", data=False)
        html = Browser(w).web_save("Stopped closed web", "hello")
        expect("Edits cannot be checked right now" in html and "⧼" not in html, "no human message")
        expect("failing closed" in w.channel_log() and "failing open" in w.channel_log(),
               "the channel log does not say how it failed")
    finally:
        w.start_editgate()
        w.configure()


def test_the_unix_socket_answers_like_the_port(w):
    # Over the socket the URL gives only the path and Host: its port is closed.
    w.configure(url="http://localhost:9", socket=w.editgate_socket, fail_open=False)
    try:
        eg = refusal(Browser(w, TOR_EXIT).edit("Tor anonymous socket", "hello"), "editgate-require-login")
        expect(eg["ruleId"] == "tor-anon", eg)
        expect(saved(Browser(w).edit("Clean socket", "hello")), "a clean edit over the socket was refused")
        # A socket that is not there is an outage: refused when failing closed.
        w.configure(url="http://localhost:9", socket=os.path.join(w.tmp, "missing.sock"), fail_open=False)
        refusal(Browser(w, TOR_EXIT).edit("Missing socket", "hello"), "editgate-unavailable", data=False)
    finally:
        w.configure()


def test_tls_and_mutual_tls(w):
    # editgate on TLS that asks for client certificates, as on another host: the wiki trusts
    # its CA ($wgEditGateCAFile) and presents its own certificate.
    c = make_certificates(os.path.join(w.tmp, "tls"))
    policies = os.path.join(w.tmp, "tls-policies")
    shutil.copytree(os.path.join(REPO, "policies"), policies)
    eg = Editgate(w.editgate_bin, policies, w.tmp, w.groups,
                  ["--tls-cert", c["server"], "--tls-key", c["server_key"], "--tls-client-ca", c["ca"]])
    https = eg.http.replace("http://", "https://")
    trust = [f"$wgEditGateCAFile = '{c['ca']}';"]
    mine = [f"$wgEditGateClientCert = '{c['client']}';", f"$wgEditGateClientKey = '{c['client_key']}';"]
    try:
        w.configure(url=https, fail_open=False, extra=trust + mine)
        eg_data = refusal(Browser(w, TOR_EXIT).edit("Tor anonymous TLS", "hello"), "editgate-require-login")
        expect(eg_data["ruleId"] == "tor-anon", eg_data)
        expect(saved(Browser(w).edit("Clean TLS", "hello")), "a clean edit over TLS was refused")
        # Without its certificate editgate refuses the wiki; without the CA the wiki refuses
        # editgate: no answer either way, refused when failing closed.
        for extra, what in ((trust, "no client certificate"), (mine, "editgate's CA not trusted")):
            w.configure(url=https, fail_open=False, extra=extra)
            r = Browser(w, TOR_EXIT).edit(f"TLS {what}", "hello")
            refusal(r, "editgate-unavailable", data=False)
    finally:
        eg.stop()
        w.configure()


def test_editgate_frozen_answers_within_the_timeout(w):
    Browser(w).edit("Frozen page", "exists")  # an existing page: one action checked
    w.freeze_editgate(True)
    try:
        for fail_open in (True, False):
            w.configure(fail_open=fail_open)
            b = Browser(w)
            token = b.token()
            started = time.monotonic()
            r = b.api(action="edit", title="Frozen page", text=f"frozen {fail_open}", token=token)
            elapsed = time.monotonic() - started
            expect(elapsed < TIMEOUT + TIMEOUT_MARGIN,
                   f"MediaWiki took {elapsed:.3f} s with editgate frozen (timeout {TIMEOUT} s)")
            if fail_open:
                expect(saved(r), f"fail-open did not save: {r}")
            else:
                refusal(r, "editgate-unavailable", data=False)
    finally:
        w.freeze_editgate(False)
        w.configure()


def test_a_wrong_url_refuses_even_with_fail_open(w):
    # A wrong path (404), a redirect, the wiki's own page (an HTML 200): none is an outage, so
    # none may let an edit through fail-open. Each refuses with editgate-error, logged as an
    # error; the warning "failing open" never appears.
    import http.server
    import threading

    target = w.editgate_http

    class Misdirected(http.server.BaseHTTPRequestHandler):
        """What a wrong $wgEditGateUrl may reach: a redirect to editgate, or a web page."""

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.startswith("/redirect/"):
                self.send_response(307)
                self.send_header("Location", target + "/v1/check")
                self.end_headers()
            else:
                body = b"<!DOCTYPE html><html><body>Main Page</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Misdirected)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    other = f"http://127.0.0.1:{server.server_address[1]}"
    errors = os.path.join(w.tmp, "errors.log")
    try:
        for url in (w.editgate_http + "/not-editgate", other + "/redirect", other + "/html"):
            w.configure(url=url, errors_to=errors)
            try:
                r = Browser(w, TOR_EXIT).edit("Misconfigured", "hello")
                refusal(r, "editgate-error", data=False)
            finally:
                w.configure()
    finally:
        server.shutdown()
    log = open(errors).read()
    expect("refused the request (HTTP 404" in log, log[-800:])
    expect("HTTP 307" in log and "not a CheckResponse" in log, log[-800:])
    expect("failing open" not in log, "a warning was logged at error level")


def test_client_input_cannot_turn_a_refusal_into_fail_open(w):
    # An X-Request-Id of invalid UTF-8 (with $wgAllowExternalReqID), and an X-Forwarded-For of
    # 60 entries: the request still reaches editgate whole, and the Tor edit is refused.
    w.configure(extra=["$wgAllowExternalReqID = true;"])
    try:
        b = Browser(w, TOR_EXIT)
        token = b.token()
        data = urllib.parse.urlencode({"action": "edit", "title": "Spoofed", "text": "x", "token": token,
                                       "format": "json"}).encode()
        req = urllib.request.Request(f"{w.url}/api.php", data=data)
        req.add_header("X-Forwarded-For", TOR_EXIT)
        req.add_header("X-Request-Id", "r-\udcff".encode("utf-8", "surrogateescape").decode("latin-1"))
        r = json.loads(b.opener.open(req, timeout=30).read())
        refusal(r, "editgate-require-login")
        chain = ", ".join(f"198.18.0.{i}" for i in range(60)) + f", {TOR_EXIT}"
        r = Browser(w, chain).edit("Long chain", "x")
        eg = refusal(r, "editgate-require-login")
        expect(eg["ruleId"] == "tor-anon", eg)
    finally:
        w.configure()


def test_a_spoofed_forwarded_for_never_exempts(w):
    # The attack on an `unless` with `xff = true`: a locked block of Tor exits that exempts a
    # campus range. A Tor client claiming the campus in X-Forwarded-For is still blocked.
    w.add_rule(
        '[[rule]]\nid = "e2e-steward-tor-block"\nverdict = "block"\nlocked = true\nxff = true\n'
        f'when.ip_in = ["tor"]\nunless.ip = ["{CAMPUS}"]\n',
        "e2e-steward-tor-block", TOR_EXIT)
    try:
        eg = refusal(Browser(w, f"192.0.2.5, {TOR_EXIT}").edit("Campus claim", "x"), "editgate-blocked")
        expect(eg["ruleId"] == "e2e-steward-tor-block", eg)
        # The campus itself is exempt (`unless` holds for its client address), and a clean
        # client with a Tor exit in its chain is blocked (the chain satisfies `when`).
        r = Browser(w, "192.0.2.5").edit("Campus", "x")
        expect(saved(r), f"the campus was not exempt: {r}")
        eg = refusal(Browser(w, f"{TOR_EXIT}, {CLEAN}").edit("Clean via Tor", "x"), "editgate-blocked")
        expect(eg["ruleId"] == "e2e-steward-tor-block", eg)
    finally:
        text = open(os.path.join(w.policies, "global.toml")).read()
        with open(os.path.join(w.policies, "global.toml"), "w") as f:
            f.write(text[:text.index("\n[[rule]]\nid = \"e2e-steward-tor-block\"")])
        w.add_rule("", "tor-anon", TOR_EXIT)


def test_a_trusted_proxy_on_a_list_is_not_sent(w):
    # A CDN the wiki trusts whose address sits on the VPN list: MediaWiki takes the client
    # address through it, and the extension sends only the untrusted part of the chain, so
    # an anonymous edit from a clean address is not sent to log in by `vpn-anon` (xff).
    w.configure(extra=[f"$wgCdnServersNoPurge[] = '{VPN_ADDRESS}';"])
    try:
        r = Browser(w, f"{CLEAN}, {VPN_ADDRESS}").edit("Through the CDN", "x")
        expect(saved(r), f"the CDN's own address decided: {r}")
        # An untrusted VPN address left of the client is still judged.
        eg = refusal(Browser(w, f"2.26.164.10, {CLEAN}").edit("Claimed VPN", "x"), "editgate-require-login")
        expect(eg["ruleId"] == "vpn-anon", eg)
    finally:
        w.configure()


def test_links_in_policy_text_are_links(w):
    # A rule whose message is text naming a web page (a wiki's own policy, not a message
    # key): the address is a link, not dead text. The appeal, a page of the wiki, is a link.
    w.add_rule('[[rule]]\nid = "e2e-link-text"\nverdict = "block"\n'
               'message = "Ask for an exemption at https://wiki.example/Exemption first."\n'
               'when.ip = ["198.18.201.0/24"]\n', "e2e-link-text", "198.18.201.9")
    html = Browser(w, "198.18.201.9").web_save("Link page", "hello")
    box = re.search(r'<div class="permissions-errors">(.*?)</div>', html, re.S).group(1)
    expect('href="https://wiki.example/Exemption"' in box, box)
    expect("Administrators" in box and "<a " in box.split("https://wiki.example")[-1], box)


def test_the_packaged_extension_works(w):
    # The extension as the Debian package installs it (tests/package/run unpacks the package
    # into $EDITGATE_PACKAGE_ROOT; .ci/run sets it for both): loaded from there alone, it
    # refuses a Tor edit and saves a clean one.
    root = os.environ.get("EDITGATE_PACKAGE_ROOT")
    if not root:
        print("     skipped: EDITGATE_PACKAGE_ROOT is not set (tests/package/run unpacks the package there)",
              flush=True)
        return
    packaged = os.path.join(root, "var/lib/mediawiki/extensions/EditGate")
    expect(os.path.isfile(os.path.join(packaged, "extension.json")), f"no packaged extension in {packaged}")
    w.configure(extension=packaged)
    try:
        eg = refusal(Browser(w, TOR_EXIT).edit("Packaged extension", "hello"), "editgate-require-login")
        expect(eg["ruleId"] == "tor-anon", eg)
        expect(saved(Browser(w).edit("Packaged extension", "hello")), "a clean edit was refused")
    finally:
        w.configure()


def test_extension_off_sends_nothing(w):
    w.configure(enabled=False)
    try:
        before = w.editgate_decisions()
        r = Browser(w, TOR_EXIT).edit("Extension off", "hello")
        expect(saved(r), f"not saved: {r}")
        expect(w.editgate_decisions() == before, "editgate was asked with the extension off")
    finally:
        w.configure()
