"""The twin's EC2 backend reads the instance-type offerings of its own region only, and answers for it as moto does."""

import json
import subprocess
import sys

PROBE = """
import json, sys
from sre_workshop.twin.slim import import_ec2_for
import_ec2_for(sys.argv[1])
from moto import mock_aws
import boto3
from moto.ec2.models import instance_types
with mock_aws():
    ec2 = boto3.client("ec2", region_name=sys.argv[1], aws_access_key_id="x", aws_secret_access_key="x")
    offered = ec2.describe_instance_type_offerings(LocationType="availability-zone",
                                                   Filters=[{"Name": "instance-type", "Values": ["t3.micro"]}])
print(json.dumps({"regions": {k: sorted(r for r, v in regions.items() if v)
                              for k, regions in instance_types.INSTANCE_TYPE_OFFERINGS.items()},
                  "zones": sorted(o["Location"] for o in offered["InstanceTypeOfferings"])}))
"""


def test_only_the_twins_region_is_read_and_its_offerings_still_answer():
    out = subprocess.run([sys.executable, "-c", PROBE, "eu-west-1"], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert seen["regions"] == {"availability-zone": ["eu-west-1"], "availability-zone-id": ["eu-west-1"],
                               "region": ["eu-west-1"]}
    assert seen["zones"] and all(zone.startswith("eu-west-1") for zone in seen["zones"])
