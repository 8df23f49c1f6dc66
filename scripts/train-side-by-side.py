#!/usr/bin/env python3
"""Training speed of nanotune against the PyTorch reference, side by side on this machine.

Runs `nanotune bench train` and ../shared/bench/torch_reference.py on the same shapes (batch x
context, f32 unless --torch-dtype bf16: forward, backward, clipping, AdamW), alternating the two
so a busy machine slows both alike, several times each, and prints every figure, the medians, and
the ratio nanotune / PyTorch (of the medians, and the median of each run pair's ratio). Needs a release build (cargo build --release) and a Python with
torch (--python).

  scripts/train-side-by-side.py --python target/torchvenv/bin/python --presets small base
"""
import os, statistics

from side_by_side import last_json, parser, run

SHAPES = {"small": (3, 6, 384), "base": (4, 8, 512)}


def main():
    p = parser(__doc__)
    p.add_argument("--presets", nargs="+", default=["small", "base"], choices=list(SHAPES))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--context", type=int, default=200)
    p.add_argument("--steps", type=int, default=10, help="timed steps per run")
    p.add_argument("--reps", type=int, default=3, help="runs of each, alternating")
    p.add_argument("--torch-dtype", default="f32", choices=["f32", "bf16"])
    a = p.parse_args()
    shape = ["--batch", str(a.batch), "--context", str(a.context), "--steps", str(a.steps)]
    print(f"batch {a.batch} x context {a.context}, {a.steps} steps a run, {a.reps} runs each, "
          f"{os.cpu_count()} CPUs; PyTorch {a.torch_dtype}")
    summary = []
    for preset in a.presets:
        layers, heads, width = SHAPES[preset]
        ours = [a.nanotune, "bench", "train", "--preset", preset, "--device", "cpu"] + shape
        theirs = [a.python, a.reference, "--layers", str(layers), "--heads", str(heads),
                  "--width", str(width), "--vocab", "219", "--dtype", a.torch_dtype,
                  "--gen-tokens", "1"] + shape
        figures = {"nanotune": [], "pytorch": []}
        for rep in range(a.reps):
            n = last_json(run(ours), "train")["tokens_per_s"]
            t = last_json(run(theirs), "train")["tokens_per_s"]
            figures["nanotune"].append(n)
            figures["pytorch"].append(t)
            print(f"{preset} run {rep + 1}: nanotune {n:.0f} tokens/s, PyTorch {t:.0f} "
                  f"({n / t:.2f}x)", flush=True)
        n, t = (statistics.median(figures[k]) for k in ("nanotune", "pytorch"))
        # Each run and the one after it share the machine's state: their ratio is the steadier
        # figure when other work comes and goes.
        pairs = statistics.median(x / y for x, y in zip(figures["nanotune"], figures["pytorch"]))
        summary.append((preset, n, t, pairs))
    print(f"\n| preset | nanotune tokens/s | PyTorch {a.torch_dtype} eager tokens/s | ratio of medians "
          "| median ratio of pairs |")
    print("|---|---|---|---|---|")
    for preset, n, t, pairs in summary:
        print(f"| {preset} | {n:,.0f} | {t:,.0f} | {n / t:.2f}x | {pairs:.2f}x |")


if __name__ == "__main__":
    main()
