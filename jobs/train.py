"""Entry point of the train stage (plain Python or spark-submit driver); same options as `fashion-meta train`.

On a cluster (the shipping options: README, "Running on a cluster"):
    spark-submit --master URL [options] jobs/train.py --lake ROOT --run-date D ...
"""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
