"""Run last, over everything the other tests did: no address in any log, no deprecation
notice from the extension."""

import glob
import os

from .test_languages import IN_RANGE
from .wiki import (CLEAN, EXTENSION, HARD_BLOCKED, MARKUP_ADDRESS, ONIONOO_EXIT, TOR_EXIT, VPN_ADDRESS,
                   Browser, expect)


def test_no_address_in_logs(w):
    # The wiki's EditGate channel, every editgate's stderr, the decision log: after all the
    # other tests, and one refusal more (logged by both sides) when run alone.
    Browser(w, TOR_EXIT).edit("Logged refusal", "x")
    logs = [w.log, w.decisions] + glob.glob(os.path.join(w.tmp, "editgate-*.stderr"))
    text = ""
    for path in logs:
        with open(path) as f:
            text += f.read()
    expect("editgate refused edit" in text and '"rule_id":"tor-anon"' in text, f"nothing was logged: {logs}")
    for ip in (TOR_EXIT, VPN_ADDRESS, CLEAN, MARKUP_ADDRESS, HARD_BLOCKED, IN_RANGE, ONIONOO_EXIT):
        expect(ip not in text, f"{ip} is written in a log")


def test_no_deprecation_notices_from_the_extension(w):
    # Run last: every request above had $wgDevelopmentWarnings on. First a canary proves that
    # a deprecation does reach the log.
    w.configure(extra=["$wgHooks['BeforePageDisplay'][] = static function () { "
                       "wfDeprecated( 'the e2e canary', '1.0', 'Canary' ); };"])
    try:
        Browser(w).get("/index.php?title=Main_Page")
    finally:
        w.configure()
    lines = []
    for log in (w.deprecated, os.path.join(w.tmp, "php.log")):
        try:
            lines += [l for l in open(log).read().splitlines() if "eprecated" in l]
        except FileNotFoundError:
            pass
    expect(any("e2e canary" in l for l in lines), "deprecations are not logged: the check would see nothing")
    # The extension's files, or its classes as a caller; not a path that merely names editgate.
    ours = [l for l in lines if "e2e canary" not in l and (EXTENSION in l or "Extension\\EditGate" in l)]
    expect(not ours, "deprecated API used by the extension:\n" + "\n".join(ours[:10]))

