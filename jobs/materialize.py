"""spark-submit entry point of the materialize stage; same options as `fashion-meta materialize`.

On a cluster (the shipping options: README, "Running on a cluster"):
    spark-submit --master URL [options] jobs/materialize.py --lake ROOT --run-date D ...
"""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["materialize", *sys.argv[1:]]))
