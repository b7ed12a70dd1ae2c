#!/usr/bin/python3
"""rehearse_sample.py - contrib/rehearse.sh's sampler: every --interval seconds, reads
user.ferryfs.stats on the root of each mount named in --mounts (lines "HOST MOUNTPOINT",
re-read at every tick as hosts are rolled) and appends one JSON line per mount to --out:
{"t", "host", "stats": {key: number}}. A mount that does not answer within a second (its
daemon killed, its host cut off) is skipped for that tick. Stops at SIGTERM.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time

STOP = False


def on_term(_s, _f):
    global STOP
    STOP = True


def read_stats(mnt, box):
    try:
        raw = os.getxattr(mnt, "user.ferryfs.stats").decode()
        d = {}
        for line in raw.splitlines():
            f = line.split()
            if len(f) == 2:
                try:
                    d[f[0]] = float(f[1])
                except ValueError:
                    pass
        box.append(d)
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mounts", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    out = open(a.out, "a", buffering=1)
    while not STOP:
        t = time.time()
        try:
            with open(a.mounts) as f:
                mounts = [l.split(None, 1) for l in f.read().splitlines() if l.strip()]
        except OSError:
            mounts = []
        for host, mnt in mounts:
            box = []
            th = threading.Thread(target=read_stats, args=(mnt.strip(), box), daemon=True)
            th.start()
            th.join(1.0)
            if box:
                out.write(json.dumps({"t": round(t, 3), "host": host, "stats": box[0]},
                                     separators=(",", ":")) + "\n")
        time.sleep(max(0.0, a.interval - (time.time() - t)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
