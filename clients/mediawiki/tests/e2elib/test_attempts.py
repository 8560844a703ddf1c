"""Every request that can change the wiki is an attempt, whatever its method or entry point:
decided on all its facts (its forwarded-for chain included) and counted. A request that
cannot change anything is a probe: decided alike, counted apart."""

import re

from .wiki import (CLEAN, HARD_CHAIN, TOR_EXIT, Browser, expect, refusal, saved)

# Each source of refusal, and what the shipped policy answers an anonymous editor and a new
# account from it: a chain holding a hard-blocked address refuses everyone; from a Tor exit,
# anonymous editors must log in and a new account is blocked by enwiki's threshold.
FROM = [
    ("hard-blocked chain", HARD_CHAIN, {"anonymous": ("editgate-blocked", "global-hard-block"),
                                        "registered": ("editgate-blocked", "global-hard-block")}),
    ("Tor exit", TOR_EXIT, {"anonymous": ("editgate-require-login", "tor-anon"),
                            "registered": ("editgate-blocked", "enwiki-tor-young-account")}),
]


def content(html):
    """The text of a page's content area, for messages."""
    m = re.search(r'<div id="mw-content-text".*?</div>\s*</div>', html, re.S)
    return re.sub(r"<[^>]+>", " ", m.group(0) if m else html[:2000])[:1500]


def latest(b, title):
    """The latest revision of `title`: (id, text)."""
    r = b.api(action="query", prop="revisions", titles=title, rvprop="ids|content", rvslots="main")
    rev = r["query"]["pages"][0]["revisions"][0]
    return rev["revid"], rev["slots"]["main"]["content"]


def counted(w, before, actions):
    """That editgate counted an attempt for each of `actions` since `before` log lines."""
    logged = [l["action"] for l in w.decision_log()[before:]]
    for action in actions:
        expect(action in logged, f"no decision logged for {action}: {logged}")


def test_rest_api_saves_are_attempts(w):
    anon = Browser(w)
    expect(saved(anon.edit("Rest page", "first")), "setup edit")
    rev, _ = latest(anon, "Rest page")
    # The REST API saves from a clean address, so a refusal below is editgate's.
    status, r = anon.rest("PUT", "/page/Rest_page", {"source": "clean", "comment": "c", "latest": {"id": rev},
                                                     "token": "+\\"})
    expect(status == 200, f"a clean REST save failed: {status} {r}")
    w.create_user("Restnewcomer")
    for label, xff, answers in FROM:
        for kind, who in (("anonymous", Browser(w)), ("registered", Browser(w).login("Restnewcomer"))):
            code, _ = answers[kind]
            rev, text = latest(who, "Rest page")
            seen, decisions = len(w.decision_log()), w.editgate_decisions()
            status, r = who.rest("PUT", "/page/Rest_page", {"source": f"PUT {label}", "comment": "c",
                                                            "latest": {"id": rev}, "token": who.token()}, xff)
            expect(status >= 400 and latest(who, "Rest page")[1] == text, f"{label}: PUT saved: {status} {r}")
            expect(code in str(r), f"{label}: PUT refused, but not by editgate: {r}")
            status, r = who.rest("POST", "/page", {"source": "new", "title": f"Rest new {label}", "comment": "c",
                                                   "token": who.token()}, xff)
            expect(status >= 400 and code in str(r), f"{label}: POST /page was not refused by editgate: {status} {r}")
            expect(w.editgate_decisions() - decisions >= 2, f"{label}: the REST saves were not counted")
            counted(w, seen, ["edit", "create"])


def test_rollback_by_get_and_by_post_is_an_attempt(w):
    w.configure(extra=["$wgGroupPermissions['user']['rollback'] = true;"])
    try:
        w.create_user("Goodfaith")
        w.create_user("Vandalish")
        w.create_user("Rollbacker")
        expect(saved(Browser(w).login("Goodfaith").edit("Rollback page", "good")), "setup")
        expect(saved(Browser(w).login("Vandalish").edit("Rollback page", "bad")), "setup")
        rb = Browser(w).login("Rollbacker")
        for label, xff, answers in FROM:
            code, rule = answers["registered"]
            seen = len(w.decision_log())
            token = rb.token("rollback")
            # A rollback link is a GET with a token in it.
            html = rb.get(f"/index.php?title=Rollback_page&action=rollback&from=Vandalish&token={token}", xff=xff)
            expect(latest(rb, "Rollback page")[1] == "bad", f"{label}: the GET rollback went through")
            expect(rule in str(w.decision_log()[seen:]), f"{label}: the GET rollback was not decided by {rule}")
            expect("⧼" not in html, "a raw message key on the page")
            r = rb.api(xff, action="rollback", title="Rollback page", user="Vandalish", token=rb.token("rollback"))
            eg = refusal(r, code)
            expect(eg["ruleId"] == rule, f"{label}: {eg}")
            expect(latest(rb, "Rollback page")[1] == "bad", f"{label}: the API rollback went through")
            counted(w, seen, ["rollback"])
        # From a clean address the same rollback goes through: the refusals were editgate's.
        r = rb.api(action="rollback", title="Rollback page", user="Vandalish", token=rb.token("rollback"))
        expect("rollback" in r and latest(rb, "Rollback page")[1] == "good", f"a clean rollback failed: {r}")
    finally:
        w.configure()


def test_changing_tags_is_an_attempt(w):
    # MediaWiki checks `changetags` by right alone (no page permission): the API module and
    # the form are asked about themselves.
    w.create_user("Tagadmin", sysop=True)
    admin = Browser(w).login("Tagadmin")
    r = admin.api(action="managetags", operation="create", tag="e2e-manual", reason="test", token=admin.token())
    expect("managetags" in r, f"the tag was not created: {r}")
    w.create_user("Tagger")
    tagger = Browser(w).login("Tagger")
    expect(saved(tagger.edit("Tag page", "x")), "setup")
    rev, _ = latest(tagger, "Tag page")
    for label, xff, answers in FROM:
        code, rule = answers["registered"]
        seen = len(w.decision_log())
        r = tagger.api(xff, action="tag", revid=rev, add="e2e-manual", reason="r", token=tagger.token())
        eg = refusal(r, code)
        expect(eg["ruleId"] == rule, f"{label}: {eg}")
        counted(w, seen, ["changetags"])
    r = tagger.api(action="tag", revid=rev, add="e2e-manual", reason="r", token=tagger.token())
    expect(r.get("tag", [{}])[0].get("status") == "success", f"a clean tag change failed: {r}")


def test_a_special_page_form_that_saves_is_an_attempt(w):
    # Special:Block submitted by a sysop through a hard-blocked chain (sysops are exempt on
    # Tor, not from the locked hard block).
    w.create_user("Formblocker", sysop=True)
    admin = Browser(w).login("Formblocker")
    seen = len(w.decision_log())
    html = admin.post("/index.php?title=Special:Block", {
        "wpTarget": "198.18.9.9", "wpExpiry": "1 day", "wpReason": "other", "wpEditToken": admin.token(),
    }, HARD_CHAIN)
    expect("Editing from your network is blocked on all wikis." in html, f"Special:Block was not refused: {content(html)}")
    r = admin.api(action="query", list="blocks", bkip="198.18.9.9")
    expect(r["query"]["blocks"] == [], f"the block was placed: {r}")
    counted(w, seen, ["block"])
    # Showing the form is not asked about at all.
    decisions, probes = w.editgate_decisions(), w.editgate_probes()
    html = admin.get("/index.php?title=Special:Block", HARD_CHAIN)
    expect("wpTarget" in html, "the block form is not shown")
    expect(w.editgate_decisions() == decisions, "showing a form was counted as an attempt")
    expect(w.editgate_probes() == probes, "showing a form was asked about")


def test_every_action_but_read_is_gated(w):
    # As TorBlock: deleting and protecting from a hard-blocked chain are refused, even for a
    # sysop; reading is never asked about.
    w.create_user("Gatedsysop", sysop=True)
    admin = Browser(w).login("Gatedsysop")
    expect(saved(admin.edit("Gated page", "x")), "setup")
    for action, params in (("delete", {"reason": "r"}), ("protect", {"protections": "edit=sysop"})):
        r = admin.api(HARD_CHAIN, action=action, title="Gated page", token=admin.token(), **params)
        eg = refusal(r, "editgate-blocked")
        expect(eg["ruleId"] == "global-hard-block", f"{action}: {eg}")
    decisions, probes = w.editgate_decisions(), w.editgate_probes()
    html = Browser(w, HARD_CHAIN).get("/index.php?title=Gated_page")
    expect("Gated page" in html or "Gated_page" in html, "the page was not shown")
    expect((w.editgate_decisions(), w.editgate_probes()) == (decisions, probes), "reading was asked about")


def test_views_of_the_edit_form_are_decided_alike_and_not_counted(w):
    # The form shows the refusal the save would get, on the same facts (the chain
    # included), and is counted only as a probe.
    for xff, text in ((HARD_CHAIN, "Editing from your network is blocked on all wikis."),
                      (TOR_EXIT, "Editing through Tor without an account is not possible")):
        decisions, probes = w.editgate_decisions(), w.editgate_probes()
        seen = len(w.decision_log())
        html = Browser(w, xff).get("/index.php?title=Probe_page&action=edit")
        expect(text in html, f"the form from {xff} does not show its refusal")
        expect(w.editgate_probes() > probes, "the view was not counted as a probe")
        expect(w.editgate_decisions() == decisions, "a view was counted as a decision")
        expect(len(w.decision_log()) == seen, "a view was written to the decision log")
    r = Browser(w, HARD_CHAIN).get(
        "/api.php?action=query&prop=info&titles=Probe_page&intestactions=edit&format=json&formatversion=2")
    expect('"edit":false' in re.sub(r"\s", "", r), f"intestactions answered more leniently than a save: {r}")
    expect(saved(Browser(w, CLEAN).edit("Probe page", "x")), "a clean save failed")
