"""spark-submit entry point of the ingest stage; same options as `fashion-meta ingest`."""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
