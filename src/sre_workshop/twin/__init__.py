"""The AWS API twin of the local stack: AWS's APIs answered for the running local system (moto plus plug-ins)."""
