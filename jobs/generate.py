"""Entry point of the synthetic shop generator; same options as `fashion-meta generate` (no Spark needed)."""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
