"""moto's server, plus the one CloudFormation attribute the template uses that moto lacks.

moto 5 has no `Fn::GetAtt` for AWS::ElasticLoadBalancingV2::TargetGroup; AWS documents TargetGroupFullName
as the last field of the target group's ARN (`targetgroup/NAME/ID`), which is what this answers. Run as
`python tests/moto_server.py -H 127.0.0.1 -p PORT`. Drop it once moto implements the attribute.
"""

from __future__ import annotations

import sys

from moto.elbv2.models import FakeTargetGroup
from moto.server import main


def _target_group_attribute(self: FakeTargetGroup, name: str) -> str:
    """Answer Fn::GetAtt on a target group as AWS documents it."""
    if name == "TargetGroupFullName":
        return self.arn.split(":")[-1]
    if name == "TargetGroupName":
        return self.name
    raise NotImplementedError(f"moto_server.py: target group attribute {name} of {{0}}")


if __name__ == "__main__":
    if not hasattr(FakeTargetGroup, "get_cfn_attribute"):
        FakeTargetGroup.get_cfn_attribute = _target_group_attribute
    sys.exit(main())
