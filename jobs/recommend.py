"""Entry point of the recommend stage (spark-submit); same options as `fashion-meta recommend`."""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["recommend", *sys.argv[1:]]))
