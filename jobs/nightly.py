"""spark-submit entry point of the whole nightly run; same options as `fashion-meta nightly`."""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["nightly", *sys.argv[1:]]))
