"""Entry point of the train stage (plain Python or spark-submit driver); same options as `fashion-meta train`."""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
