"""Agents that troubleshoot the stack through the MCP server alone (the reference agent proves the harness)."""
