"""spark-submit entry point of the features stage; same options as `fashion-meta features`.

On a cluster (the shipping options: README, "Running on a cluster"):
    spark-submit --master URL [options] jobs/features.py --lake ROOT --run-date D ...
"""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["features", *sys.argv[1:]]))
