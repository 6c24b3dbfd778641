import sys

from smartfocus.cli import main

sys.exit(main())
