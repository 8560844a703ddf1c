"""`e2e --bench`: what the extension adds to an edit and a page view."""

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


CALL_TIME = r"answered allow \(default\) for edit by anonymous in ([\d.]+) ms"


def bench(w, n):
    """Times `n` anonymous API edits of an existing page from a clean address, with the
    extension on and off (interleaved in blocks of 20, so drift hits both alike), and the
    editgate calls themselves from the extension's log channel."""
    b = Browser(w)
    b.edit("Bench page", "start")
    times = {True: [], False: []}
    for block in range(n // 20):
        for enabled in (True, False):
            w.configure(enabled=enabled)
            for i in range(20):
                t = time.monotonic()
                r = b.api(action="edit", title="Bench page", text=f"{enabled} {block} {i}", token="+\\")
                times[enabled].append((time.monotonic() - t) * 1000)
                expect(saved(r), r)
    w.configure()
    calls = [float(m) for m in re.findall(CALL_TIME, w.channel_log())][-n:]

    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

    print(f"{n} anonymous API edits of an existing page from a clean address (ms):")
    for label, xs in (("extension on ", times[True]), ("extension off", times[False]),
                      ("editgate call", calls)):
        print(f"  {label}: p50 {pct(xs, 50):7.3f}  p99 {pct(xs, 99):7.3f}  mean {statistics.mean(xs):7.3f}")
    print(f"  added (on - off): p50 {pct(times[True], 50) - pct(times[False], 50):+.3f}, "
          f"p99 {pct(times[True], 99) - pct(times[False], 99):+.3f}")

    # The same edits and calls over TCP and over the Unix-domain socket, interleaved.
    by = {"tcp": ([], []), "unix socket": ([], [])}
    for block in range(n // 20):
        for how in by:
            w.configure(socket=w.editgate_socket if how == "unix socket" else None)
            before = len(re.findall(CALL_TIME, w.channel_log()))
            for i in range(20):
                t = time.monotonic()
                r = b.api(action="edit", title="Bench page", text=f"{how} {block} {i}", token="+\\")
                by[how][0].append((time.monotonic() - t) * 1000)
                expect(saved(r), r)
            by[how][1].extend(float(m) for m in re.findall(CALL_TIME, w.channel_log())[before:])
    w.configure()
    print(f"{n} anonymous API edits each over TCP and over the Unix-domain socket (ms):")
    for how, (edits, calls) in by.items():
        print(f"  {how:<11}: edit p50 {pct(edits, 50):7.3f}  p99 {pct(edits, 99):7.3f};  "
              f"call p50 {pct(calls, 50):6.3f}  p99 {pct(calls, 99):6.3f}  mean {statistics.mean(calls):6.3f}")

    # Autopromotion: a logged-in reader's page views, the hook on and off (it asks editgate
    # whenever MediaWiki computes the reader's groups and there is a group to give).
    w.create_user("Benchreader", registered_days_ago=400, edits=500)
    reader = Browser(w).login("Benchreader")
    views = {True: [], False: []}
    for block in range(n // 20):
        for on in (True, False):
            w.configure(extra=[f"$wgEditGateAutopromote = {'true' if on else 'false'};"])
            for i in range(20):
                t = time.monotonic()
                html = reader.get("/index.php?title=Bench_page")
                views[on].append((time.monotonic() - t) * 1000)
                expect("Benchreader" in html, "not logged in")
    w.configure()
    print(f"{n} page views by a logged-in account, autopromotion hook on and off (ms):")
    for label, xs in (("hook on ", views[True]), ("hook off", views[False])):
        print(f"  {label}: p50 {pct(xs, 50):7.3f}  p99 {pct(xs, 99):7.3f}  mean {statistics.mean(xs):7.3f}")
    print(f"  added (on - off): p50 {pct(views[True], 50) - pct(views[False], 50):+.3f}, "
          f"p99 {pct(views[True], 99) - pct(views[False], 99):+.3f}")

