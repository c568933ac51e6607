"""Entry point of the export stage (spark-submit); same options as `fashion-meta export`."""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
