"""spark-submit entry point of the materialize stage; same options as `fashion-meta materialize`."""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["materialize", *sys.argv[1:]]))
