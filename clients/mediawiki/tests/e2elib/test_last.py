"""Run last: no deprecation notice from the extension in everything the other tests did."""

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

from .wiki import *  # noqa: F401,F403


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

