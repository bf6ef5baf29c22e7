"""A desktop command-line app that embeds `edgebert.runtime`: type text, get a label.

    pip install 'edgebert[runtime]'            # onnxruntime, tokenizers, numpy; no torch
    edgebert bundle --model runs/default/int8/x86-avx2 --out bundles/rt   # on the build machine
    python examples/desktop/classify.py bundles/rt                        # interactive
    echo "a gripping, funny film" | python examples/desktop/classify.py bundles/rt

One line in, one line out: the label, its probability and the time it took.
"""

from __future__ import annotations

import argparse
import sys
import time

from edgebert.runtime import BundleError, load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="directory written by `edgebert bundle`")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    args = parser.parse_args()
    try:
        model = load(args.bundle, threads=args.threads)
    except BundleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    m = model.manifest
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"{m['task']} model ({m['precision']}, {m['target']}); labels: "
              f"{', '.join(model.labels)}. Type text, empty line or Ctrl-D to quit.")
    for line in sys.stdin:
        text = line.rstrip("\n")
        if interactive and not text:
            break
        t0 = time.perf_counter()
        result = model.predict([text])[0]
        ms = 1000 * (time.perf_counter() - t0)
        if "label" in result:
            print(f"{result['label']}\t{result['score']:.3f}\t{ms:.1f} ms", flush=True)
        elif "value" in result:
            print(f"{result['value']:.4f}\t{ms:.1f} ms", flush=True)
        else:
            print(" ".join(f"{w['word']}/{w['tag']}" for w in result["entities"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
