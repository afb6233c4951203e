"""The MCP server: the stack's signals and (with --allow-changes) its remediations as MCP tools."""
