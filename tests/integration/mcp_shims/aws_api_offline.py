"""Start the AWS Labs AWS API MCP server on a machine without internet access (run with .venv-mcp-api's python).

At start the server fetches AWS's service reference index (servicereference.us-east-1.amazonaws.com) to tell
read operations from writes, and refuses to start without it; it has no setting to skip or relocate that.
Offline, the index is empty, so only the read operations listed in the server's own packaged metadata
(api_metadata.json: DescribeTargetHealth, DescribeAlarms, LookupEvents ...) count as reads; every other
operation is treated as a write, which READ_OPERATIONS_ONLY=true refuses. Nothing else is changed.
"""

from awslabs.aws_api_mcp_server.core.metadata import read_only_operations_list
from awslabs.aws_api_mcp_server.server import main


class OfflineIndex(dict):
    """The service reference index as an empty map: no service's reference document is fetched."""


read_only_operations_list.ServiceReferenceUrlsByService = OfflineIndex

if __name__ == "__main__":
    main()
