"""TorBlock itself, in the same wiki: the same attempts get the same outcome from TorBlock
alone and from EditGate alone on examples/torblock (the migration policy), both reading the
exit list from the same local Onionoo server.

Skipped, saying so, when ../shared/third_party has no TorBlock for this release."""

import re

from .wiki import (CLEAN, ONIONOO_EXIT, ONIONOO_NOT_EXIT, PASSWORD, TORBLOCK_SETTINGS, Browser, abuse_filter,
                   expect, rc_tags, saved)

# Where the two differ, on purpose, by release; each is explained in the extension's README
# ("Moving from TorBlock").
KNOWN_DIFFERENCES = {
    # 1.39 puts temporary accounts in the `user` group, which TorBlock's torunblocked is
    # granted to; EditGate tells a temporary account from a registered one on every release.
    ("1_39", "a temporary account edits from an exit"): {"TorBlock": True, "EditGate": False},
}


def sides(w, peer):
    return {
        "TorBlock": dict(enabled=False, torblock=True, extra=TORBLOCK_SETTINGS),
        "EditGate": dict(url=peer.http, extra=["$wgEditGateAutopromote = true;"]),
    }


def observe(w, side, settings):
    """What the wiki does under `settings`, scenario by scenario."""
    w.configure(**settings)
    seen = {}
    n = side[:2]  # account names of their own on each side

    def groups(b, xff):
        return b.api(action="query", meta="userinfo", uiprop="groups", xff=xff)["query"]["userinfo"]["groups"]

    anon = Browser(w, ONIONOO_EXIT)
    seen["an anonymous edit from an exit is saved"] = saved(anon.edit(f"Peer {n} anon", "x"))
    seen["an anonymous edit from a relay that is not an exit is saved"] = saved(
        Browser(w, ONIONOO_NOT_EXIT).edit(f"Peer {n} relay", "x"))
    b = Browser(w, CLEAN)
    seen["an anonymous edit from a clean address is saved"] = saved(b.edit(f"Peer {n} clean", "x"))
    seen["... and is tagged tor"] = "tor" in rc_tags(w, f"Peer {n} clean")
    r = anon.api(action="createaccount", username=f"Peer{n}created", password=PASSWORD, retype=PASSWORD,
                 createtoken=anon.token("createaccount"), createreturnurl=w.url + "/")
    seen["an account is created from an exit"] = r.get("createaccount", {}).get("status") == "PASS"

    w.create_user(f"Peer{n}new", registered_days_ago=1, edits=0)
    new = Browser(w, ONIONOO_EXIT).login(f"Peer{n}new")
    seen["a new account's edit from an exit is saved"] = saved(new.edit(f"Peer {n} new", "x"))
    tags = rc_tags(w, f"Peer {n} new")
    seen["... and is tagged tor "] = "tor" in tags
    if w.abusefilter:
        seen["... and AbuseFilter's tor_exit_node holds for it"] = "af-peer-tor" in tags
    seen["a new account is autoconfirmed on an exit"] = "autoconfirmed" in groups(new, ONIONOO_EXIT)
    seen["a new account is autoconfirmed on a clean address"] = "autoconfirmed" in groups(new, CLEAN)
    w.create_user(f"Peer{n}old", registered_days_ago=400, edits=500)
    old = Browser(w, ONIONOO_EXIT).login(f"Peer{n}old")
    seen["an established account is autoconfirmed on an exit"] = "autoconfirmed" in groups(old, ONIONOO_EXIT)

    # TorBlock's autopromotion condition, in a $wgAutopromote that names it.
    condition = ["$wgExtensionFunctions[] = static function () { "
                 "$GLOBALS['wgAutopromote']['e2e-tor'] = [ APCOND_TOR ]; };"]
    w.configure(**dict(settings, extra=settings.get("extra", []) + condition))
    seen["APCOND_TOR holds for an account on an exit"] = "e2e-tor" in groups(old, ONIONOO_EXIT)
    seen["APCOND_TOR holds for an account on a clean address"] = "e2e-tor" in groups(old, CLEAN)
    w.configure(**settings)

    for name in (f"Peer{n}new", f"Peer{n}old"):
        w.sql(f"UPDATE /*_*/user SET user_email = '{name.lower()}@example.org', "
              f"user_email_authenticated = '20200101000000' WHERE user_name = '{name}'")
    r = new.api(action="emailuser", target=f"Peer{n}old", subject="s", text="t", token=new.token())
    code = (r.get("error") or {}).get("code", "")
    seen["an account's e-mail from an exit is refused"] = code in (
        "permissionserrors", "torblock-blocked", "editgate-blocked", "editgate-require-login")

    w.create_user(f"Peer{n}admin", sysop=True)
    admin = Browser(w, CLEAN).login(f"Peer{n}admin")
    html = admin.get(f"/index.php?title=Special:Block/{ONIONOO_EXIT}")
    seen["Special:Block says the address is a Tor exit"] = bool(
        re.search(r'class="mw-torblock-isexitnode"', html)
        or re.search(r'class="mw-editgate-address">[^<]*tor', html))

    def autoblocks():
        r = admin.api(action="query", list="blocks", bkprop="id|flags", bklimit="max")
        return sum(1 for b in r["query"]["blocks"] if b.get("automatic"))

    def block_autoblocks(name):
        before = autoblocks()
        r = admin.api(action="block", user=name, expiry="1 day", autoblock="1", token=admin.token())
        expect("block" in r, r)
        return autoblocks() > before

    seen["blocking the account autoblocks the exit"] = block_autoblocks(f"Peer{n}new")
    w.create_user(f"Peer{n}clean", registered_days_ago=400, edits=500)
    # An address of each side's own: the first side's autoblock holds it.
    r = Browser(w, "198.18.8.1" if side == "TorBlock" else "198.18.8.2").login(f"Peer{n}clean").edit(f"Peer {n} cleanacct", "x")
    expect(saved(r), r)
    seen["blocking an account that edited from elsewhere autoblocks"] = block_autoblocks(f"Peer{n}clean")

    w.configure(temp_accounts=True, **settings)
    temp = Browser(w, CLEAN)
    temp.web_save(f"Peer {n} temp start", "a temporary account")
    seen["a temporary account edits from an exit"] = saved(temp.edit(f"Peer {n} temp", "x", xff=ONIONOO_EXIT))
    w.configure()
    return seen


def test_torblock_and_the_torblock_policy_agree(w):
    if not w.torblock:
        print("     skipped: ../shared/third_party has no TorBlock for this release", flush=True)
        return
    peer = w.start_torblock_editgate()
    if w.abusefilter:
        # A filter written for TorBlock; saved while TorBlock defines its variable.
        w.configure(enabled=False, torblock=True)
        w.create_user("Peerfilteradmin", sysop=True)
        abuse_filter(w, Browser(w).login("Peerfilteradmin"), "tor_exit_node", "af-peer-tor")
    fetched, decided = w.onionoo.requests, peer.metric("editgate_decisions_total")
    outcomes = {side: observe(w, side, settings) for side, settings in sides(w, peer).items()}
    # Each side did its own work: TorBlock fetched the list, EditGate asked its editgate.
    expect(w.onionoo.requests > fetched, "TorBlock never asked Onionoo: it was not the one deciding")
    expect(peer.metric("editgate_decisions_total") > decided, "EditGate never asked the torblock editgate")

    print(f"     {'':<62} TorBlock  EditGate", flush=True)
    differ = []
    for what, tb in outcomes["TorBlock"].items():
        eg = outcomes["EditGate"][what]
        known = KNOWN_DIFFERENCES.get((w.branch, what))
        note = "  (known difference)" if known else ""
        print(f"     {what:<62} {'yes' if tb else 'no':<9} {'yes' if eg else 'no'}{note}", flush=True)
        if known:
            expect(known == {"TorBlock": tb, "EditGate": eg}, f"{what}: not the known difference {known}")
        elif tb != eg:
            differ.append(what)
    expect(not differ, f"TorBlock and EditGate differ: {differ}")
    # What TorBlock's defaults are known to do, so that agreeing on nothing cannot pass.
    tb = outcomes["TorBlock"]
    expect(not tb["an anonymous edit from an exit is saved"] and tb["a new account's edit from an exit is saved"]
           and tb["... and is tagged tor "] and not tb["a new account is autoconfirmed on an exit"]
           and tb["an anonymous edit from a relay that is not an exit is saved"], tb)
