"""Seed the CRM tables (see crm_app/init_sample_data.py): `python init_sample_data.py [--count N]`."""

import sys

from crm_app.init_sample_data import main

if __name__ == "__main__":
    sys.exit(main())
