"""spark-submit entry point of the tasks stage; same options as `fashion-meta tasks`.

On a cluster (the shipping options: README, "Running on a cluster"):
    spark-submit --master URL [options] jobs/tasks.py --lake ROOT --run-date D ...
"""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["tasks", *sys.argv[1:]]))
