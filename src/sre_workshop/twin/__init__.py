"""The AWS twin: a moto-based server answering the AWS APIs for the running local stack.

Modules here that decide (filter patterns, Logs Insights queries, ...) are pure functions of their inputs,
kept apart from the HTTP layer so they are unit-tested without a server.
"""
