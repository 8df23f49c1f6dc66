#!/usr/bin/env python3
"""Describe a generated piece for docs/examples: a piano-roll PNG and figures per four bars.

The roll: time left to right, a grey line every bar and under every C; blue the prompt, orange
the model.

Reads the words `nanotune generate --words FILE` writes (docs/encoding.md), so it needs no MIDI
library and no Python packages beyond the standard library.

    scripts/examples.py PIECE.words --png PIECE.png [--prompt-words N] [--wav PIECE.wav]

Prints: notes, bars and seconds at 120 bpm; per four bars the best major/minor scale and the
share of notes in it (the "key fit" of `nanotune compare`), the pitch range and the longest note;
with --wav, the peak level and silent spans of the rendered audio.
"""
import argparse
import array
import math
import struct
import wave
import zlib

STEPS_PER_BAR = 16  # 4/4 on a grid of sixteenths
NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MAJOR = [0, 2, 4, 5, 7, 9, 11]  # a natural minor scale has the pitch classes of its relative major

# Palette: background, bar and C lines, prompt note, model note.
PALETTE = [(255, 255, 255), (200, 200, 200), (40, 90, 200), (235, 130, 30)]


def read_notes(path):
    """(onset, pitch, duration, word index) for every note, decoded as nanotune decodes."""
    words = open(path).read().split()
    notes, cursor, i = [], 0, 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w == "sepxx" and nxt.startswith("d"):
            cursor += int(nxt[1:])
            i += 2
        elif w.startswith("n") and nxt.startswith("d"):
            notes.append((cursor, int(w[1:]), int(nxt[1:]), i))
            i += 2
        else:
            i += 1
    return notes, len(words)


def best_scale(pitches):
    """("major / relative minor", share) of the scale holding most of the pitches."""
    best = ("-", 0.0)
    for root in range(12):
        scale = {(root + s) % 12 for s in MAJOR}
        share = sum(1 for p in pitches if p % 12 in scale) / len(pitches)
        if share > best[1]:
            best = (f"{NAMES[root]} / {NAMES[(root + 9) % 12]}m", share)
    return best


def name(pitch):
    return f"{NAMES[pitch % 12]}{pitch // 12 - 1}"


def write_png(path, notes, end, prompt_words, px_step=2, px_pitch=4):
    lo = min(p for _, p, _, _ in notes) - 2
    hi = max(p for _, p, _, _ in notes) + 2
    width, height = end * px_step, (hi - lo + 1) * px_pitch
    rows = [bytearray(width) for _ in range(height)]
    for bar in range(0, end, STEPS_PER_BAR):
        for row in rows:
            row[bar * px_step] = 1
    for pitch in range(lo, hi + 1):
        if pitch % 12 == 0:  # a line under every C
            rows[(hi - pitch + 1) * px_pitch - 1][:] = b"\x01" * width
    for onset, pitch, dur, index in notes:
        colour = 2 if index < prompt_words else 3
        y0 = (hi - pitch) * px_pitch
        x0 = onset * px_step
        x1 = max((onset + dur) * px_step - 1, x0 + 1)  # a gap marks a re-struck note
        for y in range(y0, y0 + px_pitch - 1):
            rows[y][x0:x1] = bytes([colour]) * (x1 - x0)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\0" + bytes(r) for r in rows)
    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
    png += chunk(b"PLTE", b"".join(bytes(c) for c in PALETTE))
    png += chunk(b"IDAT", zlib.compress(raw, 9))
    png += chunk(b"IEND", b"")
    open(path, "wb").write(png)
    return width, height


def describe_wav(path, window_s=0.25, quiet_db=-50.0):
    with wave.open(path) as w:
        if w.getsampwidth() != 2:
            raise SystemExit(f"{path}: expects 16-bit PCM, as `nanotune render` writes")
        rate, channels = w.getframerate(), w.getnchannels()
        samples = array.array("h", w.readframes(w.getnframes()))
    peak = max(abs(s) for s in samples) or 1
    print(f"wav: {len(samples) / channels / rate:.1f} s, peak {20 * math.log10(peak / 32768):.1f} dBFS")
    hop = int(window_s * rate) * channels
    quiet_start = None
    for k in range(0, len(samples), hop):
        part = samples[k:k + hop]
        level = max((abs(s) for s in part), default=0)
        db = 20 * math.log10(level / 32768) if level else -120.0
        t = k / channels / rate
        if db < quiet_db and quiet_start is None:
            quiet_start = t
        elif db >= quiet_db and quiet_start is not None:
            print(f"  silent (< {quiet_db:.0f} dBFS): {quiet_start:.2f}-{t:.2f} s")
            quiet_start = None
    if quiet_start is not None:
        print(f"  silent (< {quiet_db:.0f} dBFS) from {quiet_start:.2f} s to the end")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("words")
    ap.add_argument("--png")
    ap.add_argument("--prompt-words", type=int, default=0, help="words of the prompt (drawn in blue)")
    ap.add_argument("--wav")
    args = ap.parse_args()

    notes, n_words = read_notes(args.words)
    if not notes:
        raise SystemExit("no notes in " + args.words)
    end = max(o + d for o, _, d, _ in notes)
    bars = -(-end // STEPS_PER_BAR)
    prompt_notes = sum(1 for n in notes if n[3] < args.prompt_words)
    print(f"{n_words} words, {len(notes)} notes ({prompt_notes} in the prompt), {bars} bars, "
          f"{end / 8:.1f} s at 120 bpm")
    print("bars   | notes | best scale (share) | range     | longest note (steps)")
    for first in range(0, bars, 4):
        part = [n for n in notes if first * STEPS_PER_BAR <= n[0] < (first + 4) * STEPS_PER_BAR]
        label = f"{first + 1}-{min(first + 4, bars)}"
        if not part:
            print(f"{label:6} |     0 |")
            continue
        pitches = [p for _, p, _, _ in part]
        scale, share = best_scale(pitches)
        where = " (prompt)" if all(n[3] < args.prompt_words for n in part) else ""
        print(f"{label:6} | {len(part):5} | {scale} ({share:.0%}){where} | "
              f"{name(min(pitches))}-{name(max(pitches))} | {max(d for _, _, d, _ in part)}")
    if args.png:
        w, h = write_png(args.png, notes, end, args.prompt_words)
        print(f"png: {args.png} ({w} x {h})")
    if args.wav:
        describe_wav(args.wav)


if __name__ == "__main__":
    main()
