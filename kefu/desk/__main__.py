import sys

from kefu.desk.app import main

sys.exit(main())
