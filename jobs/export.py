"""Entry point of the export stage (spark-submit); same options as `fashion-meta export`.

On a cluster (the shipping options: README, "Running on a cluster"):
    spark-submit --master URL [options] jobs/export.py --lake ROOT --run-date D ...
"""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
