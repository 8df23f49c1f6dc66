"""What the side-by-side scripts share: running a command, its JSON lines, and the flags that
name the two programs."""
import argparse, json, os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def last_json(out, what):
    """The last JSON line of `out` whose "what" is `what` (torch_reference.py prints them)."""
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            fields = json.loads(line)
            if fields.get("what") == what:
                return fields
    sys.exit(f"no JSON line with what={what} in:\n{out}")


def run(cmd):
    """The standard output of `cmd`, which must succeed."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def parser(doc):
    """A parser with --python, --nanotune and --reference."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--python", default="python3", help="a Python that can import torch")
    p.add_argument("--nanotune", default=os.path.join(ROOT, "target/release/nanotune"))
    p.add_argument("--reference", default=os.path.join(ROOT, "../shared/bench/torch_reference.py"))
    return p
