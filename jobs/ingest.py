"""spark-submit entry point of the ingest stage; same options as `fashion-meta ingest`.

On a cluster (the shipping options: README, "Running on a cluster"):
    spark-submit --master URL [options] jobs/ingest.py --lake ROOT --input DIR ...
"""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
