"""Keep moto's EC2 backend to the twin's region: its import loads every region's instance-type offerings.

moto.ec2 reads, at import, the instance-type offerings of every region and availability zone (~1 million JSON
values, about 50 MB of dicts that stay in the process; measured in bench/README.md). The twin answers for one
region, so only that region's offerings are read; DescribeInstanceTypeOfferings there answers as before. The
other regions' offerings come back empty, as they do for a region moto has no file for.
"""

from __future__ import annotations

import sys
from pathlib import PurePosixPath
from typing import Any

OFFERINGS = "ec2/resources/instance_type_offerings/"


def import_ec2_for(region: str) -> None:
    """Import moto's EC2 models reading the instance-type offerings of `region` only (once, before anything
    else imports them; a no-op after)."""
    if "moto.ec2.models.instance_types" in sys.modules:
        return
    import moto.utilities.utils as utils

    load = utils.load_resource

    def load_resource(resource: str) -> Any:
        if resource.startswith(OFFERINGS) and PurePosixPath(resource).name.split(".")[0] != region:
            return []
        return load(resource)

    utils.load_resource = load_resource  # read by name when moto.ec2's modules are first imported
    try:
        import moto.ec2.models  # noqa: F401
    finally:
        utils.load_resource = load

