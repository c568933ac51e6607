"""Entry point of the recommend stage (spark-submit); same options as `fashion-meta recommend`.

On a cluster (the shipping options: README, "Running on a cluster"):
    spark-submit --master URL [options] jobs/recommend.py --lake ROOT --run-date D ...
"""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["recommend", *sys.argv[1:]]))
