"""spark-submit entry point of the features stage; same options as `fashion-meta features`."""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["features", *sys.argv[1:]]))
