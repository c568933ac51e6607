"""Entry point of lake maintenance (spark-submit); same options as `fashion-meta maintain`.

On a cluster (the shipping options: README, "Running on a cluster"):
    spark-submit --master URL [options] jobs/maintain.py --lake ROOT [--dry-run] ...
"""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["maintain", *sys.argv[1:]]))
