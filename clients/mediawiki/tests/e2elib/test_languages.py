"""The refused editor: a message in their language that fits who they are, and a reference to
appeal with."""

import re

from .wiki import (TOR_EXIT, Browser, expect, permission_box, refusal)

# The shipped policy's tor-anon message in three of the shipped languages: German, Persian
# (right to left) and simplified Chinese.
IN_LANGUAGE = {
    "de": "Bearbeiten über Tor ohne Benutzerkonto ist in diesem Wiki nicht möglich.",
    "fa": "ویرایش این ویکی از طریق تور بدون حساب کاربری ممکن نیست.",
    "zh-hans": "本 wiki 不允许未登录账号通过 Tor 编辑。",
}
APPEAL = {"de": "kannst du Einspruch einlegen", "fa": "درخواست تجدیدنظر کنید", "zh-hans": "可以提出申诉"}
LOGIN = {"de": "Melde dich an", "fa": "وارد شوید", "zh-hans": "登录"}

# A rule the tests add: require-login for every account kind from a range (so each kind
# reads its own variant of the shipped message editgate-range-login).
RANGE = "198.18.202.0/24"
IN_RANGE = "198.18.202.9"


def test_a_refusal_is_in_the_editors_language(w):
    for lang, text in IN_LANGUAGE.items():
        html = Browser(w, TOR_EXIT).web_save("Language page", "hello", lang=lang)
        box = permission_box(html)
        expect(text in box, f"{lang}: the refusal is not in the language: {box}")
        # A new page asks `edit` and `create`: one refusal, one reference, read once.
        expect(box.count(text) == 1, f"{lang}: the refusal is on the page more than once: {box}")
        expect(APPEAL[lang] in box and LOGIN[lang] in box, f"{lang}: the appeal or login line is not: {box}")
        expect("⧼" not in html, f"{lang}: a raw message key on the page")
        if lang == "fa":
            expect(re.search(r'<html[^>]*dir="rtl"', html), "the Persian page is not right to left")
        # The API answers in the language asked for too, with the same code (in the current
        # error format: the old one is English only).
        r = Browser(w, TOR_EXIT).api(action="edit", title="Language page", text="x", token="+\\",
                                     errorformat="plaintext", uselang=lang)
        err = r["errors"][0]
        expect(err["code"] == "editgate-require-login" and text in err["text"],
               f"{lang}: the API refusal is not in the language: {r}")


def test_require_login_fits_the_account_kind(w):
    w.add_rule(f'[[rule]]\nid = "e2e-range-login"\nverdict = "require-login"\nmessage = "editgate-range-login"\n'
               f'when.ip = ["{RANGE}"]\n', "e2e-range-login", IN_RANGE)
    try:
        anon = permission_box(Browser(w, IN_RANGE).web_save("Kind page", "x"))
        expect("Editing without an account from your network is restricted" in anon, anon)
        expect("Special:UserLogin" in anon and "Special:CreateAccount" in anon, f"no login links: {anon}")
        w.create_user("Kindregistered")
        reg = permission_box(Browser(w, IN_RANGE).login("Kindregistered").web_save("Kind page", "x"))
        expect("this account does not qualify to edit from it yet" in reg, reg)
        expect("without an account" not in reg, f"a logged-in editor is told they have no account: {reg}")
        expect("Special:UserLogin" not in reg, f"a logged-in editor is asked to log in: {reg}")
        w.configure(temp_accounts=True)
        try:
            b = Browser(w)
            b.web_save("Temporary kind page", "a temporary account")
            temp = permission_box(b.web_save("Kind page", "x", xff=IN_RANGE))
            expect("Editing with a temporary account from your network is restricted" in temp, temp)
            expect("Special:CreateAccount" in temp, f"no link to create an account: {temp}")
        finally:
            w.configure()
    finally:
        w.remove_rule("e2e-range-login", IN_RANGE)


def test_every_refusal_carries_one_reference(w):
    # The API error's data, the page the editor reads, the log channel and editgate's decision
    # log all name the same request, rule and time.
    r = Browser(w, TOR_EXIT).edit("Reference page", "x")
    eg = refusal(r, "editgate-require-login")
    expect(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", eg["time"]), f"no time in {eg}")
    expect(eg["requestId"] and eg["requestId"] in r["error"]["info"], f"the reference is not in the text: {r}")
    expect(f'reference {eg["requestId"]} tor-anon {eg["time"]}' in w.channel_log(), "the log channel lacks it")
    # A new page: `edit` and `create` are asked, each logged with the request's id.
    logged = [l for l in w.decision_log() if l.get("request_id") == eg["requestId"]]
    expect(logged and all(l["rule_id"] == "tor-anon" for l in logged), f"the decision log lacks it: {logged}")
    box = permission_box(Browser(w, TOR_EXIT).web_save("Reference page", "x"))
    m = re.search(r"If you appeal, include this reference: <code>([^<]+)</code> \(rule tor-anon, ([0-9T:Z-]+)\)", box)
    expect(m, f"no reference on the page: {box}")
    expect(f"reference {m.group(1)} tor-anon {m.group(2)}" in w.channel_log(), "the page's reference is not logged")
    expect(any(l.get("request_id") == m.group(1) for l in w.decision_log()), "the page's reference is not in editgate's log")
