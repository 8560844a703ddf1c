"""IPReputation's AbuseFilter variables, filled by the extension from the reputation in
editgate's answers (Spur's feed; tests/fixtures/spur): a wiki's filters written for
IPReputation keep working with it off."""
from .wiki import CLEAN, SPUR_VPN, Browser, abuse_filter, expect, saved


def test_ipreputation_filters_decide_from_editgates_answer(w):
    if not w.abusefilter:
        print("     skipped: ../shared/third_party has no AbuseFilter for this release", flush=True)
        return
    # editgate itself lets these edits through (its one rule on the feed is in shadow mode):
    # the filter decides.
    expect(w.editgate.probe(SPUR_VPN)["verdict"] == "VERDICT_ALLOW", "editgate refused the feed's address itself")
    w.create_user("Repfilteradmin", sysop=True)
    admin = Browser(w).login("Repfilteradmin")
    protected = w.branch != "1_39"  # AbuseFilter has protected variables from 1.43
    before = filters(admin)
    if protected:
        # IPReputation's variables are protected: a filter that is not cannot use them.
        abuse_filter(w, admin, 'ip_reputation_risk_types contains "TUNNEL"', "af-unprotected")
        expect(filters(admin) == before, "a public filter was saved on a protected IPReputation variable")
    abuse_filter(w, admin, 'ip_reputation_tunnel_operators contains "NORD_VPN" & ip_reputation_client_count > 10 '
                 '& ip_reputation_ipoid_known', "af-nordvpn", disallow=True, protected=protected)
    expect(filters(admin) == before + 1, "the filter on IPReputation's variables was not saved")

    anon = Browser(w, SPUR_VPN)
    r = anon.edit("Reputation anonymous", "from a VPN exit")
    expect(not saved(r) and (r.get("error") or {}).get("code") == "abusefilter-disallowed",
           f"the filter did not stop an anonymous edit from a NORD_VPN exit: {r}")
    expect(saved(Browser(w, CLEAN).edit("Reputation clean", "from a clean address")),
           "the filter stopped an edit from an address no feed holds")
    # As IPReputation: registered accounts get no reputation, so the filter lets them edit.
    w.create_user("Repregistered", registered_days_ago=400, edits=500)
    member = Browser(w, SPUR_VPN).login("Repregistered")
    expect(saved(member.edit("Reputation registered", "from a VPN exit")),
           "the filter stopped a registered account: its reputation variables must be null")


def filters(admin):
    r = admin.api(action="query", list="abusefilters", abflimit="max", abfprop="id")
    return len(r["query"]["abusefilters"])
