"""Recompute the score cache of a clickbait model (the shipped default unless --model-dir) on this machine.

The cache holds the model's own scores of every shipped headline (Webis-17 + Stop Clickbait), so the
simulator and ``intentrank run`` score them by look-up. Run it after assemble.py or warp_default.py.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model-dir", type=Path, default=None, help="model directory (default: the shipped default model)"
    )
    args = ap.parse_args()

    from intentrank.clickbait.scorer import DEFAULT_MODEL_DIR, ClickbaitScorer
    from intentrank.data.stop_clickbait import load_stop_clickbait
    from intentrank.data.webis import load_webis17

    model_dir = args.model_dir or DEFAULT_MODEL_DIR
    t = time.time()
    s = ClickbaitScorer.load(model_dir)
    titles = load_webis17()["post_text"].tolist() + load_stop_clickbait()["title"].tolist()
    s.build_cache(titles)
    s.save(model_dir)
    print(f"cache of {model_dir} rebuilt in {time.time() - t:.1f} s")


if __name__ == "__main__":
    main()
