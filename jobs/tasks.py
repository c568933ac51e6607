"""spark-submit entry point of the tasks stage; same options as `fashion-meta tasks`."""

import sys

from fashion_meta.cli import main

if __name__ == "__main__":
    sys.exit(main(["tasks", *sys.argv[1:]]))
