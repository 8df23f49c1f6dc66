#!/usr/bin/env python3
"""Batch-1 generation speed of nanotune against the PyTorch reference, side by side on this machine.

Runs `nanotune generate` on a checkpoint (its CPU decoder as a user runs it: a prompt of
--prompt-words words of a validation piece, then --tokens new words, batch 1, the sampler and its
grammar included) and ../shared/bench/torch_reference.py on the same shape (random weights, a
random prompt of as many tokens, the same new words with top-k 20 sampling, its key/value cache),
alternating the two so a busy machine slows both alike, several times each; prints every figure,
the medians and the ratio nanotune / PyTorch. Needs a release build and a Python with torch.

  scripts/generate-side-by-side.py --python /root/torchenv/bin/python --checkpoint checkpoints/small
"""
import json, os, re, statistics

from side_by_side import ROOT, parser, run


def main():
    p = parser(__doc__)
    p.add_argument("--checkpoint", default=os.path.join(ROOT, "checkpoints/small"))
    p.add_argument("--prompt-words", type=int, default=20)
    p.add_argument("--tokens", type=int, default=1000)
    p.add_argument("--reps", type=int, default=3, help="runs of each, alternating")
    p.add_argument("--torch-dtype", default="f32", choices=["f32", "bf16"])
    a = p.parse_args()
    with open(os.path.join(a.checkpoint, "config.json")) as f:
        model = json.load(f)["model"]
    rope = model.get("positions", "learned") == "rotary"
    print(f"{a.checkpoint}: {model['layers']} layers, {model['heads']} heads, {model['width']} "
          f"wide, context {model['context']}, {'rotary' if rope else 'learned'} positions; "
          f"{a.prompt_words}-word prompt, {a.tokens} new words, batch 1, {os.cpu_count()} CPUs; "
          f"PyTorch {a.torch_dtype} eager")
    ours = [a.nanotune, "generate", "--checkpoint", a.checkpoint, "--mode", "continue",
            "--prompt-words", str(a.prompt_words), "--tokens", str(a.tokens), "--device", "cpu"]
    theirs = [a.python, a.reference, "--layers", str(model["layers"]), "--heads",
              str(model["heads"]), "--width", str(model["width"]), "--vocab", str(model["vocab"]),
              "--context", str(model["context"]), "--batch", "1", "--steps", "1",
              "--dtype", a.torch_dtype, "--prompt-tokens", str(a.prompt_words),
              "--gen-tokens", str(a.tokens)] + (["--rope"] if rope else [])
    figures = {"nanotune": [], "pytorch": []}
    for rep in range(a.reps):
        out = run(ours + ["--seed", str(rep + 1)])
        n = float(re.search(r"^(\d+) tokens/s", out, re.M).group(1))
        line = [l for l in run(theirs).splitlines() if '"generate"' in l][-1]
        t = json.loads(line)["tokens_per_s"]
        figures["nanotune"].append(n)
        figures["pytorch"].append(t)
        print(f"run {rep + 1}: nanotune {n:.0f} tokens/s, PyTorch {t:.0f} ({n / t:.2f}x)",
              flush=True)
    n, t = (statistics.median(figures[k]) for k in ("nanotune", "pytorch"))
    print(f"medians: nanotune {n:.0f} tokens/s, PyTorch {t:.0f} tokens/s: {n / t:.2f}x")


if __name__ == "__main__":
    main()
