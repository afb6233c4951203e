"""The AWS API twin: what the stack's AWS account says, enforced on the local data path."""
