#!/usr/bin/python3
"""rehearse_check.py - contrib/rehearse.sh's judge: checks the stores against what the
applications saw acknowledged, and writes the report and the timeline. Debian's python3 with
botocore and matplotlib.

  rehearse_check.py --dir OUT --target nfs|s3 --scenario S --hosts K --s3-url URL
                    --bucket B --nfs-url URL --export DIR [--title T]
  rehearse_check.py --sum OUT/finish/summary.json OUT/revert/summary.json

Reads OUT/manifest.json, OUT/h*/app.jsonl, OUT/events.jsonl, OUT/samples.jsonl and the
ferryctl status captures OUT/h*/status-*.txt; writes OUT/report.txt, OUT/timeline.png,
OUT/summary.json and prints the report, ending with the line
  rehearsal: N acknowledged operations, L lost, E unexpected errors, C conflicts kept
Exit 1 when a check fails.

The final store is read with clients that are not ferryfs: after finish, nfs-cat (libnfs)
for every path an application touched and the export's backing directory for the rest;
after revert, botocore (GET for touched paths, the listing's ETag = MD5 for the rest).
"""
import argparse
import bisect
import collections
import concurrent.futures
import glob
import hashlib
import json
import os
import re
import subprocess
import sys

CONFLICT_RE = re.compile(r"^(.*)\.conflict-s3-[0-9a-f]{8}$")

# Errors an application may see, with where the runbook (doc/runbook.md) says so. Each is
# expected only on the host and in the time window of the fault that explains it.
DOCUMENTED = {
    "revert": ({"EROFS"}, "revert: the mount refuses changes with EROFS (runbook 5)"),
    "kill": ({"ENOTCONN", "EROFS", "ENOENT", "ECONNABORTED"},
             "daemon killed: ENOTCONN until unmounted (runbook 6, 'The daemon died'), then "
             "the empty read-only mount point until mounted again (ENOENT, EROFS)"),
    "cut": ({"EIO", "ETIMEDOUT", "ENOTCONN", "EHOSTUNREACH", "EndpointConnectionError",
             "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"},
            "host cut off: S3-only files fail with EIO after the client's retries, "
            "NFS calls fail (runbook 6, 'S3 down', 'NFS down')"),
    "nfs": ({"EIO", "ETIMEDOUT"}, "NFS restarted: calls may fail with EIO (runbook 6, 'NFS down')"),
    "s3": ({"EIO", "ServiceUnavailable", "SlowDown", "503", "ConnectionClosedError",
            "EndpointConnectionError", "ReadTimeoutError"},
           "S3 errors: EIO after the retries (runbook 6, 'S3 down'); botocore gives up "
           "after its retries likewise"),
    "estale": ({"ESTALE"}, "a file replaced in S3 under an open handle: ESTALE, never mixed "
               "content (ferryfs(8), spec 5)"),
}
SLACK = 8.0     # seconds after a fault's end during which its errors are still its own


def jl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def pct(v, p):
    if not v:
        return 0.0
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def fault_windows(events, hosts):
    """[(kind, host or None, t_start, t_end)] from the story's events."""
    win = []
    open_ = {}
    for e in events:
        lab, k, t = e["label"], e["kind"], e["t"]
        m = re.match(r"h(\d+)", lab)
        h = "h" + m.group(1) if m else None
        if k == "fault":
            if "nfs-ganesha" in lab:
                open_["nfs"] = ("nfs", None, t)
            elif "S3 503" in lab:
                open_["s3"] = ("s3", None, t)
            elif "killed" in lab:
                open_["kill"] = ("kill", h, t)
            elif "cut off" in lab:
                open_["cut"] = ("cut", h, t)
        elif k == "fault-end":
            key = ("nfs" if "nfs-ganesha" in lab else "s3" if "S3" in lab else
                   "kill" if "remounted" in lab else "cut")
            if key in open_:
                kind, hh, t0 = open_.pop(key)
                win.append((kind, hh, t0, t + SLACK))
        elif k == "revert":
            open_["revert" + (h or "")] = ("revert", h, t)
        elif k == "roll" and "back on S3" in lab and ("revert" + (h or "")) in open_:
            kind, hh, t0 = open_.pop("revert" + h)
            win.append((kind, hh, t0, t + SLACK))
    for kind, hh, t0 in open_.values():
        win.append((kind, hh, t0, 1e18))
    return win


def classify(err, windows):
    """The DOCUMENTED key that explains this error, or None."""
    code = err.get("err", "")
    if code == "ESTALE" and err["op"] == "read":
        return "estale"
    for kind, h, t0, t1 in windows:
        if h is not None and h != err["host"]:
            continue
        if err["t"] < t0 or err["t0"] > t1:
            continue
        if code in DOCUMENTED[kind][0]:
            return kind
    return None


class Store:
    """The final store, read without ferryfs."""

    def __init__(self, a):
        self.a = a
        self.names = {}      # path -> md5 (s3) or None (nfs): what exists
        if a.target == "s3":
            import botocore.session
            from botocore.config import Config
            s = botocore.session.get_session()
            self.c = s.create_client(
                "s3", endpoint_url=a.s3_url, region_name="us-east-1",
                aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "S3RVER"),
                aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "S3RVER"),
                config=Config(s3={"addressing_style": "path"}, max_pool_connections=16))
            tok = None
            while True:
                kw = {"Bucket": a.bucket}
                if tok:
                    kw["ContinuationToken"] = tok
                r = self.c.list_objects_v2(**kw)
                for o in r.get("Contents", []):
                    self.names[o["Key"]] = o["ETag"].strip('"')
                if not r.get("IsTruncated"):
                    break
                tok = r["NextContinuationToken"]
        else:
            for d, _dirs, files in os.walk(a.export):
                for f in files:
                    p = os.path.relpath(os.path.join(d, f), a.export)
                    self.names[p] = None
            base, _, q = a.nfs_url.partition("?")
            self.base, self.q = base.rstrip("/"), ("?" + q if q else "")

    def sha(self, p):
        """sha256 of path p read with an independent client, None when absent."""
        if p not in self.names:
            return None
        if self.a.target == "s3":
            try:
                body = self.c.get_object(Bucket=self.a.bucket, Key=p)["Body"].read()
            except Exception:
                return None
            return hashlib.sha256(body).hexdigest()
        r = subprocess.run(["nfs-cat", "%s/%s%s" % (self.base, p, self.q)],
                           capture_output=True, timeout=120)
        if r.returncode:
            return None
        return hashlib.sha256(r.stdout).hexdigest()

    def intact(self, p, meta):
        """An untouched seeded file: present with its bytes."""
        if p not in self.names:
            return False
        if self.a.target == "s3":
            return self.names[p] == meta[2]
        try:
            with open(os.path.join(self.a.export, p), "rb") as f:
                return hashlib.sha256(f.read()).hexdigest() == meta[1]
        except OSError:
            return False


def check(a):
    d = a.dir
    man = json.load(open(os.path.join(d, "manifest.json")))
    seeded = man["files"]
    events = sorted(jl(os.path.join(d, "events.jsonl")), key=lambda e: e["t"])
    samples = jl(os.path.join(d, "samples.jsonl"))
    recs = []
    for f in sorted(glob.glob(os.path.join(d, "h*", "app.jsonl"))):
        recs += jl(f)
    recs.sort(key=lambda r: r["t"])
    t_start = events[0]["t"] if events else (recs[0]["t0"] if recs else 0)

    # --- per path: the mutations, acknowledged or attempted ------------------------------
    ops = collections.defaultdict(list)     # path -> [(t0, t, sha or None, acked, host)]
    for p, meta in seeded.items():
        ops[p].append((0.0, 0.0, meta[1], True, "seed", "seed"))
    for r in recs:
        if r["op"] == "write":
            ops[r["path"]].append((r["t0"], r["t"], r.get("sha"), r["ok"], r["host"], r["mode"]))
        elif r["op"] == "delete":
            ops[r["path"]].append((r["t0"], r["t"], None, r["ok"], r["host"], r["mode"]))
        elif r["op"] == "rename":
            ops[r["path"]].append((r["t0"], r["t"], None, r["ok"], r["host"], r["mode"]))
            ops[r["dst"]].append((r["t0"], r["t"], r.get("sha"), r["ok"], r["host"], r["mode"]))
    acked = [r for r in recs if r["ok"]]
    touched = {p for p, o in ops.items() if len(o) > 1 or o[0][4] != "seed"}

    store = Store(a)
    siblings = collections.defaultdict(list)
    strays = []
    for p in store.names:
        m = CONFLICT_RE.match(p)
        if m:
            siblings[m.group(1)].append(p)
        elif p not in ops and not p.endswith("/"):
            strays.append(p)
    want = sorted(touched | {s for v in siblings.values() for s in v})
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        got = dict(zip(want, ex.map(store.sha, want)))

    lost, back, wrong, kept, bad_sib, known = [], [], [], [], [], []
    # when each path was first migrated by a mount (the daemons' logs and ledgers are not
    # read: a path is taken as possibly migrated once any mount was up before the delete)
    first_mount = min([e["t"] for e in events if e["kind"] == "roll" and "onto" in e["label"]]
                      or [1e18])

    def migrated_before(p, t):
        return t >= first_mount
    for p, o in ops.items():
        if p not in touched:
            if not store.intact(p, seeded[p]):
                lost.append((p, "a seeded file, never changed by an application, is missing "
                                 "or differs"))
            continue
        o.sort(key=lambda x: x[1])
        done = [x for x in o if x[3]]
        if not done:        # only failed attempts: absent, or what one of them wrote
            if got.get(p) not in {x[2] for x in o} | {None}:
                wrong.append((p, "holds bytes no application wrote"))
            continue
        last = done[-1]
        cands = [x for x in o if x is last or x[1] >= last[0]]
        allowed = {x[2] for x in cands}
        cur = got.get(p)
        sib = {got.get(s) for s in siblings.get(p, [])}
        if cur in allowed and (last[2] is None or cur == last[2] or last[2] in sib):
            continue
        if cur in allowed:
            continue        # a concurrent change landed last: either order is correct
        if last[2] is not None and last[2] in sib and cur is not None:
            continue        # a conflict: the last write kept beside the name (counted below)
        if (last[2] is None and last[5] == "s3" and a.target == "nfs"
                and migrated_before(p, last[0])):
            # an old host deleted the object in S3 after a mount had migrated it: the
            # copy stays (doc/migration.md, "Not handled": deletions are not revalidated)
            known.append((p, "deleted in S3 by old host %s at %.1f s after its migration; "
                          "the NFS copy stayed" % (last[4], last[1] - t_start)))
        elif last[2] is None:
            back.append((p, "deleted at %.1f s by %s (%s), present again" %
                         (last[1] - t_start, last[4], last[5])))
        elif cur is None:
            lost.append((p, "written at %.1f s by %s (%s...), absent" %
                         (last[1] - t_start, last[4], last[2][:12])))
        else:
            prev = [x for x in o if x[2] == cur]
            why = ("an older version (%s at %.1f s)" % (prev[-1][4], prev[-1][1] - t_start)
                   if prev else "bytes no application wrote")
            wrong.append((p, "last written at %.1f s by %s (%s...); holds %s" %
                          (last[1] - t_start, last[4], last[2][:12], why)))
    for p, sibs in siblings.items():
        vers = {x[2] for x in ops.get(p, [])}
        for s in sibs:
            if got.get(s) in vers:
                if p in store.names:
                    kept.append((p, s))
                elif not any(x[2] is None and x[3] for x in ops.get(p, [])):
                    bad_sib.append((s, "a conflict copy whose name is gone"))
                else:
                    kept.append((p, s))
            else:
                bad_sib.append((s, "a conflict copy with bytes no application wrote to %s" % p))

    # conflicts listed by ferryctl status
    status = ""
    for f in glob.glob(os.path.join(d, "h*", "status-*.txt")):
        status += open(f, errors="replace").read()
    truncated = "more" in status
    unlisted = [p for p, _s in kept if ("/" + p) not in status and p not in status]
    if truncated:
        unlisted = []

    # --- errors -------------------------------------------------------------------------
    windows = fault_windows(events, a.hosts)
    errs = [r for r in recs if not r["ok"]]
    expected = collections.Counter()
    unexpected = []
    for r in errs:
        k = classify(r, windows)
        if k:
            expected[(k, r["err"])] += 1
        else:
            unexpected.append(r)
    markers = [p for p in store.names if a.target == "nfs" and "/.ferryfs" in "/" + p]
    run_errors = []
    try:
        run_errors = [l.strip() for l in open(os.path.join(d, "run_errors.txt")) if l.strip()]
    except OSError:
        pass

    # --- report -------------------------------------------------------------------------
    phases = [e for e in events if e["kind"] == "phase"]
    lines = ["# ferryfs rehearsal: %s" % a.title, ""]
    if os.path.exists(os.path.join(d, "revert_at")):
        with open(os.path.join(d, "revert_at")) as f:
            lines.append("revert drawn at %s s of the story" % f.read().strip())
    lines.append("%-28s %7s %6s %8s %8s %9s %9s %8s %9s" % (
        "phase", "ops", "errors", "p50 ms", "p99 ms", "migrated", "journal", "lag s", "S3 req"))
    per_host = collections.defaultdict(list)
    for s in samples:
        per_host[s["host"]].append(s)
    nfiles = len(seeded)

    state_at = make_state_at(per_host, nfiles)

    def s3req(t0, t1):
        tot = 0.0
        for h, ss in per_host.items():
            prev = None
            for x in ss:
                v = x["stats"].get("s3_requests", 0)
                if t0 <= x["t"] <= t1 and prev is not None:
                    tot += v - prev if v >= prev else v
                prev = v
        return tot

    for i, ph in enumerate(phases):
        t0 = ph["t"]
        t1 = phases[i + 1]["t"] if i + 1 < len(phases) else 1e18
        rs = [r for r in recs if t0 <= r["t"] < t1]
        ok = [r["t"] - r["t0"] for r in rs if r["ok"]]
        tend = min(t1, max([r["t"] for r in recs] + [t0]))
        mig, pend, oldest = state_at(tend)
        maxpend = max([state_at(x["t"])[1] for x in samples if t0 <= x["t"] < t1] or [pend])
        lines.append("%-28s %7d %6d %8.1f %8.1f %8.0f%% %9d %8.0f %9d" % (
            ph["label"][:28], len(ok), len(rs) - len(ok), pct(ok, 50) * 1000, pct(ok, 99) * 1000,
            mig * 100, maxpend, oldest, s3req(t0, t1)))
    lines.append("(ops and errors: what the applications saw; latency of acknowledged operations; "
                 "migrated: files the mounts migrated, summed over hosts, of the %d seeded "
                 "(re-migrations count again); journal: most entries pending at once; lag: the "
                 "oldest pending entry's age at the phase's end; S3 req: ferryfs's own requests "
                 "from user.ferryfs.stats)" % nfiles)
    lines.append("")
    lines.append("events:")
    for e in events:
        if e["kind"] != "phase":
            lines.append("  %7.1f s  %-9s %s" % (e["t"] - t_start, e["kind"], e["label"]))
    lines.append("")
    by_op = collections.Counter(r["op"] for r in acked)
    by_mode = collections.Counter(r["mode"] for r in acked)
    lines.append("acknowledged: %s; by mode: %s" % (
        ", ".join("%s %d" % kv for kv in sorted(by_op.items())),
        ", ".join("%s %d" % kv for kv in sorted(by_mode.items()))))
    lines.append("checked in %s: %d paths touched by the applications (read back with %s), "
                 "%d untouched seeded files" % (
                     "NFS" if a.target == "nfs" else "S3", len(touched),
                     "nfs-cat" if a.target == "nfs" else "botocore",
                     nfiles - len(touched & set(seeded))))
    lines.append("expected errors (documented): %d" % sum(expected.values()))
    for (k, code), n in sorted(expected.items()):
        lines.append("  %5d %-24s %s" % (n, code, DOCUMENTED[k][1]))
    fails = []

    def fail(title, items):
        if items:
            fails.append(title)
            lines.append("FAIL %s: %d" % (title, len(items)))
            for it in items[:15]:
                lines.append("  %s" % (it if isinstance(it, str) else " - ".join(map(str, it))))

    fail("lost (acknowledged write absent)", lost)
    fail("wrong content (an acknowledged write replaced by an older one)", wrong)
    fail("deleted and back", back)
    if known:
        lines.append("KNOWN LIMITATION (not counted as a failure): %d deleted by an old host "
                     "after a mount migrated them, back on NFS after finish" % len(known))
        for it in known[:15]:
            lines.append("  %s - %s" % it)
    fail("unexpected application errors", ["%s %s %s %s at %.1f s: %s" % (
        r["host"], r["mode"], r["op"], r["path"], r["t"] - t_start, r.get("err"))
        for r in unexpected])
    fail("bad conflict copies", bad_sib)
    fail("conflicts not listed by ferryctl status", unlisted)
    fail("markers left on the export after finish", markers)
    fail("files nobody wrote", strays)
    fail("steps of the story that failed", run_errors)
    lines.append("conflicts kept (both versions, listed): %d%s" % (
        len(kept), "".join("\n  %s + %s" % (p, s.rsplit("/", 1)[1]) for p, s in kept[:10])))
    nlost = len(lost) + len(wrong) + len(back)
    lines.append("result: %s" % ("PASS" if not fails else "FAIL (" + "; ".join(fails) + ")"))
    lines.append("rehearsal: %d acknowledged operations, %d lost, %d unexpected errors, "
                 "%d conflicts kept" % (len(acked), nlost, len(unexpected), len(kept)))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(d, "report.txt"), "w") as f:
        f.write(text)
    summary = {"acked": len(acked), "lost": nlost, "unexpected": len(unexpected),
               "known_limitation": len(known),
               "conflicts": len(kept), "failed": bool(fails), "checks": fails}
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump(summary, f)
    try:
        plot(d, a.title, events, recs, per_host, nfiles, t_start, state_at)
    except Exception as e:          # the picture is an output, not a check
        print("timeline: %s" % e, file=sys.stderr)
    sys.stdout.write(text)
    return 1 if fails else 0


def make_state_at(per_host, nfiles):
    """t -> (migrated share, journal entries pending, oldest entry's age), over all hosts."""
    times = {h: [x["t"] for x in ss] for h, ss in per_host.items()}

    def state_at(t):
        mig = pend = oldest = 0.0
        for h, ss in per_host.items():
            i = bisect.bisect_right(times[h], t) - 1
            if i >= 0 and t - ss[i]["t"] < 30:
                st = ss[i]["stats"]
                pend += st.get("journal_pending", 0)
                oldest = max(oldest, st.get("journal_oldest_s", 0))
            if i >= 0:
                mig += ss[i]["stats"].get("migrated_files", 0)
        return min(1.0, mig / max(1, nfiles)), pend, oldest
    return state_at


def plot(d, title, events, recs, per_host, nfiles, t0, state_at):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not recs:
        return
    tmax = max(r["t"] for r in recs) - t0
    B = max(1.0, tmax / 120.0)
    nb = int(tmax / B) + 1
    xs = [i * B for i in range(nb)]
    thr = {m: [0] * nb for m in ("s3", "fs", "nfs")}
    errs = [0] * nb
    lat = [[] for _ in range(nb)]
    for r in recs:
        i = min(nb - 1, int((r["t"] - t0) / B))
        if r["ok"]:
            thr[r["mode"]][i] += 1.0 / B
            lat[i].append((r["t"] - r["t0"]) * 1000)
        else:
            errs[i] += 1.0 / B
    fig, ax = plt.subplots(4, 1, figsize=(13, 10), sharex=True,
                           gridspec_kw={"height_ratios": [1, 1.2, 1, 1]})
    # 1. migrated share
    ts = sorted({x["t"] for ss in per_host.values() for x in ss})
    mig = [state_at(t)[0] * 100 for t in ts]
    ax[0].fill_between([t - t0 for t in ts], mig, color="#4c9be8", alpha=0.5, step="post")
    ax[0].plot([t - t0 for t in ts], mig, color="#1f5fa8", drawstyle="steps-post")
    ax[0].set_ylim(0, 105)
    ax[0].set_ylabel("migrated\n% of files")
    # 2. throughput by mode, errors
    ax[1].stackplot(xs, thr["s3"], thr["fs"], thr["nfs"], step="post",
                    colors=["#f0a35e", "#5cb85c", "#9b7fd1"],
                    labels=["old hosts (S3 direct)", "rolled hosts (ferryfs)",
                            "plain NFS (after finish)"])
    ax[1].bar(xs, errs, width=B, align="edge", color="#d9534f", label="errors seen", alpha=0.9)
    ax[1].set_ylabel("app ops/s")
    ax[1].legend(loc="upper left", fontsize=8, ncol=4)
    # 3. p99 latency
    p99 = [pct(v, 99) if v else float("nan") for v in lat]
    p50 = [pct(v, 50) if v else float("nan") for v in lat]
    ax[2].plot(xs, p99, color="#c0392b", drawstyle="steps-post", label="p99")
    ax[2].plot(xs, p50, color="#7f8c8d", drawstyle="steps-post", label="p50")
    ax[2].set_yscale("log")
    ax[2].set_ylabel("app latency\nms (log)")
    ax[2].legend(loc="upper left", fontsize=8)
    # 4. journal lag and conflicts
    pend = [state_at(t)[1] for t in ts]
    conf = []
    for t in ts:
        c = 0
        for ss in per_host.values():
            v = [x for x in ss if x["t"] <= t]
            if v:
                c += v[-1]["stats"].get("conflicts", 0)
        conf.append(c)
    ax[3].plot([t - t0 for t in ts], pend, color="#8e44ad", drawstyle="steps-post",
               label="journal entries pending (all hosts)")
    ax3b = ax[3].twinx()
    ax3b.plot([t - t0 for t in ts], conf, color="#e67e22", drawstyle="steps-post",
              label="conflicts")
    ax3b.set_ylabel("conflicts", color="#e67e22")
    ax3b.set_ylim(0, max(conf + [1]) * 1.25)
    ax3b.yaxis.get_major_locator().set_params(integer=True)
    ax[3].set_ylim(0, max(pend + [1]) * 1.25)
    ax[3].set_ylabel("journal\nentries")
    ax[3].legend(loc="upper left", fontsize=8)
    ax3b.legend(loc="upper right", fontsize=8)
    ax[3].set_xlabel("seconds since the start of the story")
    # marks: rolls (green lines), faults (red spans), finish/revert (purple)
    open_ = {}
    for e in events:
        x = e["t"] - t0
        k, lab = e["kind"], e["label"]
        if k == "roll":
            for a_ in ax:
                a_.axvline(x, color="#2e8b57", lw=1, alpha=0.7)
            ax[0].text(x, 103, " " + lab.split(" ")[0] + ("\u2192fs" if "onto" in lab else
                       "\u2192S3" if "S3" in lab else "\u2192NFS"), fontsize=7, color="#2e8b57",
                       va="top", rotation=90)
        elif k == "fault":
            open_[lab.split(" ")[0]] = (x, lab)
        elif k == "fault-end":
            key = [kk for kk in open_ if lab.split(" ")[0] == kk or kk in lab]
            key = key[0] if key else (list(open_)[0] if open_ else None)
            if key is not None:
                xs0, lab0 = open_.pop(key)
                for a_ in ax:
                    a_.axvspan(xs0, max(x, xs0 + B / 2), color="#d9534f", alpha=0.15)
                ax[2].text(xs0, 0.02, lab0 + " ", fontsize=7, color="#a02020", va="bottom",
                           rotation=90, transform=ax[2].get_xaxis_transform())
        elif k == "phase" and e is not events[0] and lab != "checks":
            for a_ in ax:
                a_.axvline(x, color="#555555", lw=1, ls=":")
            ax[3].text(x, 0.98, " " + lab, fontsize=7, color="#333333", va="top", rotation=90,
                       transform=ax[3].get_xaxis_transform())
        elif k in ("finish", "revert"):
            for a_ in ax:
                a_.axvline(x, color="#6a1b9a", lw=1.5, ls="--")
            ax[0].text(x, 50, " " + lab, fontsize=7, color="#6a1b9a", rotation=90)
    ax[0].set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(d, "timeline.png"), dpi=90)
    plt.close(fig)


def summed(files):
    tot = {"acked": 0, "lost": 0, "unexpected": 0, "conflicts": 0}
    failed = False
    for f in files:
        try:
            s = json.load(open(f))
        except (OSError, ValueError):
            print("%s: no summary (the scenario did not get to its checks)" % f)
            failed = True
            continue
        for k in tot:
            tot[k] += s[k]
        failed |= s["failed"]
    print("rehearsal: %d acknowledged operations, %d lost, %d unexpected errors, "
          "%d conflicts kept" % (tot["acked"], tot["lost"], tot["unexpected"], tot["conflicts"]))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sum", nargs="+")
    ap.add_argument("--dir")
    ap.add_argument("--target", choices=["nfs", "s3"])
    ap.add_argument("--scenario")
    ap.add_argument("--hosts", type=int)
    ap.add_argument("--s3-url")
    ap.add_argument("--bucket")
    ap.add_argument("--nfs-url")
    ap.add_argument("--export")
    ap.add_argument("--title", default="")
    ap.add_argument("--plot-only", action="store_true")
    a = ap.parse_args()
    if a.sum:
        return summed(a.sum)
    if a.plot_only:         # redraw the timeline of a finished run (no store is read)
        d = a.dir
        events = sorted(jl(os.path.join(d, "events.jsonl")), key=lambda e: e["t"])
        recs = sorted(sum((jl(f) for f in glob.glob(os.path.join(d, "h*", "app.jsonl"))), []),
                      key=lambda r: r["t"])
        per_host = collections.defaultdict(list)
        for x in jl(os.path.join(d, "samples.jsonl")):
            per_host[x["host"]].append(x)
        nfiles = len(json.load(open(os.path.join(d, "manifest.json")))["files"])
        plot(d, a.title, events, recs, per_host, nfiles, events[0]["t"],
             make_state_at(per_host, nfiles))
        return 0
    return check(a)


if __name__ == "__main__":
    sys.exit(main())
