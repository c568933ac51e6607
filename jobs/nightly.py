"""spark-submit entry point of the whole nightly run; same options as `fashion-meta nightly`.

On a cluster (the shipping options: README, "Running on a cluster"):
    spark-submit --master URL [options] jobs/nightly.py --lake ROOT --input DIR --run-date D ...
"""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["nightly", *sys.argv[1:]]))
