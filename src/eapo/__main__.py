import sys

from eapo.cli import main

sys.exit(main())
