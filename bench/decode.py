"""Decode speed per protocol (budget: >= 100k frames/s each, DESIGN.md).

Frames: the valid sample frames of shared/protocols/vectors.txt (real devices, via Traccar's
decoder tests), split and decoded in a loop, pure Python, one core.

    .venv/bin/python bench/decode.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import binascii
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.protocols import gt06, h02, jt808  # noqa: E402
from gateway.protocols.messages import FrameError  # noqa: E402

VECTORS = ROOT.parent / "shared" / "protocols" / "vectors.txt"
CODECS = {"GT06": gt06, "JT808": jt808, "H02": h02}


def sample_frames() -> dict[str, list[bytes]]:
    frames: dict[str, list[bytes]] = {name: [] for name in CODECS}
    for line in VECTORS.read_text().splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 3 or parts[0] not in CODECS:
            continue
        raw = parts[1]
        data = raw.encode() if raw.startswith("*") else binascii.unhexlify(raw)
        codec = CODECS[parts[0]]
        if parts[0] == "JT808":
            data = b"\x7e" + codec.escape(data[1:-1]) + b"\x7e"
        try:
            codec.decode(data)
        except FrameError:
            continue  # frames marked INVALID in the vectors
        frames[parts[0]].append(data)
    return frames


def measure(codec, frames: list[bytes], seconds: float) -> float:
    stream = b"".join(frames)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            split, _rest, _bad = codec.split_frames(stream)
            for frame in split:
                codec.decode(frame)
            done += len(split)
    return done / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    print(
        f"decode speed, {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{platform.machine()}"
    )
    print("| protocol | sample frames | frames/s (split + decode) | budget |")
    print("|---|---:|---:|---|")
    ok = True
    for name, frames in sample_frames().items():
        rate = measure(CODECS[name], frames, args.seconds)
        ok &= rate >= 100_000
        print(f"| {name} | {len(frames)} | {rate:,.0f} | {'ok' if rate >= 100_000 else 'MISSED'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
