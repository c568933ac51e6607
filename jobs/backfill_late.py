"""Entry point of the late/corrected-data backfill (spark-submit); same options as `fashion-meta backfill-late`.

On a cluster (the shipping options: README, "Running on a cluster"):
    spark-submit --master URL [options] jobs/backfill_late.py --lake ROOT --input DIR ...
"""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["backfill-late", *sys.argv[1:]]))
