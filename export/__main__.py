import sys

from runtime.cli import main

sys.exit(main(["export", *sys.argv[1:]]))
