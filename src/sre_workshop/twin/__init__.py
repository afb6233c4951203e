"""The AWS API twin: a local stand-in for the AWS services the stack uses, and its CloudWatch agent."""
