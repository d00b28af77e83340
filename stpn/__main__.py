import sys

from stpn.cli import main

sys.exit(main())
