"""`e2e --bench`: what the extension adds to an edit and to a page view, against TorBlock in
the same wiki and run, with APCu as the object cache and without one."""

import collections
import os
import re
import statistics
import time

from .wiki import (CLEAN, TORBLOCK_SETTINGS, Browser, expect, saved)

BLOCK = 20  # requests of one side before the next side's turn
SAMPLE_MS = 0.05  # Excimer's period (wiki.EXCIMER)
CALL_TIME = r"answered allow \(default\) for edit by anonymous in ([\d.]+) ms"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def sides(w):
    """Each configuration measured: the extension off, TorBlock alone, EditGate alone on the
    TorBlock migration policy (over TCP and over the Unix socket). Autopromotion is on for
    both (TorBlock's settings and $wgEditGateAutopromote); the EditGate channel logs errors
    only, as TorBlock's logs nothing."""
    peer = w.start_torblock_editgate()
    errors = os.path.join(w.tmp, "bench-errors.log")
    # Jobs run apart, as on a production wiki, not at the end of a random request.
    quiet = ["$wgJobRunRate = 0;"]
    eg = dict(url=peer.http, errors_to=errors, extra=quiet + ["$wgEditGateAutopromote = true;"])
    return {
        "off": dict(enabled=False, extra=quiet),
        "TorBlock": dict(enabled=False, torblock=True, extra=quiet + TORBLOCK_SETTINGS),
        "EditGate": eg,
        "EditGate, socket": dict(eg, socket=peer.socket),
    }


def interleaved(w, configs, n, request, profile=None):
    """`n` timed requests per configuration, in turns of BLOCK, each round in a rotated order
    (so drift, and whatever the previous turn left behind, hits all alike), after a turn each
    to warm up; with `profile`, each side's Excimer profiles go to `profile`-<side>.folded.
    Returns {side: [ms]}."""
    times = {side: [] for side in configs}
    order = list(configs.items())
    for block in range(-1, n // BLOCK):
        shift = max(block, 0) % len(order)
        for side, settings in order[shift:] + order[:shift]:
            out = f"{profile}-{side.replace(' ', '').replace(',', '-')}.folded" if profile else None
            w.configure(**settings, profile=out if block >= 0 else None)
            for i in range(BLOCK):
                t = time.monotonic()
                request(f"{side} {block} {i}")
                if block >= 0:
                    times[side].append((time.monotonic() - t) * 1000)
    w.configure()
    return times


def report(title, times):
    print(title, flush=True)
    off = times["off"]
    for side, xs in times.items():
        added = "" if side == "off" else (
            f"   added p50 {pct(xs, 50) - pct(off, 50):+6.3f}  p99 {pct(xs, 99) - pct(off, 99):+7.3f}")
        print(f"  {side:<17} p50 {pct(xs, 50):7.3f}  p99 {pct(xs, 99):7.3f}  mean {statistics.mean(xs):7.3f}{added}",
              flush=True)


def edits_and_views(w, n, profile=None):
    configs = sides(w)
    anon = Browser(w, CLEAN)
    anon.edit("Bench page", "start")

    def edit(text):
        r = anon.api(action="edit", title="Bench page", text=text, token="+\\")
        expect(saved(r), r)

    report(f"{n} anonymous API edits of an existing page from a clean address, each side (ms):",
           interleaved(w, configs, n, edit, profile and f"{profile}-edit"))

    # A logged-in reader whom autopromotion would give autoconfirmed, below TorBlock's Tor
    # thresholds: TorBlock looks the address up, EditGate asks editgate (or its cache).
    name = f"Benchreader{int(time.monotonic() * 1000)}"
    w.create_user(name, registered_days_ago=5, edits=3)
    reader = Browser(w, CLEAN).login(name)

    def view(_):
        html = reader.get("/index.php?title=Bench_page")
        expect(name in html, "not logged in")

    report(f"{n} page views by a logged-in account, autopromotion on, each side (ms):",
           interleaved(w, configs, n, view, profile and f"{profile}-view"))


def calls(w, n):
    """The editgate call itself, from the extension's log channel, over TCP and the socket."""
    peer = w.start_torblock_editgate()
    anon = Browser(w, CLEAN)
    print(f"{n} editgate calls from the extension (its log channel), ms:", flush=True)
    for how, socket in (("tcp", None), ("unix socket", peer.socket)):
        w.configure(url=peer.http, socket=socket)
        before = len(re.findall(CALL_TIME, w.channel_log()))
        for i in range(n):
            expect(saved(anon.api(action="edit", title="Bench page", text=f"call {how} {i}", token="+\\")), how)
        xs = [float(m) for m in re.findall(CALL_TIME, w.channel_log())[before:]]
        print(f"  {how:<11}: p50 {pct(xs, 50):6.3f}  p99 {pct(xs, 99):6.3f}  mean {statistics.mean(xs):6.3f}"
              f"  ({len(xs) / n:.2f} calls an edit)", flush=True)
    w.configure()


def summarize(folded, top=10):
    """Per request of a side's Excimer profiles (0.05 ms wall-clock samples): the time in
    EditGate's classes and in TorBlock's, and the functions most often on top of the stack
    under EditGate's, over all requests."""
    requests = []
    leaves = collections.Counter()
    with open(folded) as f:
        for line in f:
            if line.startswith("# request"):
                requests.append([0, 0, 0])
                continue
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not requests or not count.isdigit():
                continue
            count = int(count)
            frames = stack.split(";")
            requests[-1][0] += count
            if any("EditGate\\" in fr for fr in frames):
                requests[-1][1] += count
                leaves[frames[-1]] += count
            if any("TorBlock\\" in fr for fr in frames):
                requests[-1][2] += count
    return requests, leaves.most_common(top)


def profile_report(prefix):
    """Each side's profiles under `prefix`: ms a request in all, in EditGate, in TorBlock."""
    base = os.path.dirname(prefix)
    for name in sorted(os.listdir(base)):
        if not (name.startswith(os.path.basename(prefix)) and name.endswith(".folded")):
            continue
        requests, leaves = summarize(os.path.join(base, name))
        ms = [[c * SAMPLE_MS for c in r] for r in requests]
        line = f"  {name} ({len(ms)} requests): sampled p50 {pct([r[0] for r in ms], 50):.2f} ms"
        for label, i in (("EditGate", 1), ("TorBlock", 2)):
            xs = [r[i] for r in ms]
            if any(xs):
                line += (f"; in {label} p50 {pct(xs, 50):.3f} p99 {pct(xs, 99):.3f}"
                         f" mean {statistics.mean(xs):.3f} ms")
        print(line, flush=True)
        total = sum(r[1] for r in requests) or 1
        for leaf, count in leaves:
            print(f"      {100 * count / total:5.1f}%  {leaf}", flush=True)


def bench(w, n, profile=False):
    if not w.torblock:
        print("../shared/third_party has no TorBlock for this release: no peer to measure against")
        return
    for apcu in (True, False):
        w.stop_php()
        w.start_php(apcu=apcu)
        print(f"--- MediaWiki {w.version}, {'APCu as the object cache' if apcu else 'no object cache'}", flush=True)
        edits_and_views(w, n)
        calls(w, n)
        if profile:
            prefix = os.path.join(w.tmp, f"excimer-{'apcu' if apcu else 'none'}")
            edits_and_views(w, max(BLOCK, n // 2 // BLOCK * BLOCK), prefix)
            print("Excimer, wall-clock time sampled every 0.05 ms, per request:", flush=True)
            profile_report(prefix)
