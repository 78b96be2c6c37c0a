#!/usr/bin/env python3
"""An independent tlog-tiles reader, written from c2sp.org/tlog-tiles and RFC 6962 alone (it shares
no code with the ledger): fetches PREFIX/checkpoint, every level-0 tile and entry bundle the
checkpoint's size needs, checks that each bundle entry hashes (SHA-256 of 0x00 + entry) to its
tile hash, rebuilds the Merkle tree hash of all leaves, and compares it with the checkpoint's root.
Prints one JSON line: {"size", "root_ok", "entries"}; exit 0 only when everything matched."""
import base64, hashlib, json, sys, urllib.request

def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()

def index_path(n):
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n > 0:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))

def mth(hashes):
    # RFC 6962 section 2.1: split at the largest power of two smaller than n
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()

def main(prefix):
    lines = get(prefix + "/checkpoint").decode().split("\n")
    size, root = int(lines[1]), base64.b64decode(lines[2])
    leaves = []
    for n in range((size + 255) // 256):
        width = min(256, size - n * 256)
        suffix = "" if width == 256 else f".p/{width}"
        tile = get(f"{prefix}/tile/0/{index_path(n)}{suffix}")
        bundle = get(f"{prefix}/tile/entries/{index_path(n)}{suffix}")
        assert len(tile) == 32 * width, f"tile {n}: {len(tile)} bytes"
        at, i = 0, 0
        while at < len(bundle):
            length = int.from_bytes(bundle[at:at + 2], "big")
            entry = bundle[at + 2:at + 2 + length]
            at += 2 + length
            h = hashlib.sha256(b"\x00" + entry).digest()
            assert h == tile[32 * i:32 * i + 32], f"entry {n * 256 + i} does not hash to its tile"
            leaves.append(h)
            i += 1
        assert i == width, f"bundle {n}: {i} entries, not {width}"
    ok = size > 0 and mth(leaves) == root
    print(json.dumps({"size": size, "root_ok": ok, "entries": len(leaves)}))
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main(sys.argv[1].rstrip("/")))
