"""Entry point of the synthetic shop generator; same options as `fashion-meta generate` (no Spark needed).

Run: `python jobs/generate.py --out DIR [--customers N] ...` (plain Python; spark-submit not needed).
"""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
