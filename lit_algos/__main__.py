import sys

from lit_algos.cli import main

sys.exit(main())
